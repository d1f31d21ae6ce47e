"""Fast, fork-safe ids.

Ids are made from an in-process generator seeded once from the OS (and
reseeded in a forked child), not from ``os.urandom`` per id: a system call
per id releases the GIL on every event and starves background threads.
"""

from __future__ import annotations

import os
import random
import time

_rng = random.Random(int.from_bytes(os.urandom(16), "big"))


def _reseed() -> None:
    _rng.seed(int.from_bytes(os.urandom(16), "big"))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)

_VERSION_7 = 0x7 << 76
_VARIANT = 0x2 << 62


def uuid7_int() -> int:
    """A UUIDv7 as an integer: 48-bit Unix milliseconds, then 74 random bits."""
    rand = _rng.getrandbits(74)
    return (
        (time.time_ns() // 1_000_000) << 80
        | _VERSION_7
        | (rand >> 62) << 64
        | _VARIANT
        | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    )


def new_id() -> str:
    """A time-ordered UUIDv7 string."""
    h = f"{uuid7_int():032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_trace_id() -> str:
    """A 32-hex-digit trace id (W3C / OpenTelemetry), time-ordered."""
    return f"{uuid7_int():032x}"


def trace_id_from_uuid(value: str) -> str:
    """The 32-hex form of a UUID string."""
    return value.replace("-", "").lower()
