"""One pass over a document's UTF-8 bytes for all needles at once, with Hyperscan.

The regex plan of :mod:`aitel.redaction._engine` scans a document once per
rare character (about 1 ns per character per scan, some twenty scans); a
Hyperscan database of the same needles scans it once, at several bytes per
nanosecond. It serves only the whole-document pre-check, and only when the
``hyperscan`` package imports and compiles on this machine. Otherwise
:func:`needle_scanner` returns ``None`` and the regex plan does the work.

Needles are ASCII. The lower-cased needles are matched case-insensitively
on ASCII letters, as the regex plan matches them in the lower-cased text;
the one non-ASCII character that lower-cases to an ASCII letter, the Kelvin
sign, sends its document to the regex plan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


def _import_hyperscan() -> Any:
    try:
        import hyperscan
    except ImportError:  # no wheel for this platform: the regex plan does the work
        return None
    return hyperscan


hyperscan: Any = _import_hyperscan()

__all__ = ["NeedleScanner", "needle_scanner"]

Check = Callable[[bytes, int], bool]
"""Asked about each place a needle occurs (the bytes and its start); True means it counts."""


class NeedleScanner:
    """Finds whether any of a set of ASCII needles occurs in UTF-8 bytes."""

    __slots__ = ("_database", "_lengths", "_local")

    def __init__(self, needles: Iterable[tuple[bool, str]]) -> None:
        """``needles``: ``(case-insensitive?, needle)`` pairs."""
        chosen = sorted(set(needles))
        if hyperscan is None:
            raise RuntimeError("hyperscan is not installed")
        if not chosen or not all(needle.isascii() and needle for _, needle in chosen):
            raise ValueError("needles must be non-empty ASCII")
        database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        expressions = [_literal(needle) for _, needle in chosen]
        flags = [hyperscan.HS_FLAG_CASELESS if caseless else 0 for caseless, _ in chosen]
        # the last id: a Kelvin sign, which makes the document one to leave to the regex plan
        database.compile(
            expressions=[*expressions, b"\\xe2\\x84\\xaa"],
            ids=list(range(len(chosen) + 1)),
            flags=[*flags, 0],
        )
        self._database = database
        self._lengths = tuple(len(needle) for _, needle in chosen)
        self._local = threading.local()  # a scratch space per thread

    def could_match(self, data: bytes, check: Check | None = None) -> bool | None:
        """True when a needle occurs (where ``check`` accepts it).

        None for a document this scanner cannot judge (one with a Kelvin sign).
        A scan error counts as a match: the caller then does the careful work.
        """
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
        lengths = self._lengths
        kelvin = len(lengths)
        verdict: bool | None = False

        def on_match(needle: int, _start: int, end: int, _flags: int, _context: Any) -> bool:
            nonlocal verdict
            if needle == kelvin:
                verdict = None
                return True  # stop
            verdict = check is None or check(data, end - lengths[needle])
            return verdict

        try:
            self._database.scan(data, match_event_handler=on_match, scratch=scratch)
        except hyperscan.ScanTerminated:
            return verdict
        except Exception:  # a scan error, or a check that raised
            return True
        return verdict


def _literal(needle: str) -> bytes:
    """``needle`` as a Hyperscan pattern that matches it literally."""
    return "".join(f"\\x{ord(char):02x}" for char in needle).encode()


def needle_scanner(needles: Iterable[tuple[bool, str]]) -> NeedleScanner | None:
    """A compiled scanner, or None when Hyperscan is missing or cannot compile here."""
    try:
        return NeedleScanner(needles)
    except Exception:  # not installed, an unsupported CPU, a database error: fall back
        return None
