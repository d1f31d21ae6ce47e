"""A disk spool for packets that could not be delivered yet.

Layout
------
::

    <directory>/
        <created-ns>-<pid>-<random>/    one per process that spooled something
            LOCK                        flock()ed by its owner while it lives
            ACK                         read position: segment, offset, CRC32
            0000000000000001.seg        append-only segments of records
            0000000000000002.seg

Each record is ``magic(4) | length(4) | crc32(payload)(4) | crc32(header[:12])(4)``
followed by the payload (``packet_id`` length, ``packet_id``, the packet's
JSON bytes). A damaged header is found by its own CRC and skipped by scanning
for the next valid header; a damaged payload is skipped by its length. Only
the damaged records are lost, and they are counted.

Processes sharing a directory
-----------------------------
Every process writes only into its own subdirectory, which it holds locked
(``fcntl.flock``) for as long as it lives. A subdirectory whose lock can be
taken belongs to a process that has ended - normally, by a signal or by
``SIGKILL``, since the kernel releases the lock with the process - and is
*adopted*: its unacknowledged records are replayed from its ``ACK`` position
and the subdirectory is deleted once empty. Because adoption requires the
lock, no two processes ever replay the same subdirectory, and what a process
acknowledged is never replayed by the next one. A forked child starts its own
subdirectory and never touches its parent's. The directory must be on a local
file system (``flock`` over NFS is not reliable).

Guarantees
----------
A packet is *acknowledged to the spool* when :meth:`DiskSpool.put` returns
a count that includes it. It then survives the end of the process in any way
(including ``SIGKILL``), because the bytes are in the kernel once ``write``
returns. ``fsync`` decides what survives a machine crash or power loss:
``"always"`` (default) syncs every ``put`` before returning, ``"interval"``
at most every ``fsync_interval_s`` (that window can be lost), ``"never"``
leaves it to the kernel. The read position is written after each
:meth:`ack`; if it is lost, records are delivered again (at-least-once; the
collector deduplicates by ``packet_id``), never skipped.

Full or read-only disks never raise: records that cannot be written are
counted (``write_errors``) and :meth:`put` reports fewer stored. The total size
is capped (``max_bytes``); the oldest segments are evicted first and their
records counted (``evicted``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import struct
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from ._safety import internal_log, report_internal_error
from .exporters.base import EncodedPacket

_flock: Callable[[int, int], None] | None
try:
    import fcntl

    _flock = fcntl.flock
    _LOCK_NOW = fcntl.LOCK_EX | fcntl.LOCK_NB
except ImportError:  # pragma: no cover - not POSIX: no adoption of other processes' spools
    _flock = None
    _LOCK_NOW = 0

FsyncPolicy = Literal["always", "interval", "never"]

MAGIC = b"\xa7SP1"
HEADER = struct.Struct("<4sIII")
ACK_FORMAT = struct.Struct("<QQI")
MAX_RECORD_BYTES = 256 * 1024 * 1024
SEGMENT_SUFFIX = ".seg"
LOCK_NAME = "LOCK"
ACK_NAME = "ACK"


def encode_record(packet: EncodedPacket) -> bytes:
    """One record: header, then ``packet_id`` and the packet's bytes."""
    packet_id = packet.packet_id.encode("utf-8", "surrogatepass")[:65535]
    payload = struct.pack("<H", len(packet_id)) + packet_id + packet.data
    head = struct.pack("<4sII", MAGIC, len(payload), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def _decode_payload(payload: bytes) -> EncodedPacket | None:
    if len(payload) < 2:
        return None
    (id_len,) = struct.unpack_from("<H", payload)
    if 2 + id_len > len(payload):
        return None
    packet_id = payload[2 : 2 + id_len].decode("utf-8", "replace")
    return EncodedPacket(packet_id, payload[2 + id_len :])


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """Counters of one :class:`DiskSpool` (this process)."""

    pending: int
    pending_bytes: int
    stored: int
    acked: int
    evicted: int
    corrupt_records: int
    corrupt_bytes: int
    write_errors: int
    fsync_errors: int
    too_large: int
    adopted_dirs: int


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int
    records: int  # records not yet acknowledged (as far as known)


@dataclass
class _Source:
    """One subdirectory: the process's own, or one adopted from an ended process."""

    path: Path
    lock_fd: int | None
    own: bool
    segments: dict[int, _Segment] = field(default_factory=dict)
    read_seq: int = 0
    read_off: int = 0

    @property
    def pending(self) -> int:
        return sum(s.records for s in self.segments.values())

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments.values())


