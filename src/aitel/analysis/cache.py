"""A per-file cache of the facts extracted from packet files.

Parsing JSON is what analysis spends its time on: a million RAG packets are
about 10 GB of text, but the facts the reports need are about 100 bytes a
packet. The first analysis of a file stores its extracted rows;
later analyses of the unchanged file read those instead of the JSON.
Rotated packet files never change, so on a live directory only the file
being written is parsed again.

Entries are DuckDB database files: analysis attaches them read-only and
queries them in place, so a cached file costs neither parsing nor loading.

An entry is valid for one file as it was (device, inode, size, modification
and change times) and one version of the extraction; anything else is a
miss and the entry is rewritten. One entry per source path, so the cache
grows with the number of files, not with the number of analyses; entries of
deleted files and entries unused for 30 days are pruned. The cache is a
convenience: when it cannot be read or written, analysis goes on
without it. Delete the directory at any time to clear it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["CachedFile", "FactCache", "default_cache_dir"]

CACHE_ENV = "AITEL_ANALYSIS_CACHE"
"""Directory of the cache; ``off`` (or ``0``/``false``/``no``) disables it."""

_OFF = {"off", "0", "false", "no", "none", ""}

DEFAULT_KEEP_S = 30 * 24 * 3600.0
"""Entries not used for this long are deleted (their files may be analysed again later)."""


def default_cache_dir() -> Path | None:
    """``$AITEL_ANALYSIS_CACHE``, else ``$XDG_CACHE_HOME/aitel/analysis``, else ``~/.cache/...``.

    None when the variable turns the cache off.
    """
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return None if configured.strip().lower() in _OFF else Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aitel" / "analysis"


@dataclass(slots=True)
class CachedFile:
    """What loading one file produced, besides its rows."""

    rows: int = 0
    malformed_lines: int = 0
    lenient: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Entry:
    facts: Path
    meta: Path


class FactCache:
    """Database files of extracted rows (table ``facts``), one per source file, under ``root``.

    ``version`` names the extraction (the projection and read schema): an
    entry written by another version is a miss.
    """

    def __init__(self, root: Path, version: str) -> None:
        self.root = root
        self.version = version

    def _entry(self, source: Path) -> _Entry:
        name = hashlib.sha256(str(source).encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return _Entry(self.root / f"{name}.duckdb", self.root / f"{name}.json")

    def _key(self, source: Path, st: os.stat_result) -> dict[str, Any]:
        return {
            "version": self.version,
            "path": str(source),
            "dev": st.st_dev,
            "ino": st.st_ino,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns,
        }

    def lookup(self, source: Path, st: os.stat_result) -> tuple[Path, CachedFile] | None:
        """The facts file and load record of ``source`` as it is now, or None."""
        entry = self._entry(source)
        try:
            meta = orjson.loads(entry.meta.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(meta, dict) or meta.get("key") != self._key(source, st):
            return None
        if not entry.facts.is_file():
            return None
        try:
            record = CachedFile(
                rows=int(meta["rows"]),
                malformed_lines=int(meta["malformed_lines"]),
                lenient=bool(meta["lenient"]),
                problems=[str(p) for p in meta["problems"]],
            )
        except (KeyError, TypeError, ValueError):
            return None
        with contextlib.suppress(OSError):
            os.utime(entry.meta)  # last use, for :meth:`prune`
        return entry.facts, record

    def prune(self, unused_for_s: float = DEFAULT_KEEP_S, *, now: float | None = None) -> int:
        """Delete entries whose source file is gone or that were not used for a while.

        Also removes temporary files left by an analysis that died while
        writing (older than an hour). Returns the number of files deleted.
        """
        now = time.time() if now is None else now
        removed = 0
        try:
            names = os.listdir(self.root)
        except OSError:
            return 0
        for name in names:
            path = self.root / name
            try:
                age = now - path.stat().st_mtime
            except OSError:
                continue
            if ".tmp." in name:
                if age > 3600:
                    removed += self._remove(path)
                continue
            if not name.endswith(".json"):
                if not path.with_suffix(".json").exists() and age > 3600:
                    removed += self._remove(path)  # facts without a record
                continue
            try:
                source = orjson.loads(path.read_bytes())["key"]["path"]
            except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
                source = None
            if source is not None and age <= unused_for_s and os.path.exists(source):
                continue
            removed += self._remove(path) + self._remove(path.with_suffix(".duckdb"))
        return removed

    @staticmethod
    def _remove(path: Path) -> int:
        try:
            path.unlink()
        except OSError:
            return 0
        return 1

    def staging_path(self, source: Path) -> Path | None:
        """Where to write a new facts file for ``source`` (then :meth:`commit` it)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        entry = self._entry(source)
        return entry.facts.with_name(f"{entry.facts.stem}.{os.getpid()}.tmp.duckdb")

    def commit(
        self, source: Path, st: os.stat_result, staged: Path, record: CachedFile
    ) -> Path | None:
        """Publish a staged facts file with its record: its final path, or None on failure."""
        entry = self._entry(source)
        meta = {
            "key": self._key(source, st),
            "rows": record.rows,
            "malformed_lines": record.malformed_lines,
            "lenient": record.lenient,
            "problems": record.problems,
        }
        meta_tmp = entry.meta.with_name(f"{entry.meta.stem}.{os.getpid()}.tmp.json")
        try:
            # Invalidate first, so a reader never pairs the new record with old facts.
            with contextlib.suppress(FileNotFoundError):
                entry.meta.unlink()
            os.replace(staged, entry.facts)
            meta_tmp.write_bytes(orjson.dumps(meta))
            os.replace(meta_tmp, entry.meta)
        except OSError:
            self.discard(staged)
            self.discard(meta_tmp)
            return None
        return entry.facts

    @staticmethod
    def discard(path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()
