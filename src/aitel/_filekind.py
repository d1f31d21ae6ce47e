"""What a packet file holds, read from its first bytes rather than its name."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

FileKind = Literal["jsonl", "gzip", "zstd", "sqlite"]

SQLITE_MAGIC = b"SQLite format 3\x00"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sniff(path: Path) -> FileKind:
    """``sqlite``, ``gzip``, ``zstd`` or (anything else, unreadable included) ``jsonl``."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError:
        head = b""
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "jsonl"
