"""The export pipeline: it owns *when* packets leave, never *where*.

``submit`` is the only call on the application's thread: it appends to a
bounded queue and returns. When the queue is full and there is a spool, the
submitting thread turns the item into a packet itself and stages it for the
spool ("caller runs"): a burst larger than the queue costs the application
that work instead of losing packets. Without a spool, or with
``overflow="drop"``, the item is dropped and counted.

One background worker turns queued traces into packets soon after they
arrive (a few at a time, so the framework's objects they hold are released
young, before Python's cycle collector promotes them to its oldest
generation), runs the processors (redaction first) and encodes once. The
encoded packets wait for a batch by count, bytes and time, and batches go
to the exporter. Batches that fail transiently go to the spool when
there is one and are replayed later; everything that is not delivered is
counted, never silently lost.

The pipeline flushes at exit and on SIGTERM (chaining the previous handler)
and re-initialises itself in a forked child (the parent keeps and sends what
it had queued, the child starts empty). In a ``multiprocessing`` child, which
ends without running ``atexit``, it flushes from a multiprocessing finalizer.

An exporter may offer ``set_deadline(deadline: float | None)`` (a
``time.monotonic()`` value): ``shutdown`` - and ``flush`` when there is a
spool - use it so that the exporter stops retrying in time for the rest to be
spooled or counted within the budget. It may offer
``limit_retries(max_elapsed_s: float | None)``: with a spool the pipeline
limits how long one batch is retried in place (``spool_after_s``), so that a
destination that is down sends batches to the spool instead of holding every
finished request queued behind them in memory.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from types import FrameType
from typing import Any, Protocol

from ._safety import internal_log, report_internal_error
from .config import OverflowPolicy
from .exporters.base import EncodedPacket, Exporter, ExportResult, wants_packet_dicts
from .jsonable import dumps
from .processors.base import Packet, Processor
from .processors.limits import SizeLimitProcessor

Materializer = Callable[[Any], Packet]


class Spool(Protocol):
    """Durable storage for batches that could not be delivered yet."""

    def put(self, batch: Sequence[EncodedPacket]) -> int:
        """Store packets; returns how many were stored (the rest are counted as dropped)."""
        ...

    def take(self, max_items: int) -> Sequence[EncodedPacket]:
        """The oldest stored packets, up to ``max_items``, without removing them."""
        ...

    def ack(self, count: int) -> None:
        """Remove the ``count`` packets last returned by :meth:`take`."""
        ...

    def pending(self) -> int: ...

    def close(self) -> None: ...


_WAKE_EVERY = 4
"""Queued items that wake the worker to turn them into packets.

