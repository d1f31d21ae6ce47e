"""The collector's storage: one SQLite file in WAL mode, written by one thread.

Table ``packets(packet_id TEXT PRIMARY KEY, received_at TEXT, body BLOB)``
holds each packet's JSON bytes once (``INSERT OR IGNORE`` deduplicates by
``packet_id``); ``aitel analyze`` reads it. WAL mode lets other processes read
while the collector writes.

Requests hand batches to a bounded queue; the writer thread commits queued
batches together (group commit) and only then resolves their futures, so an
HTTP answer means "committed". With ``synchronous="FULL"`` (default) the
commit is also fsynced.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS packets (
    packet_id TEXT PRIMARY KEY,
    received_at TEXT,
    body BLOB
)
"""
GROUP_COMMIT_BATCHES = 32


class StoreBusy(Exception):
    """The write queue is full: the client should come back later."""


class StoreClosed(Exception):
    """The store is shutting down."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    duplicates: int


@dataclass
class _Job:
    rows: Sequence[tuple[str, bytes]]
    future: Future[WriteResult]


def connect(path: str | Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection to the store in WAL mode, with the ``packets`` table created."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={_synchronous(synchronous)}")
    conn.execute(SCHEMA)
    return conn


def _synchronous(value: str) -> str:
    mode = value.strip().upper()
    if mode not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {value!r}")
    return mode


class PacketStore:
    """A bounded write queue in front of one SQLite writer thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_pending_batches: int = 64,
        synchronous: str = "FULL",
    ) -> None:
        self.path = Path(path)
        self.synchronous = _synchronous(synchronous)
        self.max_pending_batches = max_pending_batches
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._count = 0
        self.write_errors = 0

    def start(self) -> None:
        """Open the database (raising if it cannot be opened) and start the writer."""
        if self._thread is not None:
            return
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path, synchronous=self.synchronous)
        (self._count,) = conn.execute("SELECT count(*) FROM packets").fetchone()
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="aitel-collector-writer", daemon=True
        )
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        return self._pending

    @property
    def count(self) -> int:
        """Packets stored (committed)."""
        return self._count

    def submit(self, rows: Sequence[tuple[str, bytes]]) -> Future[WriteResult]:
        """Queue rows ``(packet_id, body)``; the future resolves once they are committed."""
        future: Future[WriteResult] = Future()
        with self._lock:
            if self._closed or self._thread is None:
                raise StoreClosed("the store is not running")
            if self._pending >= self.max_pending_batches:
                raise StoreBusy(f"{self._pending} batches waiting to be written")
            self._pending += 1
        self._queue.put(_Job(rows, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self, conn: sqlite3.Connection) -> None:
        stop = False
        try:
            while not stop:
                first = self._queue.get()
                if first is None:
                    break
                jobs = [first]
                while len(jobs) < GROUP_COMMIT_BATCHES:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stop = True
                        break
                    jobs.append(job)
                self._write(conn, jobs)
        finally:
            conn.close()

    def _write(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        received_at = (
            datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        )
        results: list[WriteResult] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in jobs:
                before = conn.total_changes
                conn.executemany(
                    "INSERT OR IGNORE INTO packets (packet_id, received_at, body) VALUES (?, ?, ?)",
                    [(packet_id, received_at, body) for packet_id, body in job.rows],
                )
                inserted = conn.total_changes - before
                results.append(WriteResult(inserted, len(job.rows) - inserted))
            conn.execute("COMMIT")
        except Exception as exc:
            self.write_errors += 1
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for job in jobs:
                self._finish(job, error=exc)
            return
        self._count += sum(r.inserted for r in results)
        for job, result in zip(jobs, results, strict=True):
            self._finish(job, result=result)

    def _finish(
        self, job: _Job, *, result: WriteResult | None = None, error: BaseException | None = None
    ) -> None:
        with self._lock:
            self._pending -= 1
        if error is not None:
            job.future.set_exception(error)
        elif result is not None:
            job.future.set_result(result)