@dataclass
class _Taken:
    source: _Source
    positions: list[tuple[int, int]]  # (segment, end offset) after each record taken


class DiskSpool:
    """Append-only, CRC-checked, size-capped segments; see the module docstring."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = 512 * 1024 * 1024,
        fsync: FsyncPolicy = "always",
        fsync_interval_s: float = 1.0,
        segment_bytes: int | None = None,
        adopt_interval_s: float = 5.0,
    ) -> None:
        if fsync not in ("always", "interval", "never"):
            raise ValueError(f"fsync must be 'always', 'interval' or 'never', not {fsync!r}")
        self.directory = Path(directory)
        self.max_bytes = max(int(max_bytes), 1024)
        self.fsync: FsyncPolicy = fsync
        self.fsync_interval_s = fsync_interval_s
        self.segment_bytes = segment_bytes or max(min(self.max_bytes // 8, 16 * 1024 * 1024), 4096)
        self.adopt_interval_s = adopt_interval_s
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "stored",
                "acked",
                "evicted",
                "corrupt_records",
                "corrupt_bytes",
                "write_errors",
                "fsync_errors",
                "too_large",
                "adopted_dirs",
            ),
            0,
        )
        self._init_state()
        _spools.add(self)

    def _init_state(self) -> None:
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._own: _Source | None = None
        self._adopted: list[_Source] = []
        self._write_fd: int | None = None
        self._write_seq = 0
        self._last_fsync = 0.0
        self._dirty = False
        self._taken: _Taken | None = None
        self._last_adopt = -float("inf")

    # -- public API ------------------------------------------------------------------

    def put(self, batch: Sequence[EncodedPacket]) -> int:
        """Append ``batch``; returns how many records are now stored (never raises)."""
        if not batch:
            return 0
        with self._lock:
            self._check_fork()
            try:
                return self._put(batch)
            except Exception as exc:
                report_internal_error("spool.put", exc)
                return 0

    def take(self, max_items: int) -> list[EncodedPacket]:
        """The oldest pending records, up to ``max_items``, without removing them."""
        with self._lock:
            self._check_fork()
            try:
                return self._take(max(max_items, 0))
            except Exception as exc:
                report_internal_error("spool.take", exc)
                return []

    def ack(self, count: int) -> None:
        """Remove the first ``count`` records of the last :meth:`take`."""
        with self._lock:
            self._check_fork()
            try:
                self._ack(count)
            except Exception as exc:
                report_internal_error("spool.ack", exc)

    def pending(self) -> int:
        """Records stored and not yet acknowledged (including adopted ones)."""
        with self._lock:
            self._check_fork()
            try:
                self._maybe_adopt(force=self._last_adopt == -float("inf"))
            except Exception as exc:
                report_internal_error("spool.adopt", exc)
            return sum(source.pending for source in self._sources())

    def stats(self) -> SpoolStats:
        with self._lock:
            sources = self._sources()
            return SpoolStats(
                pending=sum(s.pending for s in sources),
                pending_bytes=sum(s.size for s in sources),
                **self._counts,
            )

    def close(self) -> None:
        """Sync, persist read positions and release the locks. A later ``put`` starts over."""
        with self._lock:
            if self._pid != os.getpid():
                self._forget()
                return
            try:
                self._sync(force=True)
            finally:
                own = self._own
                if own is not None and own.pending == 0:
                    self._close_writer()
                    self._remove_source(own)
                for source in self._sources():
                    self._release(source)
                self._close_writer()
                self._own = None
                self._adopted = []
                self._taken = None

    # -- writing -----------------------------------------------------------------------

    def _put(self, batch: Sequence[EncodedPacket]) -> int:
        records: list[bytes] = []
        for packet in batch:
            record = encode_record(packet)
            if len(record) > min(self.max_bytes, MAX_RECORD_BYTES):
                self._counts["too_large"] += 1
                continue
            records.append(record)
        if not records:
            return 0
        try:
            own = self._own_source()
        except OSError as exc:
            self._write_failed(len(records), exc)
            return 0
        stored = 0
        index = 0
        while index < len(records):
            self._make_room(len(records[index]))
            seg = self._writer(own)
            if seg is None:
                self._write_failed(len(records) - index, None)
                break
            chunk: list[bytes] = []
            size = seg.size
            total = self._total_bytes()
            while index + len(chunk) < len(records):
                record = records[index + len(chunk)]
                if chunk and size + len(record) > self.segment_bytes:
                    break
                if chunk and total + len(record) > self.max_bytes:
                    break
                chunk.append(record)
                size += len(record)
                total += len(record)
            written = self._append(seg, chunk)
            stored += written
            index += len(chunk)
            if written < len(chunk):
                self._write_failed(len(records) - (index - len(chunk)) - written, None)
                break
            if seg.size >= self.segment_bytes:
                self._close_writer()
        if stored:
            self._counts["stored"] += stored
            self._sync(force=self.fsync == "always")
        return stored

    def _append(self, seg: _Segment, chunk: list[bytes]) -> int:
        """Write ``chunk`` at the end of ``seg``; on error keep only whole records."""
        fd = self._write_fd
        assert fd is not None
        data = b"".join(chunk)
        view = memoryview(data)
        done = 0
        self._dirty = True  # a segment closed from here on is synced first
        try:
            while done < len(data):
                done += os.write(fd, view[done:])
        except OSError as exc:
            whole, boundary = 0, 0
            for record in chunk:
                if boundary + len(record) > done:
                    break
                boundary += len(record)
                whole += 1
            if done > boundary:
                try:
                    os.ftruncate(fd, seg.size + boundary)
                except OSError:
                    boundary = done  # the torn tail stays; readers skip it by its CRC
            seg.size += boundary
            seg.records += whole
            self._close_writer()
            internal_log.log(
                logging.WARNING,
                "spool-write",
                f"aitel: spool write failed: {type(exc).__name__}: {exc}",
            )
            return whole
        seg.size += len(data)
        seg.records += len(chunk)
        return len(chunk)

    def _write_failed(self, count: int, exc: BaseException | None) -> None:
        self._counts["write_errors"] += count
        if exc is not None:
            internal_log.log(
                logging.WARNING,
                "spool-write",
                f"aitel: cannot spool {count} packets: {type(exc).__name__}: {exc}",
            )

    def _own_source(self) -> _Source:
        if self._own is not None and self._own.path.is_dir():
            return self._own
        if self._own is not None:  # the directory vanished under us: start over
            self._close_writer()
            self._release(self._own)
            self._own = None
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
        staging = self.directory / f".new-{name}"
        staging.mkdir()
        lock_fd = None
        try:
            lock_fd = os.open(staging / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            if _flock is not None:
                _flock(lock_fd, _LOCK_NOW)
            final = self.directory / name
            os.rename(staging, final)
        except OSError:
            if lock_fd is not None:
                os.close(lock_fd)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if self.fsync != "never":
            _fsync_dir(self.directory)
        self._own = _Source(path=final, lock_fd=lock_fd, own=True, read_seq=1)
        self._write_seq = 0
        return self._own

    def _writer(self, own: _Source) -> _Segment | None:
        """The segment being appended to, opening a new one when needed."""
        seg = own.segments.get(self._write_seq)
        if self._write_fd is not None and seg is not None:
            return seg
        self._close_writer()
        seq = max([self._write_seq, *own.segments]) + 1
        path = own.path / f"{seq:016d}{SEGMENT_SUFFIX}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o644)
        except OSError as exc:
            self._write_failed(0, exc)
            return None
        if self.fsync != "never":
            _fsync_dir(own.path)
        self._write_fd = fd
        self._write_seq = seq
        seg = _Segment(seq=seq, path=path, size=0, records=0)
        own.segments[seq] = seg
        if len(own.segments) == 1:  # nothing older left to read: start here
            own.read_seq, own.read_off = seq, 0
        return seg

    def _close_writer(self) -> None:
        fd, self._write_fd = self._write_fd, None
        if fd is None:
            return
        if self._dirty and self.fsync != "never":
            try:
                os.fsync(fd)
            except OSError:
                self._counts["fsync_errors"] += 1
            self._dirty = False
        with contextlib.suppress(OSError):
            os.close(fd)

    def _sync(self, *, force: bool) -> None:
        if not self._dirty or self._write_fd is None or self.fsync == "never":
            return
        now = time.monotonic()
        if not force and now - self._last_fsync < self.fsync_interval_s:
            return
        try:
            os.fsync(self._write_fd)
        except OSError as exc:
            self._counts["fsync_errors"] += 1
            internal_log.log(logging.WARNING, "spool-fsync", f"aitel: spool fsync failed: {exc}")
        self._dirty = False
        self._last_fsync = now

    def _total_bytes(self) -> int:
        return sum(source.size for source in self._sources())

    def _make_room(self, needed: int) -> None:
        """Evict the oldest segments until ``needed`` more bytes fit under ``max_bytes``."""
        while self._total_bytes() + needed > self.max_bytes:
            victim = self._oldest_segment()
            if victim is None:
                if self._write_fd is None:
                    return
                self._close_writer()  # the segment being written is the only one: retire it
                continue
            source, seg = victim
            self._counts["evicted"] += seg.records
            internal_log.log(
                logging.WARNING,
                "spool-evict",
                f"aitel: spool over {self.max_bytes} bytes; evicted {seg.records} oldest packets",
            )
            self._drop_segment(source, seg)
            if source.read_seq == seg.seq:
                later = [s for s in source.segments if s > seg.seq]
                source.read_seq, source.read_off = (min(later) if later else seg.seq + 1), 0
            if self._taken is not None and self._taken.source is source:
                self._taken = None
            if not source.own and not source.segments:
                self._remove_source(source)

    def _oldest_segment(self) -> tuple[_Source, _Segment] | None:
        for source in self._sources():
            for seq in sorted(source.segments):
                if source.own and seq == self._write_seq and self._write_fd is not None:
                    continue
                return source, source.segments[seq]
        return None

    # -- reading -----------------------------------------------------------------------

    def _sources(self) -> list[_Source]:
        """Oldest first: adopted subdirectories (earlier processes), then our own."""
        own = [self._own] if self._own is not None else []
        return [*self._adopted, *own]

    def _take(self, max_items: int) -> list[EncodedPacket]:
        self._maybe_adopt()
        self._taken = None
        if max_items <= 0:
            return []
        for source in list(self._sources()):
            items, positions = self._read(source, max_items)
            if items:
                self._taken = _Taken(source, positions)
                return items
            if not source.own and source.pending == 0:
                self._remove_source(source)
        return []

    def _read(
        self, source: _Source, max_items: int
    ) -> tuple[list[EncodedPacket], list[tuple[int, int]]]:
        items: list[EncodedPacket] = []
        positions: list[tuple[int, int]] = []
        for seq in sorted(s for s in source.segments if s >= source.read_seq):
            seg = source.segments[seq]
            start = source.read_off if seq == source.read_seq else 0
            if not items and seq != source.read_seq:
                source.read_seq, source.read_off = seq, 0  # earlier segments hold nothing left
            try:
                handle = open(seg.path, "rb")  # noqa: SIM115 - closed by the with below
            except FileNotFoundError:
                source.segments.pop(seq, None)
                continue
            with handle:
                limit = seg.size if source.own else os.fstat(handle.fileno()).st_size
                for offset, end, payload in _scan(handle, start, limit):
                    packet = _decode_payload(payload) if payload is not None else None
                    if packet is None:
                        if items:  # deliver what came before; skip the damage next time
                            return items, positions
                        self._count_corrupt(source, seg, end - offset)
                        source.read_seq, source.read_off = seq, end
                        self._write_ack(source)
                        continue
                    items.append(packet)
                    positions.append((seq, end))
                    if len(items) >= max_items:
                        return items, positions
            if not items and not (source.own and seq == self._write_seq):
                seg.records = 0  # nothing readable is left in it
        return items, positions

    def _count_corrupt(self, source: _Source, seg: _Segment, size: int) -> None:
        self._counts["corrupt_records"] += 1
        self._counts["corrupt_bytes"] += size
        if source.own:  # adopted segments only ever counted their intact records
            seg.records = max(seg.records - 1, 0)
        internal_log.log(
            logging.WARNING,
            "spool-corrupt",
            f"aitel: skipped {size} damaged bytes in spool segment {seg.path}",
        )

    def _ack(self, count: int) -> None:
        taken, self._taken = self._taken, None
        if taken is None or count <= 0:
            return
        count = min(count, len(taken.positions))
        source = taken.source
        per_segment: dict[int, int] = {}
        for seq, _ in taken.positions[:count]:
            per_segment[seq] = per_segment.get(seq, 0) + 1
        for seq, n in per_segment.items():
            seg = source.segments.get(seq)
            if seg is not None:
                seg.records = max(seg.records - n, 0)
        source.read_seq, source.read_off = taken.positions[count - 1]
        self._counts["acked"] += count
        self._write_ack(source)
        for seq in sorted(source.segments):
            seg = source.segments[seq]
            consumed = seq < source.read_seq or (
                seq == source.read_seq and source.read_off >= seg.size
            )
            if not consumed:
                continue
            if source.own and seq == self._write_seq and self._write_fd is not None:
                if seg.records == 0:
                    self._close_writer()  # rotate: a fresh segment for the next put
                    self._drop_segment(source, seg)
                continue
            self._drop_segment(source, seg)
        if not source.own and source.pending == 0 and not source.segments:
            self._remove_source(source)

    def _drop_segment(self, source: _Source, seg: _Segment) -> None:
        source.segments.pop(seg.seq, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(seg.path)

    def _write_ack(self, source: _Source) -> None:
        head = struct.pack("<QQ", source.read_seq, source.read_off)
        data = head + struct.pack("<I", zlib.crc32(head))
        tmp = source.path / f"{ACK_NAME}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                if self.fsync == "always":
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, source.path / ACK_NAME)
        except OSError as exc:  # the position is lost: records will be delivered again
            internal_log.log(
                logging.WARNING, "spool-ack", f"aitel: could not save spool position: {exc}"
            )

    # -- adoption of subdirectories left by ended processes -------------------------

    def _maybe_adopt(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_adopt < self.adopt_interval_s:
            return
        self._last_adopt = now
        if _flock is None or not self.directory.is_dir():
            return
        known = {s.path.name for s in self._sources()}
        try:
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name in known or not entry.is_dir(follow_symlinks=False):
                continue
            if entry.name.startswith(".new-"):
                self._clean_staging(entry)
                continue
            if entry.name.startswith("."):
                continue
            source = self._try_adopt(Path(entry.path))
            if source is not None:
                self._adopted.append(source)
                self._counts["adopted_dirs"] += 1

    def _try_adopt(self, path: Path) -> _Source | None:
        lock_fd = _try_lock(path)
        if lock_fd is None:
            return None
        source = _Source(path=path, lock_fd=lock_fd, own=False)
        read_seq, read_off = _read_ack(path / ACK_NAME)
        try:
            names = os.listdir(path)
        except OSError:
            self._release(source)
            return None
        for name in names:
            if not name.endswith(SEGMENT_SUFFIX):
                continue
            try:
                seq = int(name[: -len(SEGMENT_SUFFIX)])
            except ValueError:
                continue
            seg_path = path / name
            if seq < read_seq:  # acknowledged before the owner could delete it
                with contextlib.suppress(OSError):
                    os.unlink(seg_path)
                continue
            try:
                size = seg_path.stat().st_size
            except OSError:
                continue
            source.segments[seq] = _Segment(seq=seq, path=seg_path, size=size, records=0)
        if read_seq not in source.segments:
            read_off = 0
            later = [s for s in source.segments if s >= read_seq]
            read_seq = min(later) if later else read_seq
        source.read_seq, source.read_off = read_seq, read_off
        damaged = [0, 0]
        for seq, seg in source.segments.items():
            start = read_off if seq == read_seq else 0
            seg.records, regions, size = _count_records(seg.path, start)
            damaged[0] += regions
            damaged[1] += size
        if source.pending == 0:  # nothing readable: count the damage now, as no read will
            self._counts["corrupt_records"] += damaged[0]
            self._counts["corrupt_bytes"] += damaged[1]
            self._remove_source(source)
            return None
        return source

    def _clean_staging(self, entry: os.DirEntry[str]) -> None:
        """Remove a subdirectory whose creator died before finishing it (after a minute)."""
        try:
            if time.time() - entry.stat(follow_symlinks=False).st_mtime < 60:
                return
        except OSError:
            return
        path = Path(entry.path)
        lock_fd = _try_lock(path)
        if lock_fd is None:
            return
        shutil.rmtree(path, ignore_errors=True)
        os.close(lock_fd)

    def _remove_source(self, source: _Source) -> None:
        """Delete a drained subdirectory (files first, then the lock, then the directory)."""
        if source in self._adopted:
            self._adopted.remove(source)
        if source is self._own:
            self._own = None
        for seg in list(source.segments.values()):
            self._drop_segment(source, seg)
        for name in (ACK_NAME, f"{ACK_NAME}.tmp"):
            with contextlib.suppress(OSError):
                os.unlink(source.path / name)
        try:
            leftovers = [n for n in os.listdir(source.path) if n != LOCK_NAME]
        except OSError:
            leftovers = []
        if not leftovers:
            with contextlib.suppress(OSError):
                os.unlink(source.path / LOCK_NAME)
            with contextlib.suppress(OSError):
                os.rmdir(source.path)
        self._release(source)

    def _release(self, source: _Source) -> None:
        fd, source.lock_fd = source.lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- fork ------------------------------------------------------------------------------

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            self._forget()

    def _forget(self) -> None:
        """In a forked child: drop the parent's files without touching its locks or data."""
        for fd in [self._write_fd, *(s.lock_fd for s in self._sources())]:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)  # closes our copy only; the parent keeps its lock
        self._init_state()


