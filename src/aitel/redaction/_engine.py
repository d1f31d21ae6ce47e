"""Detection over one text: which detectors run, and which findings win.

Each detector declares *needles*, substrings one of which every match
contains. At construction the needles become a plan; per text the plan finds
the needles present and only the detectors they trigger run. Two plans:

* long texts: one regex per "rare character" ``c``, ``c(?:(?<=before)(?P<n0>after)|...)``,
  so the regex engine's tight first-character loop does the scanning and
  ``lastgroup`` names the needle found (see :func:`_plan`);
* short texts (up to 256 characters): plain ``in`` checks, each group of
  needles gated by its rare character.

The whole-document pre-check (:meth:`Engine.could_match`) scans UTF-8 bytes
for all needles in one Hyperscan pass where it can (:mod:`aitel.redaction._native`),
else with the long-text plan.

Number-shaped detectors run inside :func:`~aitel.redaction.patterns.digit_windows`
instead. Short texts without any finding are remembered (a bounded cache of
keys, roles, names, statuses). Overlapping findings are resolved by detector
priority, then leftmost-longest.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from aitel.redaction._native import NeedleScanner, needle_scanner
from aitel.redaction.patterns import (
    Detector,
    Finding,
    Recognizer,
    Window,
    digit_windows,
    lower_same_length,
)

__all__ = ["Engine", "shared_engine"]


class Engine:
    """Detection over one text: needles, detectors, overlap resolution.

    At construction the detectors' needles become a plan (see :func:`_plan`).
    Per text the plan finds which needles occur, and only the detectors they
    trigger run; number-shaped detectors run inside :func:`digit_windows`.
    """

    __slots__ = (
        "_always",
        "_clean",
        "_detectors",
        "_document_plans",
        "_min_len",
        "_needles",
        "_plan",
        "_recognizers",
        "_scanners",
        "_short_plan",
        "_windowed",
        "_windowed_detectors",
    )

    def __init__(self, detectors: Sequence[Detector], recognizers: Sequence[Recognizer]) -> None:
        self._detectors = tuple(detectors)
        self._recognizers = tuple(recognizers)
        lengths = [d.min_len for d in self._detectors]
        self._min_len = 0 if self._recognizers or not lengths else min(lengths)
        always = windowed = 0
        needles: dict[tuple[bool, str], int] = {}
        for index, detector in enumerate(self._detectors):
            bit = 1 << index
            if detector.windowed:
                windowed |= bit
            elif not detector.needles:
                always |= bit
            for needle in detector.needles:
                key = (detector.lowered, needle.lower() if detector.lowered else needle)
                needles[key] = needles.get(key, 0) | bit
        self._always = always
        self._windowed = windowed
        self._windowed_detectors = tuple(
            (1 << index, detector)
            for index, detector in enumerate(self._detectors)
            if detector.windowed
        )
        self._needles = needles
        self._plan = _plan(needles)
        self._short_plan = _short_plan(needles)
        self._document_plans: dict[tuple[str, ...], _Plan] = {(): self._plan}
        self._scanners: dict[tuple[str, ...], NeedleScanner | None] = {}
        self._clean: dict[str, None] | None = None if self._recognizers else {}

    @property
    def clean(self) -> dict[str, None]:
        """Short texts known to hold no finding (empty when recognizers may differ)."""
        return self._clean if self._clean is not None else {}

    def find(self, text: str) -> list[Finding]:
        size = len(text)
        if size < self._min_len:
            return []
        clean = self._clean
        if size <= _CACHED and clean is not None and text in clean:
            return []
        if size <= _SHORT:
            lowered = lower_same_length(text)
            mask = self._always
            for on_lowered, char, entries in self._short_plan:
                haystack = lowered if on_lowered else text
                if char in haystack:
                    for needle, bits in entries:
                        if bits & ~mask and needle in haystack:
                            mask |= bits
            if not mask and not self._windowed and not self._recognizers:
                found: list[Finding] = []
            else:
                found = self._run(text, lowered, mask)
            if not found and size <= _CACHED and clean is not None:
                if len(clean) >= _CACHE_SIZE:
                    clean.clear()
                clean[text] = None
            return found
        lowered = ""
        mask = self._always
        for on_lowered, char, scanner, bits_of, union in self._plan:
            if not union & ~mask:
                continue
            if on_lowered:
                if not lowered:
                    lowered = lower_same_length(text)
                haystack = lowered
            else:
                haystack = text
            at = haystack.find(char)  # a memchr; most scanners stop here
            if at < 0:
                continue
            for match in _matches(scanner, char, haystack, at):
                mask |= bits_of[match.lastgroup or ""]
                if not union & ~mask:
                    break
        return self._run(text, lowered, mask)

    def could_match(
        self,
        text: str | bytes,
        also_lowered: tuple[str, ...] = (),
        check: Callable[[str | bytes, int], bool] | None = None,
    ) -> bool:
        """False only when no detector can match anywhere in ``text``.

        A cheap, conservative test for whole documents: every needle-less,
        number-shaped or external detector counts as a possible match.
        ``also_lowered`` adds words to look for in the lower-cased text, in
        the same scans. ``check``, when given, is asked about each place a
        needle occurs (the text scanned, and the needle's index in it) and
        decides whether it counts. UTF-8 ``bytes`` are scanned in one pass
        when Hyperscan is installed (see :mod:`aitel.redaction._native`), else
        decoded; ``check`` then gets the decoded text.
        """
        if self._always or self._windowed or self._recognizers:
            return True
        if isinstance(text, bytes):
            try:
                scanner = self._scanners[also_lowered]
            except KeyError:
                scanner = needle_scanner(_fold(self._document_needles(also_lowered)))
                self._scanners[also_lowered] = scanner
            if scanner is not None:
                verdict = scanner.could_match(text, check)
                if verdict is not None:
                    return verdict
            text = text.decode("utf-8", "replace")
        plan = self._document_plans.get(also_lowered)
        if plan is None:
            plan = self._document_plans[also_lowered] = _plan(self._document_needles(also_lowered))
        lowered = ""
        for on_lowered, char, regex, _bits_of, _union in plan:
            if on_lowered:
                if not lowered:
                    lowered = lower_same_length(text)
                haystack = lowered
            else:
                haystack = text
            at = haystack.find(char)
            if at < 0:
                continue
            for match in _matches(regex, char, haystack, at):
                if check is None or check(text, match.start()):
                    return True
        return False

    def _document_needles(self, also_lowered: tuple[str, ...]) -> dict[tuple[bool, str], int]:
        needles = dict(self._needles)
        for word in also_lowered:
            needles.setdefault((True, word.lower()), 0)
        return needles

    def _run(self, text: str, lowered: str, mask: int) -> list[Finding]:
        """Run the detectors in ``mask`` (and the windowed ones when digits allow)."""
        size = len(text)
        windows: list[Window] | None = None
        if self._windowed:
            windows = digit_windows(text)
            if windows:
                mask |= self._windowed_due(text, windows)
        hits: list[tuple[int, int, int, Detector | None, Finding | None]] = []
        detectors = self._detectors
        while mask:
            lowest = mask & -mask
            mask ^= lowest
            index = lowest.bit_length() - 1
            detector = detectors[index]
            if size >= detector.min_len:
                for start, end in detector.spans(text, lowered, windows):
                    hits.append((index, start, end, detector, None))
        base = len(self._detectors)
        for offset, recognizer in enumerate(self._recognizers):
            for finding in recognizer.find(text):
                if 0 <= finding.start < finding.end <= size:
                    hits.append((base + offset, finding.start, finding.end, None, finding))
        if not hits:
            return []
        return _resolve(hits)

    def _windowed_due(self, text: str, windows: list[Window]) -> int:
        """Bits of the windowed detectors that some window can satisfy."""
        due = 0
        for bit, detector in self._windowed_detectors:
            for lo, hi, digits, dots, head in windows:
                if head < detector.window_head:
                    continue
                if digits >= detector.min_digits and dots >= detector.min_dots:
                    char = detector.window_char
                    if not char or text.find(char, lo, hi) >= 0:
                        due |= bit
                        break
        return due


# How common each character is in the texts aitel sees (prose and code), per
# mille; unlisted characters count as 3. Each needle is looked for through its
# rarest character, which the regex engine scans for with a tight loop.
_FREQUENCY: dict[str, float] = dict(
    zip(
        "etaoinshrdlcumwfgypbvkjxqz",
        (127, 91, 82, 75, 70, 67, 63, 61, 60, 43, 40, 28, 28, 24, 24, 22, 20, 20, 19, 15, 10, 8,
         2, 2, 1, 1),
        strict=True,
    )
)  # fmt: skip
_FREQUENCY.update({c.upper(): max(1.0, f / 12) for c, f in list(_FREQUENCY.items())})
_FREQUENCY.update({" ": 160, ".": 12, ",": 10, "_": 6, "-": 4, ":": 4, "/": 3, "=": 3, "@": 0.2})
_FREQUENCY.update(dict.fromkeys("0123456789", 5.0))

_Plan = tuple[tuple[bool, str, re.Pattern[str], dict[str, int], int], ...]
"""Per scanner: on the lower-cased text?, its first character, the regex, group name ->
detector bits, all bits. A text without the character is not scanned."""
_SHORT = 256
"""Up to this length, needles are checked one by one with ``in`` (cheaper than scanners)."""
_CACHED = 64
_CACHE_SIZE = 4096
"""Short texts with no finding (keys, roles, names, statuses) are remembered, up to this many."""


_HOPS_FROM = 8192
"""Texts longer than this are scanned by jumps (see :func:`_matches`)."""
_SPARSE = 256
"""While a scanner's character occurs less than once per this many characters, the
scan jumps from one occurrence to the next; where it is denser, the regex engine
scans the rest itself."""


def _matches(
    scanner: re.Pattern[str], char: str, haystack: str, at: int
) -> Iterator[re.Match[str]]:
    """``scanner.finditer(haystack)``, for a scanner whose every match starts with ``char``
    (first found at index ``at``).

    The regex engine looks at every character (about 1 ns each, per scanner).
    In a long text, ``str.find`` (a memchr) jumps to the next ``char`` many
    times faster, and the scanner, run from there, still sees the text before
    it for its look-behinds. In a short one the jumps' Python calls cost more.
    """
    if len(haystack) <= _HOPS_FROM:
        return scanner.finditer(haystack, at)
    return _jumps(scanner, char, haystack, at)


def _jumps(scanner: re.Pattern[str], char: str, haystack: str, at: int) -> Iterator[re.Match[str]]:
    find = haystack.find
    hops = 0
    while at >= 0:
        if hops > 1 and at < hops * _SPARSE:  # a frequent character: one regex scan is cheaper
            yield from scanner.finditer(haystack, at)
            return
        hops += 1
        match = scanner.match(haystack, at)
        if match is not None:
            yield match
            at = find(char, match.end())
        else:
            at = find(char, at + 1)


def _fold(needles: dict[tuple[bool, str], int]) -> dict[tuple[bool, str], int]:
    """Fold each needle into a shorter needle it contains (it cannot occur without it)."""
    folded = dict(needles)
    for key in sorted(needles, key=lambda k: -len(k[1])):
        inner = [k for k in folded if k != key and k[0] == key[0] and k[1] in key[1]]
        if inner:
            folded[min(inner, key=lambda k: len(k[1]))] |= folded.pop(key)
    return folded


_ShortPlan = tuple[tuple[bool, str, tuple[tuple[str, int], ...]], ...]


def _short_plan(needles: dict[tuple[bool, str], int]) -> _ShortPlan:
    """Needles grouped by their rarest character, which gates the group."""
    groups: dict[tuple[bool, str], list[tuple[str, int]]] = {}
    for (on_lowered, needle), bits in sorted(_fold(needles).items()):
        groups.setdefault((on_lowered, _rarest(needle)), []).append((needle, bits))
    order = sorted(groups, key=lambda key: _FREQUENCY.get(key[1], 3.0))
    return tuple((key[0], key[1], tuple(groups[key])) for key in order)


def _rarest(needle: str) -> str:
    return min(needle, key=lambda char: _FREQUENCY.get(char, 3.0))


def _plan(needles: dict[tuple[bool, str], int]) -> _Plan:
    """Scanners that report which needles occur in a text.

    A needle containing a shorter needle is folded into it (it cannot occur
    without the shorter one). The rest are grouped by their rarest character
    ``c``; each group is one regex ``c(?:(?<=before)(?P<nN>after)|...)``
    whose match's ``lastgroup`` names the needle found. Scanners map group
    names to detector bits; scanning stops once all their detectors are due.
    """
    folded = _fold(needles)
    groups: dict[tuple[bool, str], list[tuple[str, int, int]]] = {}
    for (on_lowered, needle), bits in sorted(folded.items()):
        at = needle.index(_rarest(needle))
        groups.setdefault((on_lowered, needle[at]), []).append((needle, at, bits))
    plan: list[tuple[float, tuple[bool, str, re.Pattern[str], dict[str, int], int]]] = []
    for (on_lowered, char), members in sorted(groups.items()):
        branches = []
        bits_of: dict[str, int] = {}
        for number, (needle, at, bits) in enumerate(members):
            before = f"(?<={re.escape(needle[: at + 1])})" if at else ""
            branches.append(f"{before}(?P<n{number}>{re.escape(needle[at + 1 :])})")
            bits_of[f"n{number}"] = bits
        scanner = re.compile(re.escape(char) + "(?:" + "|".join(branches) + ")")
        union = 0
        for bits in bits_of.values():
            union |= bits
        plan.append((_FREQUENCY.get(char, 3.0), (on_lowered, char, scanner, bits_of, union)))
    # Rarest characters first: their scans are the cheapest.
    plan.sort(key=lambda entry: entry[0])
    return tuple(entry for _, entry in plan)


@functools.lru_cache(maxsize=32)
def shared_engine(detectors: tuple[Detector, ...]) -> Engine:
    """Redactors with the same detectors share one engine (and its cache of clean texts)."""
    return Engine(detectors, ())


def _resolve(hits: list[tuple[int, int, int, Detector | None, Finding | None]]) -> list[Finding]:
    """Non-overlapping findings, earlier detectors first, then leftmost-longest."""
    hits.sort(key=lambda h: (h[0], h[1], -h[2]))
    starts: list[int] = []
    ends: list[int] = []
    chosen: list[Finding] = []
    for _, start, end, detector, given in hits:
        index = bisect_left(starts, start)
        if index > 0 and ends[index - 1] > start:
            continue
        if index < len(starts) and starts[index] < end:
            continue
        starts.insert(index, start)
        ends.insert(index, end)
        if given is not None:
            chosen.insert(index, given)
        elif detector is not None:
            chosen.insert(index, Finding(start, end, detector.kind, detector.replacement))
    return chosen
