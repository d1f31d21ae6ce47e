"""The redactor: finds sensitive spans in text and scrubs whole JSON-like values.

A :class:`Redactor` is immutable and thread-safe. Each call works in a
:class:`RedactionSession`, which carries the time budget and the counts of
what was replaced (kinds and numbers only, never values).

The walker is iterative (an explicit stack), so nesting depth is limited only
by memory. It scrubs dict keys as well as values, tuples, sets, bytes, and
strings that hold JSON (parsed, scrubbed and re-serialised when something
changed). It fails closed: when a detector or the user callback raises, or
the time budget is spent, the affected value becomes ``<REDACTION_FAILED>``,
never the raw value, and the failure is counted.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from aitel.redaction._engine import Engine, shared_engine
from aitel.redaction.keys import is_credential_key
from aitel.redaction.patterns import (
    CREDENTIAL,
    CREDENTIAL_MARKER,
    CREDIT_CARD,
    DETECTORS,
    FAILED_MARKER,
    KINDS,
    PII,
    REDACTION_FAILED,
    SECRET,
    Detector,
    Finding,
    Recognizer,
    custom_detector,
)
from aitel.redaction.presets import Preset, resolve_presets

__all__ = [
    "NullRedactor",
    "RedactionMatch",
    "RedactionSession",
    "Redactor",
    "ScrubResult",
]

CYCLE_MARKER: Final = "<CYCLE>"
DEFAULT_TIME_BUDGET_S: Final = 0.5

Path = tuple[Any, ...]
"""Where a value sits: dict keys and list indexes from the root."""


@dataclass(frozen=True, slots=True)
class RedactionMatch:
    """One span about to be replaced, as the user callback sees it."""

    path: Path
    kind: str
    value: str
    replacement: str
    in_key: bool = False


RedactionCallback = Callable[[RedactionMatch], "str | None"]
"""Returns the replacement for a match, or ``None`` for the default one."""


@dataclass(frozen=True, slots=True)
class ScrubResult:
    """A scrubbed value and what was replaced in it, by kind."""

    value: Any
    counts: dict[str, int] = field(default_factory=dict)


_KEEP_TYPES = (
    int,
    float,
    bool,
    type(None),
    decimal.Decimal,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    complex,
    enum.Enum,
)

# Path nodes are linked ``(parent, key)`` pairs; ``()`` is the root. Building
# a tuple per node would cost O(depth) each, O(depth**2) for deep values.
_PathNode = tuple[Any, ...]


def _path_tuple(node: _PathNode) -> Path:
    keys: list[Any] = []
    while node:
        node, key = node
        keys.append(key)
    keys.reverse()
    return tuple(keys)


def _path_node(path: Iterable[Any]) -> _PathNode:
    node: _PathNode = ()
    for key in path:
        node = (node, key)
    return node


_KEY_CACHE_SIZE = 4096
"""Dict keys with no finding are remembered (with their credential verdict), up to this many."""
_CLOCK_EVERY = 15
_LONG_TEXT = 256
"""The budget clock is read before every long text and on every 16th container or short text."""

_VISIT, _EXIT, _TUPLE, _JSON = 0, 1, 2, 3
_WHITESPACE = " \t\r\n"
_JSON_FIRST = frozenset("{[ \t\r\n")


def _json_container(text: str) -> Any:
    """The list or dict ``text`` encodes, or ``None``."""
    if len(text) < 2:
        return None
    first, last = text[0], text[-1]
    if first in _WHITESPACE or last in _WHITESPACE:
        stripped = text.strip(_WHITESPACE)
        if len(stripped) < 2:
            return None
        first, last = stripped[0], stripped[-1]
    if not ((first == "{" and last == "}") or (first == "[" and last == "]")):
        return None
    try:
        parsed = orjson.loads(text)
    except (orjson.JSONDecodeError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict | list) else None


class Redactor:
    """Replaces secrets and personal data in text and JSON-like values.

    ``preset`` names what is detected and hidden (see :data:`aitel.redaction.PRESETS`;
    presets combine). ``kinds`` replaces the preset's detection kinds with an
    explicit list (kind names or the categories ``"secret"`` and ``"pii"``);
    ``exclude`` removes kinds. ``patterns`` adds ``{name: regex}`` detectors
    (a ``secret`` group limits what is replaced). Values under ``safe_keys``
    (case-insensitive dict keys) are kept as they are. ``callback`` sees each
    match and returns its replacement, or ``None`` for the default.
    ``recognizers`` adds extra span finders (for example the Presidio adapter).
    ``time_budget_s`` bounds each session (one packet); ``clock`` is its time
    source.
    """

    def __init__(
        self,
        preset: str | Iterable[str] = "secrets",
        *,
        kinds: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        patterns: Mapping[str, str | re.Pattern[str]] | None = None,
        safe_keys: Iterable[str] = (),
        callback: RedactionCallback | None = None,
        recognizers: Sequence[Recognizer] = (),
        time_budget_s: float = DEFAULT_TIME_BUDGET_S,
        parse_json_strings: bool = True,
        mask_credential_keys: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.preset: Preset = resolve_presets(preset)
        enabled = _kinds_for(self.preset.categories) if kinds is None else _expand(kinds)
        enabled -= _expand(exclude)
        self.kinds: frozenset[str] = frozenset(enabled)
        detectors = [d for d in DETECTORS if d.kind in self.kinds]
        detectors.extend(custom_detector(name, regex) for name, regex in (patterns or {}).items())
        self.detectors: tuple[Detector, ...] = tuple(detectors)
        self.safe_keys: frozenset[str] = frozenset(k.lower() for k in safe_keys)
        self.callback = callback
        self.time_budget_s = float(time_budget_s)
        self.parse_json_strings = parse_json_strings
        self.mask_credential_keys = mask_credential_keys
        self.clock = clock
        # Dict keys with no finding -> whether they name a credential (bounded).
        self._clean_keys: dict[str, bool] = {}
        self._engine = (
            Engine(self.detectors, tuple(recognizers))
            if recognizers
            else shared_engine(self.detectors)
        )
        self._cards_in_numbers = CREDIT_CARD in self.kinds

    def __repr__(self) -> str:
        return f"Redactor(preset={self.preset.name!r}, kinds={sorted(self.kinds)!r})"

    def find(self, text: str) -> list[Finding]:
        """Sensitive spans of ``text``, sorted and non-overlapping."""
        return self._engine.find(text)

    def could_match(
        self,
        text: str | bytes,
        also_lowered: tuple[str, ...] = (),
        check: Callable[[str | bytes, int], bool] | None = None,
    ) -> bool:
        """False only when no detector (nor a word of ``also_lowered``) can match in ``text``.

        Cheap and conservative; the words are looked for in the lower-cased text.
        ``text`` may be UTF-8 bytes (one Hyperscan pass when it is installed).
        ``check(scanned, index)``, when given, decides whether a needle found at
        ``index`` of the text scanned counts (the redaction processor's
        whole-packet pre-check passes one).
        """
        return self._engine.could_match(text, also_lowered, check)

    def session(self, time_budget_s: float | None = None) -> RedactionSession:
        """A unit of work (one packet) sharing a time budget and counts."""
        budget = self.time_budget_s if time_budget_s is None else time_budget_s
        return RedactionSession(self, budget)

    def redact_text(self, text: str) -> str:
        """``text`` with every finding replaced."""
        return self.session().text(text)

    def redact(self, value: Any) -> Any:
        """A scrubbed copy of a JSON-like ``value``."""
        return self.session().value(value)

    def scrub(self, value: Any) -> ScrubResult:
        """A scrubbed copy of ``value`` and the counts of what was replaced."""
        session = self.session()
        result = session.value(value)
        return ScrubResult(result, dict(session.counts))


def _kinds_for(categories: Iterable[str]) -> set[str]:
    return {d.kind for d in DETECTORS if d.category in set(categories)}


def _expand(names: Iterable[str]) -> set[str]:
    if isinstance(names, str):
        names = [names]
    kinds: set[str] = set()
    for name in names:
        if name in (SECRET, PII):
            kinds |= _kinds_for([name])
        elif name in KINDS:
            kinds.add(name)
        else:
            known = ", ".join(sorted(KINDS | {SECRET, PII}))
            raise ValueError(f"unknown redaction kind {name!r}; known kinds: {known}")
    return kinds


class RedactionSession:
    """Scrubs values for one unit of work; ``counts`` says what was replaced."""

    def __init__(self, redactor: Redactor, time_budget_s: float) -> None:
        self.redactor = redactor
        self.counts: dict[str, int] = {}
        self.changes = 0
        self._clock = redactor.clock
        self.deadline = self._clock() + time_budget_s
        self._expired = False
        self._find = redactor._engine.find
        self._callback = redactor.callback
        self._safe_keys = redactor.safe_keys
        self._mask_keys = redactor.mask_credential_keys
        self._parse_json = redactor.parse_json_strings
        self._cards_in_numbers = redactor._cards_in_numbers
        self._keys = redactor._clean_keys
        self._clean = redactor._engine.clean
        self._ticks = 0
        self._stack: list[tuple[Any, ...]] = []
        self._active: set[int] = set()

    # -- bookkeeping --------------------------------------------------------

    def note(self, kind: str, count: int = 1) -> None:
        """Count ``count`` replacements of ``kind``."""
        self.counts[kind] = self.counts.get(kind, 0) + count
        self.changes += count

    def failed(self) -> str:
        """Count one failure and return the marker that replaces the value."""
        self.note(REDACTION_FAILED)
        return FAILED_MARKER

    @property
    def expired(self) -> bool:
        """True once the time budget is spent (then every further text fails closed)."""
        if not self._expired and self._clock() > self.deadline:
            self._expired = True
        return self._expired

    # -- text ---------------------------------------------------------------

    def find(self, text: str) -> list[Finding] | None:
        """Findings in ``text``; ``None`` when detection failed or time ran out."""
        if self.expired:
            return None
        try:
            return self._find(text)
        except Exception:
            return None

    def text(self, text: str, path: Iterable[Any] = ()) -> str:
        """``text`` with every finding replaced."""
        return self._text(text, _path_node(path), False)

    def _text(self, text: str, node: _PathNode, in_key: bool) -> str:
        self._ticks += 1
        if self._expired or (
            (len(text) > _LONG_TEXT or not self._ticks & _CLOCK_EVERY)
            and self._clock() > self.deadline
        ):
            self._expired = True
            return self.failed()
        try:
            findings = self._find(text)
        except Exception:
            return self.failed()
        if not findings:
            return text
        return self._apply(text, findings, node, in_key)

    def _apply(self, text: str, findings: list[Finding], node: _PathNode, in_key: bool) -> str:
        callback = self._callback
        parts: list[str] = []
        kinds: list[str] = []
        last = 0
        for finding in findings:
            replacement = finding.replacement
            if callback is not None:
                value = text[finding.start : finding.end]
                match = RedactionMatch(
                    _path_tuple(node), finding.kind, value, finding.replacement, in_key
                )
                try:
                    custom: object = callback(match)
                except Exception:
                    return self.failed()
                if custom is not None:
                    if not isinstance(custom, str):
                        return self.failed()
                    replacement = custom
                if replacement == value:
                    continue
            parts.append(text[last : finding.start])
            parts.append(replacement)
            kinds.append(finding.kind)
            last = finding.end
        if not kinds:
            return text
        parts.append(text[last:])
        for kind in kinds:
            self.note(kind)
        return "".join(parts)

    def _credential(self, value: Any, node: _PathNode) -> Any:
        """The replacement for a value stored under a credential key."""
        if value is None or isinstance(value, bool) or value == "":
            return value
        if self._callback is not None:
            shown = value if isinstance(value, str) else type(value).__name__
            match = RedactionMatch(_path_tuple(node), CREDENTIAL, shown, CREDENTIAL_MARKER)
            try:
                custom = self._callback(match)
            except Exception:
                return self.failed()
            if isinstance(custom, str):
                if custom != shown:
                    self.note(CREDENTIAL)
                return custom
        self.note(CREDENTIAL)
        return CREDENTIAL_MARKER

    def _number(self, value: int) -> Any:
        """An integer that is a payment card number is replaced as text would be."""
        findings = self.find(str(value))
        if findings is None:
            return self.failed()
        if len(findings) == 1 and findings[0].kind == CREDIT_CARD:
            self.note(CREDIT_CARD)
            return findings[0].replacement
        return value

    # -- keys ---------------------------------------------------------------

    def _key(self, key: Any, node: _PathNode) -> Any:
        if isinstance(key, str):
            return self._text(key, node, True)
        if isinstance(key, _KEEP_TYPES):
            return key
        if isinstance(key, bytes):
            return self._bytes(key, node, True)
        if isinstance(key, tuple):
            return self._key_tuple(key, node, 0)
        return self._other(key, node, True)

    def _key_tuple(self, value: tuple[Any, ...], node: _PathNode, depth: int) -> Any:
        """A tuple used as a dict key (hashable, so small and acyclic)."""
        if depth > 32:
            return self.failed()
        items: list[Any] = []
        for item in value:
            if isinstance(item, tuple):
                items.append(self._key_tuple(item, node, depth + 1))
            else:
                items.append(self._key(item, node))
        return tuple(items)

    def _bytes(self, data: bytes, node: _PathNode, in_key: bool) -> Any:
        text = data.decode("utf-8", "surrogateescape")
        scrubbed = self._text(text, node, in_key)
        if scrubbed is text:
            return data
        return scrubbed.encode("utf-8", "surrogateescape")

    def _other(self, value: Any, node: _PathNode, in_key: bool) -> Any:
        """A value of an unknown type is replaced by its scrubbed ``str()``."""
        try:
            text = str(value)
        except Exception:
            return self.failed()
        return self._text(text, node, in_key)

    # -- values -------------------------------------------------------------

    def value(self, value: Any, path: Iterable[Any] = ()) -> Any:
        """A scrubbed copy of ``value`` (any depth, cycles cut, odd types tolerated)."""
        holder: list[Any] = [None]
        stack: list[tuple[Any, ...]] = [(_VISIT, value, holder, 0, _path_node(path))]
        active: set[int] = set()
        outer = self._stack, self._active
        self._stack, self._active = stack, active
        pop, visit, walk_dict, walk_sequence = stack.pop, self._visit, self._dict, self._sequence
        try:
            while stack:
                frame = pop()
                op = frame[0]
                if op == _VISIT:
                    _, item, parent, slot, node = frame
                    kind = type(item)
                    if kind is dict:
                        parent[slot] = walk_dict(item, node)
                    elif kind is list:
                        walk_sequence(item, node, parent, slot)
                    else:
                        visit(item, node, parent, slot)
                elif op == _EXIT:
                    active.discard(frame[1])
                elif op == _TUPLE:
                    _, items, parent, slot = frame
                    parent[slot] = tuple(items)
                else:
                    _, original, inner, parent, slot, changes = frame
                    parent[slot] = self._reserialise(original, inner[0], changes)
        finally:
            self._stack, self._active = outer
        return holder[0]

    def _reserialise(self, original: str, scrubbed: Any, changes_before: int) -> str:
        if self.changes == changes_before:
            return original
        try:
            return orjson.dumps(scrubbed).decode()
        except (TypeError, orjson.JSONEncodeError):
            return self.failed()

    def _put_string(self, text: str, node: _PathNode, parent: Any, slot: Any) -> None:
        """Store the scrubbed ``text``; JSON in it is parsed and walked instead."""
        if self._parse_json and len(text) >= 2 and text[0] in _JSON_FIRST and not self._expired:
            parsed = _json_container(text)
            if parsed is not None:
                inner: list[Any] = [None]
                parent[slot] = None
                self._stack.append((_JSON, text, inner, parent, slot, self.changes))
                self._stack.append((_VISIT, parsed, inner, 0, node))
                return
        parent[slot] = self._text(text, node, False)

    def _visit(self, value: Any, node: _PathNode, parent: Any, slot: Any) -> None:
        if isinstance(value, str):
            self._put_string(value, node, parent, slot)
        elif value is None or isinstance(value, bool | float):
            parent[slot] = value
        elif isinstance(value, int):
            cards = self._cards_in_numbers and abs(value) >= 10**12
            parent[slot] = self._number(value) if cards else value
        elif isinstance(value, dict):
            parent[slot] = self._dict(value, node)
        elif isinstance(value, list | tuple | set | frozenset):
            self._sequence(value, node, parent, slot)
        elif isinstance(value, bytes | bytearray | memoryview):
            try:
                data = bytes(value)
            except Exception:
                parent[slot] = self.failed()
            else:
                parent[slot] = self._bytes(data, node, False)
        elif isinstance(value, _KEEP_TYPES):
            parent[slot] = value
        elif isinstance(value, Mapping):
            try:
                items = dict(value.items())
            except Exception:
                parent[slot] = self.failed()
            else:
                parent[slot] = self._dict(items, node)
        else:
            parent[slot] = self._other(value, node, False)

    def _tick(self) -> None:
        """Read the budget clock on every 16th call (containers, short texts)."""
        self._ticks += 1
        if not self._ticks & _CLOCK_EVERY and not self._expired and self._clock() > self.deadline:
            self._expired = True

    def _dict(self, value: dict[Any, Any], node: _PathNode) -> Any:
        self._tick()
        active, stack = self._active, self._stack
        marker = id(value)
        if marker in active:
            return CYCLE_MARKER
        try:
            items = list(value.items())
        except Exception:
            return self.failed()
        active.add(marker)
        stack.append((_EXIT, marker))
        out: dict[Any, Any] = {}
        safe_keys = self._safe_keys
        clean_keys = self._keys
        clean = self._clean
        mask_keys = self._mask_keys
        parse_json = self._parse_json
        # {"token": "Hello", "logprob": -0.1} holds a text token, not a credential.
        text_token = "logprob" in value
        pending: list[tuple[Any, ...]] = []
        for key, item in items:
            credential = False
            if type(key) is str:
                if safe_keys and key.lower() in safe_keys:
                    out[_unique(out, key) if key in out else key] = item
                    continue
                known = clean_keys.get(key)
                if known is None:
                    new_key: Any = self._text(key, (node, key), True)
                    credential = mask_keys and is_credential_key(key)
                    if new_key is key and not self._expired:
                        if len(clean_keys) >= _KEY_CACHE_SIZE:
                            clean_keys.clear()
                        clean_keys[key] = credential
                else:
                    new_key, credential = key, known
                if credential and text_token and key == "token":
                    credential = False
            else:
                new_key = self._key(key, (node, key))
            if new_key in out:
                new_key = _unique(out, new_key)
            if credential:
                out[new_key] = self._credential(item, (node, key))
            elif type(item) is str:
                if parse_json and len(item) >= 2 and item[0] in _JSON_FIRST:
                    self._put_string(item, (node, key), out, new_key)
                elif item in clean:
                    out[new_key] = item
                else:
                    out[new_key] = self._text(item, (node, key), False)
            elif item is None or isinstance(item, bool | float):
                out[new_key] = item
            else:
                out[new_key] = None
                pending.append((_VISIT, item, out, new_key, (node, key)))
        stack.extend(reversed(pending))  # popped in document order
        return out

    def _sequence(
        self,
        value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any],
        node: _PathNode,
        parent: Any,
        slot: Any,
    ) -> None:
        active, stack = self._active, self._stack
        marker = id(value)
        if marker in active:
            parent[slot] = CYCLE_MARKER
            return
        try:
            items = list(value)
        except Exception:
            parent[slot] = self.failed()
            return
        active.add(marker)
        stack.append((_EXIT, marker))
        out: list[Any] = [None] * len(items)
        parent[slot] = out
        if isinstance(value, tuple):
            # Runs after every item below is scrubbed (the stack is LIFO).
            stack.append((_TUPLE, out, parent, slot))
        parse_json = self._parse_json
        clean = self._clean
        self._tick()
        pending: list[tuple[Any, ...]] = []
        for index, item in enumerate(items):
            if isinstance(item, str):
                if parse_json and len(item) >= 2 and item[0] in _JSON_FIRST:
                    self._put_string(item, (node, index), out, index)
                elif item in clean:
                    out[index] = item
                else:
                    out[index] = self._text(item, (node, index), False)
            elif item is None or isinstance(item, bool | float):
                out[index] = item
            else:
                pending.append((_VISIT, item, out, index, (node, index)))
        stack.extend(reversed(pending))  # popped in document order


def _unique(out: dict[Any, Any], key: Any) -> Any:
    """``key``, or ``key#2``, ``key#3``... when scrubbing made two keys equal."""
    if key not in out:
        return key
    base = key if isinstance(key, str) else str(key)
    number = 2
    while f"{base}#{number}" in out:
        number += 1
    return f"{base}#{number}"


class NullRedactor:
    """A redactor that changes nothing (the null object)."""

    preset: Preset = resolve_presets("none")
    kinds: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return "NullRedactor()"

    def find(self, text: str) -> list[Finding]:
        return []

    def redact_text(self, text: str) -> str:
        return text

    def redact(self, value: Any) -> Any:
        return value

    def scrub(self, value: Any) -> ScrubResult:
        return ScrubResult(value, {})