def _scan(handle: BinaryIO, start: int, limit: int) -> Iterator[tuple[int, int, bytes | None]]:
    """``(offset, next offset, payload or None if damaged)`` per record in ``[start, limit)``."""
    pos = start
    while pos < limit:
        handle.seek(pos)
        head = handle.read(HEADER.size)
        if len(head) < HEADER.size:
            yield pos, limit, None  # torn tail
            return
        magic, length, payload_crc, head_crc = HEADER.unpack(head)
        if magic != MAGIC or zlib.crc32(head[:12]) != head_crc or length > MAX_RECORD_BYTES:
            following = _resync(handle, pos + 1, limit)
            yield pos, following, None
            pos = following
            continue
        end = pos + HEADER.size + length
        if end > limit:
            yield pos, limit, None  # torn tail
            return
        payload = handle.read(length)
        if len(payload) != length or zlib.crc32(payload) != payload_crc:
            yield pos, end, None
        else:
            yield pos, end, payload
        pos = end


def _resync(handle: BinaryIO, start: int, limit: int) -> int:
    """The offset of the next valid header at or after ``start`` (``limit`` if none)."""
    handle.seek(start)
    data = handle.read(max(limit - start, 0))
    at = 0
    while True:
        at = data.find(MAGIC, at)
        if at < 0 or at + HEADER.size > len(data):
            return limit
        head = data[at : at + HEADER.size]
        if zlib.crc32(head[:12]) == HEADER.unpack(head)[3]:
            return start + at
        at += 1