A finished request holds the framework's objects until it is turned into a
packet. Held for longer than a few requests, they outlive two of Python's
young collections and are promoted to the oldest generation; enough of those
make the interpreter run a full collection (50-130 ms here with the frameworks
loaded, holding the GIL). Turned into packets (bytes) a few at a time, they
die young.
"""

_SEND_EVERY = 32
"""Packets made ready that are sent as one batch before the schedule delay."""

_OVERFLOW_STAGE = 64
"""Overflowed packets written to the spool together (one write and fsync for all)."""


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    max_queue_size: int = 20_000
    max_batch_size: int = 512
    max_batch_bytes: int = 4 * 1024 * 1024
    schedule_delay_s: float = 0.5
    shutdown_timeout_s: float = 5.0
    spool_retry_interval_s: float = 5.0
    spool_after_s: float = 2.0
    """With a spool: how long a batch is retried in place before it is spooled instead.

    Applies to exporters that offer ``limit_retries`` (HTTP, OTLP); without a spool
    their own retry policy applies (20 s by default), as nothing else would keep
    the batch.
    """
    overflow: OverflowPolicy = "spool"
    """A full queue with a spool: ``"spool"`` (the caller runs) or ``"drop"`` (counted)."""


@dataclass(frozen=True, slots=True)
class PipelineStats:
    """A snapshot of the pipeline's counters.

    ``enqueued == exported + rejected + dropped_* + sampled_out + failed + spooled_pending
    + queue_depth + in_flight`` at every moment.
    """

    enqueued: int
    exported: int
    dropped_queue_full: int
    dropped_after_shutdown: int
    dropped_build_error: int
    dropped_processor_error: int
    dropped_export_failed: int
    dropped_spool_full: int
    sampled_out: int
    rejected: int
    spooled: int
    spool_pending: int
    queue_depth: int
    in_flight: int
    export_errors: int
    worker_restarts: int
    overflowed: int = 0
    """Items the submitting thread turned into packets because the queue was full."""

    @property
    def dropped(self) -> int:
        return (
            self.dropped_queue_full
            + self.dropped_after_shutdown
            + self.dropped_build_error
            + self.dropped_processor_error
            + self.dropped_export_failed
            + self.dropped_spool_full
        )

    def as_dict(self) -> dict[str, int]:
        data = asdict(self)
        data["dropped"] = self.dropped
        return data


class _Counters:
    """Mutable counters; written by the worker (and by callers only under a lock)."""

    def __init__(self) -> None:
        self.taken = 0
        self.in_flight = 0
        self.exported = 0
        self.rejected = 0
        self.sampled_out = 0
        self.spooled = 0
        self.export_errors = 0
        self.worker_restarts = 0
        self.dropped_queue_full = 0
        self.dropped_after_shutdown = 0
        self.dropped_build_error = 0
        self.dropped_processor_error = 0
        self.dropped_export_failed = 0
        self.dropped_spool_full = 0
        self.abandoned = 0  # taken off the queue by shutdown (counted as dropped_after_shutdown)

    def add(self, other: _Counters) -> _Counters:
        total = _Counters()
        for name, value in vars(self).items():
            setattr(total, name, value + getattr(other, name))
        return total


def _overrides_process(limit: SizeLimitProcessor) -> bool:
    return type(limit).process is not SizeLimitProcessor.process


class ExportPipeline:
    """Bounded queue + one background worker + an exporter (+ an optional spool)."""

    def __init__(
        self,
        exporter: Exporter,
        *,
        materialize: Materializer | None = None,
        processors: Sequence[Processor] = (),
        spool: Spool | None = None,
        config: PipelineConfig | None = None,
    ) -> None:
        self.exporter = exporter
        self._keep_dicts = wants_packet_dicts(exporter)
        self.processors = list(processors)
        # A trailing size limit runs as the encoder: a packet that fits is encoded once.
        # (Not a subclass with its own ``process``: that one runs as written.)
        last = self.processors[-1] if self.processors else None
        if isinstance(last, SizeLimitProcessor) and not _overrides_process(last):
            self._steps = self.processors[:-1]
            self._encode: Callable[[Packet], bytes] = last.encode
        else:
            self._steps = self.processors
            self._encode = dumps
        self.spool = spool
        self.config = config or PipelineConfig()
        self._materialize = materialize or _as_packet
        self._init_state()
        _register(self)
        if spool is not None:
            self._call_exporter("limit_retries", self.config.spool_after_s)
            # deliver what an earlier run left in the spool without new traffic
            self._start_worker()

    def _init_state(self) -> None:
        self._queue: deque[Any] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._drop_lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._counters = _Counters()
        # the caller-runs path has counters of its own, written under its lock only
        self._overflow_lock = threading.Lock()
        self._overflow_counters = _Counters()
        self._overflow_staged: list[EncodedPacket] = []
        self._worker: threading.Thread | None = None
        self._worker_waiting = False  # set by the worker under the condition's lock
        # Wake the worker early enough that a small queue never fills between wake-ups,
        # and often enough that few finished requests (each holding the framework's
        # objects until it is turned into a packet) wait in memory at once.
        config = self.config
        self._wake_at = max(1, min(_WAKE_EVERY, config.max_batch_size, config.max_queue_size // 4))
        self._send_at = max(1, min(_SEND_EVERY, config.max_batch_size, config.max_queue_size // 4))
        # Encoded packets waiting for a batch (worker side, under the export lock).
        self._ready: list[EncodedPacket] = []
        self._ready_bytes = 0
        self._ready_since = 0.0
        self._flush_target = 0
        self._stopping = False
        self._closed = False
        self._last_spool_try = 0.0
        self._spool_blocked_until = 0.0

    # -- caller side --------------------------------------------------------

    def submit(self, item: Any) -> bool:
        """Queue one item (a finished trace or a packet dict). Never blocks."""
        queue = self._queue
        if self._closed or len(queue) >= self.config.max_queue_size:
            if not self._closed and self.spool is not None and self.config.overflow == "spool":
                self._overflow(item)
                return True
            with self._drop_lock:
                if self._closed:
                    self._counters.dropped_after_shutdown += 1
                else:
                    self._counters.dropped_queue_full += 1
            if not self._closed:
                internal_log.log(
                    logging.WARNING, "queue-full", "aitel: export queue full; dropping packets"
                )
            return False
        queue.append(item)
        worker = self._worker
        queued = len(queue)
        # Notify only a waiting worker (one that is busy sees the queue when it looks
        # again): a notify costs the caller a few µs. A long queue always notifies,
        # which also restarts a worker that died.
        if worker is None or (
            queued >= self._wake_at and (self._worker_waiting or queued > self._send_at)
        ):
            self._wake(worker)
        return True

    def _overflow(self, item: Any) -> None:
        """The queue is full: make the packet here and stage it for the spool."""
        with self._overflow_lock:
            c = self._overflow_counters
            c.taken += 1
            encoded = self._prepare(item, c)
            if encoded is None:
                return
            c.in_flight += 1
            staged = self._overflow_staged
            staged.append(encoded)
            if len(staged) >= _OVERFLOW_STAGE:
                self._spool_staged()
        # no wake-up needed: the worker runs on its schedule and writes what is still staged
        internal_log.log(
            logging.WARNING,
            "queue-overflow",
            "aitel: export queue full; the application's threads are writing packets to the spool",
        )

    def _spool_staged(self) -> None:
        """Write the staged overflow to the spool (called under the overflow lock)."""
        staged = self._overflow_staged
        if not staged or self.spool is None:
            return
        batch = list(staged)
        staged.clear()
        self._overflow_counters.in_flight -= len(batch)
        self._spool_put(self.spool, batch, self._overflow_counters)

    @staticmethod
    def _spool_put(spool: Spool, batch: Sequence[EncodedPacket], c: _Counters) -> None:
        """Spool ``batch``; what the spool could not take is counted in ``c``."""
        try:
            stored = spool.put(batch)
        except Exception as exc:
            report_internal_error("spool.put", exc)
            stored = 0
        c.spooled += stored
        c.dropped_spool_full += len(batch) - stored

    def _put_overflow(self) -> None:
        if self._overflow_staged:
            with self._overflow_lock:
                self._spool_staged()

    def _wake(self, worker: threading.Thread | None) -> None:
        if worker is None or not worker.is_alive():
            self._start_worker()
        with self._cond:
            self._worker_waiting = False
            self._cond.notify()

    def _start_worker(self) -> None:
        with self._cond:
            if self._worker is not None and self._worker.is_alive():
                return
            if self._worker is not None:
                self._counters.worker_restarts += 1
            if self._closed:
                return
            self._worker = threading.Thread(target=self._run, name="aitel-export", daemon=True)
            self._worker.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver (or spool) everything submitted so far; False if ``timeout`` ran out."""
        deadline = time.monotonic() + max(timeout, 0.0)
        if self.spool is None:
            return self._flush(deadline)
        # "flushed" means delivered or spooled: stop retrying early enough to spool the rest
        self._call_exporter("set_deadline", deadline - self._spool_reserve(timeout))
        try:
            return self._flush(deadline)
        finally:
            if not self._closed:
                self._call_exporter("set_deadline", None)

    def _flush(self, deadline: float) -> bool:
        target = self._enqueued()
        with self._cond:
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
        if self._worker is None or not self._worker.is_alive():
            if self._queue and not self._closed:
                self._start_worker()
            elif self._queue:
                self._drain_inline(deadline)
        with self._cond:
            while self._finished() < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                worker = self._worker
                if worker is None or not worker.is_alive():
                    break
                self._cond.wait(min(remaining, 0.1))
        if self._finished() < target:
            return False
        remaining = max(deadline - time.monotonic(), 0.0)
        try:
            return bool(self.exporter.force_flush(remaining))
        except Exception as exc:
            report_internal_error("exporter.force_flush", exc)
            return False

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush within ``timeout`` and stop. Idempotent; later submits are counted as dropped."""
        if self._closed:
            return True
        budget = self.config.shutdown_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + budget
        # the last moments are kept for the batch in hand to be spooled (or counted)
        settle = deadline - min(0.25, budget * 0.05)
        self._call_exporter("set_deadline", settle - self._spool_reserve(budget))
        flushed = self._flush(settle)
        with self._cond:
            self._closed = True
            self._stopping = True
            self._cond.notify_all()
        worker = self._worker
        current = threading.current_thread()
        if worker is not None and worker is not current:
            worker.join(max(settle - time.monotonic(), 0.0))
        if (self._queue or self._ready) and (worker is None or not worker.is_alive()):
            self._drain_inline(settle)
        self._abandon_queue()
        if worker is not None and worker is not current:
            worker.join(max(deadline - time.monotonic(), 0.0))
        self._put_overflow()
        try:
            self.exporter.shutdown(max(deadline - time.monotonic(), 0.0))
        except Exception as exc:
            report_internal_error("exporter.shutdown", exc)
        if self.spool is not None:
            try:
                self.spool.close()
            except Exception as exc:
                report_internal_error("spool.close", exc)
        return flushed and not self._queue and not self._ready

    def _spool_reserve(self, budget: float) -> float:
        """The part of a flush/shutdown budget kept for spooling what was not delivered."""
        if self.spool is None:
            return 0.0
        return min(2.0, max(budget, 0.0) / 3)

    def _call_exporter(self, hook_name: str, value: float | None) -> None:
        """Call one of the exporter's optional hooks, if it has it.

        ``set_deadline``: when to stop retrying (None: no limit);
        ``limit_retries``: how long one batch may be retried in place.
        """
        hook = getattr(self.exporter, hook_name, None)
        if callable(hook):
            try:
                hook(value)
            except Exception as exc:
                report_internal_error(f"exporter.{hook_name}", exc)

    def _abandon_queue(self) -> None:
        """Packets still queued when the shutdown budget ran out are counted, not forgotten.

        Safe while the worker runs: each item is popped by exactly one thread, and
        this side has its own counter. Packets made ready and not sent are counted
        too, unless the worker is still busy with them (then they are in flight).
        """
        left = 0
        while True:
            try:
                self._queue.popleft()
            except IndexError:
                break
            left += 1
        ready = self._abandon_ready()
        if not left and not ready:
            return
        with self._drop_lock:
            self._counters.abandoned += left
            self._counters.dropped_after_shutdown += left + ready
        left += ready
        internal_log.log(
            logging.WARNING,
            "shutdown-leftovers",
            f"aitel: shutdown budget ran out; {left} queued packets dropped",
        )

    def _abandon_ready(self) -> int:
        """Spool the packets made ready and not sent, or count them as dropped (returned).

        Left alone while the worker is busy with them: they are then in flight.
        """
        if not self._ready or not self._export_lock.acquire(blocking=False):
            return 0
        try:
            batch = list(self._ready)
            self._ready.clear()
            self._ready_bytes = 0
            c = self._counters
            c.in_flight -= len(batch)
            if self.spool is not None:
                self._spool_put(self.spool, batch, c)
                return 0
            return len(batch)
        finally:
            self._export_lock.release()

    def stats(self) -> PipelineStats:
        c = self._counters.add(self._overflow_counters)
        spool_pending = 0
        if self.spool is not None:
            try:
                spool_pending = self.spool.pending()
            except Exception:
                spool_pending = -1
        return PipelineStats(
            enqueued=self._enqueued(),
            exported=c.exported,
            dropped_queue_full=c.dropped_queue_full,
            dropped_after_shutdown=c.dropped_after_shutdown,
            dropped_build_error=c.dropped_build_error,
            dropped_processor_error=c.dropped_processor_error,
            dropped_export_failed=c.dropped_export_failed,
            dropped_spool_full=c.dropped_spool_full,
            sampled_out=c.sampled_out,
            rejected=c.rejected,
            spooled=c.spooled,
            spool_pending=spool_pending,
            queue_depth=len(self._queue),
            in_flight=c.in_flight,
            export_errors=c.export_errors,
            worker_restarts=c.worker_restarts,
            overflowed=self._overflow_counters.taken,
        )

    # -- worker side ----------------------------------------------------------

    def _enqueued(self) -> int:
        c, o = self._counters, self._overflow_counters
        return c.taken + c.abandoned + len(self._queue) + o.taken

    def _finished(self) -> int:
        c, o = self._counters, self._overflow_counters
        return c.taken + c.abandoned - c.in_flight + o.taken - o.in_flight

    def _work_due(self) -> bool:
        return (
            self._stopping
            or len(self._queue) >= self._wake_at
            or self._flush_target > self._finished()
        )

    def _send_requested(self) -> bool:
        return self._stopping or self._flush_target > self._finished()

    def _batch_ready(self) -> bool:
        return len(self._ready) >= self._send_at or self._ready_bytes >= self.config.max_batch_bytes

    def _run(self) -> None:
        delay = self.config.schedule_delay_s
        while True:
            with self._cond:
                deadline = time.monotonic() + delay
                if self._ready:  # packets made ready leave within the delay
                    deadline = min(deadline, self._ready_since + delay)
                while True:
                    # Raised before each look at the queue: an item queued after the
                    # look finds it raised and notifies (see ``submit``).
                    self._worker_waiting = True
                    if self._work_due():
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                self._worker_waiting = False
                if self._stopping and not self._queue and not self._ready:
                    self._cond.notify_all()
                    return
                timed_out = not self._work_due()
            try:
                self._process_available(send_all=timed_out)
                self._replay_spool()
            except Exception as exc:  # keep the worker alive whatever happens
                report_internal_error("pipeline.worker", exc)
            with self._cond:
                self._cond.notify_all()

    def _drain_inline(self, deadline: float) -> None:
        """Export what is left on the calling thread (shutdown without a live worker)."""
        while (self._queue or self._ready) and time.monotonic() < deadline:
            try:
                self._process_available()
            except Exception as exc:
                report_internal_error("pipeline.drain", exc)
                break

    def _process_available(self, send_all: bool = True) -> None:
        """Make queued items ready; send a full batch, or everything when ``send_all``.

        After a send, another leaves only when a full one is ready (or a flush or
        stop asks): a slow destination would otherwise get a stream of tiny
        batches, whatever arrived during each send, each paying a whole
        request's cost. What is left waits for more, or for the schedule delay.
        """
        with self._export_lock:
            while True:
                self._make_ready()
                if not self._ready:
                    break
                if not (send_all or self._batch_ready() or self._send_requested()):
                    break
                self._export(self._take_batch())
                send_all = False
        self._put_overflow()

    def _make_ready(self) -> None:
        """Turn queued items into encoded packets, up to one batch waiting."""
        config = self.config
        ready = self._ready
        queue = self._queue
        c = self._counters
        while (
            queue
            and len(ready) < config.max_batch_size
            and self._ready_bytes < config.max_batch_bytes
        ):
            item = queue.popleft()
            c.in_flight += 1
            c.taken += 1
            encoded = self._prepare(item, c)
            if encoded is None:
                c.in_flight -= 1
                continue
            if not ready:
                self._ready_since = time.monotonic()
            ready.append(encoded)
            self._ready_bytes += len(encoded.data)

    def _take_batch(self) -> list[EncodedPacket]:
        """The oldest ready packets within the batch limits.

        The packet that crosses the byte limit still goes with this batch.
        """
        config = self.config
        ready = self._ready
        count = 0
        size = 0
        while (
            count < len(ready) and count < config.max_batch_size and size < config.max_batch_bytes
        ):
            size += len(ready[count].data)
            count += 1
        batch = ready[:count]
        del ready[:count]
        self._ready_bytes -= size
        return batch

    def _prepare(self, item: Any, c: _Counters) -> EncodedPacket | None:
        """Materialize, process and encode one item; failures are counted in ``c``."""
        try:
            packet: Packet = self._materialize(item)
        except Exception as exc:
            c.dropped_build_error += 1
            report_internal_error("pipeline.build", exc)
            return None
        for processor in self._steps:
            try:
                processed = processor.process(packet)
            except Exception as exc:  # fail closed: never export an unprocessed packet
                c.dropped_processor_error += 1
                report_internal_error(f"processor.{type(processor).__name__}", exc)
                return None
            if processed is None:
                c.sampled_out += 1
                return None
            packet = processed
        try:
            data = self._encode(packet)
        except Exception as exc:
            c.dropped_build_error += 1
            report_internal_error("pipeline.encode", exc)
            return None
        return EncodedPacket(
            str(packet.get("packet_id", "")), data, packet if self._keep_dicts else None
        )

    def _export(self, batch: list[EncodedPacket]) -> None:
        c = self._counters
        try:
            result = self.exporter.export(batch)
        except Exception as exc:  # exporters must not raise; if one does, retry later
            report_internal_error(f"exporter.{type(self.exporter).__name__}", exc)
            result = ExportResult.transient(batch, f"{type(exc).__name__}: {exc}")
        self._account(result, len(batch))
        c.in_flight -= len(batch)

    def _account(self, result: ExportResult, size: int) -> None:
        c = self._counters
        c.exported += result.exported
        c.rejected += result.rejected
        if result.rejected:
            internal_log.log(
                logging.WARNING,
                "export-rejected",
                f"aitel: destination rejected {result.rejected} packets: {result.error}",
            )
        retry = list(result.retry)
        unaccounted = size - result.exported - result.rejected - len(retry)
        if unaccounted > 0:
            c.dropped_export_failed += unaccounted
        if not retry:
            return
        c.export_errors += 1
        self._spool_blocked_until = time.monotonic() + (
            result.retry_after_s or self.config.spool_retry_interval_s
        )
        if self.spool is None:
            c.dropped_export_failed += len(retry)
            internal_log.log(
                logging.WARNING,
                "export-failed",
                f"aitel: export failed, {len(retry)} packets dropped: {result.error}",
            )
            return
        self._spool_put(self.spool, retry, c)

    def _replay_spool(self) -> None:
        spool = self.spool
        if spool is None or self._stopping:
            return
        now = time.monotonic()
        if now < self._spool_blocked_until:
            return
        with self._export_lock:
            while not self._queue and not self._stopping:
                batch = list(spool.take(self.config.max_batch_size))
                if not batch:
                    return
                try:
                    result = self.exporter.export(batch)
                except Exception as exc:
                    report_internal_error("exporter.replay", exc)
                    return
                if result.retry:
                    self._spool_blocked_until = time.monotonic() + (
                        result.retry_after_s or self.config.spool_retry_interval_s
                    )
                    return
                spool.ack(len(batch))
                c = self._counters
                c.exported += result.exported
                c.rejected += result.rejected
                c.spooled -= len(batch)

    # -- process lifecycle ----------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """The child starts with an empty queue; the parent still owns what it queued."""
        self._init_state()
        reopen = getattr(self.exporter, "after_fork", None)
        if callable(reopen):
            try:
                reopen()
            except Exception as exc:
                report_internal_error("exporter.after_fork", exc)


def _as_packet(item: Any) -> Packet:
    if isinstance(item, dict):
        return item
    raise TypeError(f"cannot export {type(item).__name__}; give the pipeline a materializer")


# -- process-wide registry: exit, SIGTERM, fork ---------------------------------

_pipelines: weakref.WeakSet[ExportPipeline] = weakref.WeakSet()
_exit_hooks: list[Callable[[], None]] = []
_previous_sigterm: Any = None
_sigterm_installed = False


def _register(pipeline: ExportPipeline) -> None:
    _pipelines.add(pipeline)
    _install_sigterm_handler()
    _flush_at_exit_of_multiprocessing_child()


_mp_child_finalizer = False


def _flush_at_exit_of_multiprocessing_child() -> None:
    """In a forkserver or spawn child, which may end without ``atexit``, flush from a finalizer."""
    global _mp_child_finalizer
    mp = sys.modules.get("multiprocessing")
    if _mp_child_finalizer or mp is None or mp.parent_process() is None:
        return
    _mp_child_finalizer = True
    _register_mp_finalizer(None)


def add_exit_hook(hook: Callable[[], None]) -> None:
    """Run ``hook`` before pipelines shut down at exit (e.g. hand over open traces)."""
    _exit_hooks.append(hook)


def shutdown_all(timeout: float | None = None) -> None:
    """Flush and stop every live pipeline (at exit, on SIGTERM)."""
    for hook in list(_exit_hooks):
        with contextlib.suppress(Exception):
            hook()
    for pipeline in list(_pipelines):
        try:
            pipeline.shutdown(timeout)
        except Exception as exc:
            report_internal_error("pipeline.shutdown_all", exc)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    shutdown_all()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_handler() -> None:
    global _previous_sigterm, _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    if os.environ.get("AITEL_NO_SIGNAL_HANDLERS"):
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not allowed here (embedded interpreters)
        return
    _previous_sigterm = previous
    _sigterm_installed = True


def _after_fork_in_child() -> None:
    global _mp_child_finalizer
    _mp_child_finalizer = False
    for pipeline in list(_pipelines):
        pipeline._after_fork_in_child()
    _flush_at_multiprocessing_exit()


class _Anchor:
    """A weak-referenceable owner for the multiprocessing after-fork hook."""


_mp_anchor = _Anchor()


def _flush_at_multiprocessing_exit() -> None:
    """A multiprocessing child ends with ``os._exit``: ``atexit`` never runs, its finalizers do.

    Its finalizer registry is reset after the fork hooks ran, so the finalizer
    is registered from multiprocessing's own after-fork hook.
    """
    util = sys.modules.get("multiprocessing.util")
    if util is None or not _pipelines:
        return
    try:
        util.register_after_fork(_mp_anchor, _register_mp_finalizer)
    except Exception as exc:
        report_internal_error("pipeline.fork", exc)


def _register_mp_finalizer(_: object) -> None:
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, shutdown_all, exitpriority=10)


atexit.register(shutdown_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
