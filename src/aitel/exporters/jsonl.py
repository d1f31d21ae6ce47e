"""JSONL files: one packet per line, the embedded default destination.

Each batch is written with ``writev`` calls of whole lines on a file opened
for appending, so a reader (``tail -f``, ``aitel analyze``) sees whole lines
while the file grows. Every process writes its own file (the pid is in the
name), so forked workers never interleave. Files rotate by size.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .._fileio import write_lines
from .base import EncodedPacket, ExportResult

DEFAULT_DIRECTORY = "aitel-telemetry"
DIRECTORY_ENV = "AITEL_DIR"


def default_directory() -> Path:
    return Path(os.environ.get(DIRECTORY_ENV) or DEFAULT_DIRECTORY)


class JsonlExporter:
    """Writes packets to ``<directory>/<prefix>-<start time>-<pid>-<n>.jsonl``."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        prefix: str = "packets",
        max_file_bytes: int = 256 * 1024 * 1024,
        fsync: bool = False,
    ) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()
        self.prefix = prefix
        self.max_file_bytes = max_file_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._sequence = 0
        self._closed = False

    @property
    def path(self) -> Path | None:
        """The file being written, once the first packet arrived."""
        return self._path

    def files(self) -> list[Path]:
        """Every file this exporter has written in its directory, oldest first."""
        return sorted(self.directory.glob(f"{self.prefix}-*.jsonl"))

    def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
        if not batch:
            return ExportResult.ok(0)
        lines = [packet.data for packet in batch]
        size = sum(map(len, lines)) + len(lines)
        with self._lock:
            if self._closed:
                return ExportResult.transient(batch, "exporter is shut down")
            try:
                if self._fd is None or self._size + size > self.max_file_bytes:
                    self._rotate()
                assert self._fd is not None
                write_lines(self._fd, lines)
                self._size += size
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as exc:
                self._close_file()
                return ExportResult.transient(batch, f"{type(exc).__name__}: {exc}")
        return ExportResult.ok(len(batch))

    def _rotate(self) -> None:
        self._close_file()
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.directory / f"{self.prefix}-{stamp}-{os.getpid()}-{self._sequence:04d}.jsonl"
        self._sequence += 1
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._path = path
        self._size = os.fstat(self._fd).st_size

    def _close_file(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def after_fork(self) -> None:
        """In a forked child: write a file of our own."""
        self._lock = threading.Lock()
        self._fd = None
        self._path = None
        self._sequence = 0

    def force_flush(self, timeout_s: float) -> bool:
        with self._lock:
            if self._fd is not None and self.fsync:
                try:
                    os.fsync(self._fd)
                except OSError:
                    return False
        return True

    def shutdown(self, timeout_s: float) -> None:
        with self._lock:
            self._closed = True
            self._close_file()