def _count_records(path: Path, start: int) -> tuple[int, int, int]:
    """Intact records, damaged regions and damaged bytes from ``start`` to the end of a file."""
    intact = regions = damaged = 0
    try:
        with open(path, "rb") as handle:
            limit = os.fstat(handle.fileno()).st_size
            for offset, end, payload in _scan(handle, start, limit):
                if payload is not None and _decode_payload(payload) is not None:
                    intact += 1
                else:
                    regions += 1
                    damaged += end - offset
    except OSError:
        pass
    return intact, regions, damaged


def _read_ack(path: Path) -> tuple[int, int]:
    try:
        data = path.read_bytes()
    except OSError:
        return 0, 0
    if len(data) != ACK_FORMAT.size:
        return 0, 0
    seq, off, crc = ACK_FORMAT.unpack(data)
    if zlib.crc32(data[:16]) != crc:
        return 0, 0
    return seq, off


def _try_lock(path: Path) -> int | None:
    """An exclusive lock on ``path/LOCK`` if no live process holds it."""
    if _flock is None:
        return None
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        try:  # a read-only file system: records can still be read (positions are not saved)
            fd = os.open(path / LOCK_NAME, os.O_RDONLY)
        except OSError:
            return None
    try:
        _flock(fd, _LOCK_NOW)
    except OSError:
        os.close(fd)
        return None
    if not path.is_dir():
        os.close(fd)
        return None
    return fd


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_spools: weakref.WeakSet[DiskSpool] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for spool in list(_spools):
        spool._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
