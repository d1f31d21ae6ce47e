"""Assemble framework-neutral run events into one packet per request.

Integrations call :meth:`PacketBuilder.start`, :meth:`~PacketBuilder.end`,
:meth:`~PacketBuilder.fail`, :meth:`~PacketBuilder.token` and
:meth:`~PacketBuilder.event` with run ids and parent ids. These calls run on
the application's thread, so they only record references and a clock
reading; turning the recorded objects into a packet (:mod:`aitel.assembly`)
happens later on the export worker.

A run whose parent is unknown starts a new request (a *trace*). When the
trace's root run ends or fails, the trace is handed to the sink as a
:class:`TraceRecord` and all its state is forgotten.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._safety import report_internal_error
from .schema import StepKind

RunId = Hashable

_UUID = uuid.UUID


def _kind_value(kind: str | StepKind) -> str:
    return kind.value if isinstance(kind, StepKind) else kind


def run_key(run_id: RunId) -> Hashable:
    """The key a run is filed under: a UUID's integer (hashed in C, smaller), else the id.

    The hot paths inline this expression.
    """
    return run_id.int if type(run_id) is _UUID else run_id


@dataclass(frozen=True, slots=True)
class TraceOptions:
    """Request-level settings given by the user to a handler or a trace."""

    model_name: str | None = None
    model_version: str | None = None
    model_provider: str | None = None
    ab_variant: str | None = None
    preprocessing_version: str | None = None
    app_version: str | None = None
    environment: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    capture_logprobs: bool = False
    request_id: str | None = None
    integration: str | None = None
    integration_version: str | None = None


DEFAULT_OPTIONS = TraceOptions()


class Interpreter(Protocol):
    """Turns one framework's recorded objects into step fields, off the hot path."""

    def fill_step(self, record: RunRecord, step: dict[str, Any], context: Any) -> None: ...


class RunRecord:
    """What the hot path records about one run: references and clock readings."""

    __slots__ = (
        "attrs",
        "chunks",
        "end_ns",
        "error",
        "events",
        "first_token_ns",
        "inputs",
        "interpreter",
        "key",
        "kind",
        "metadata",
        "name",
        "outputs",
        "parent_id",
        "run_id",
        "start_ns",
        "tags",
        "trace",
    )

    def __init__(
        self,
        run_id: RunId,
        parent_id: RunId | None,
        kind: str,
        name: str,
        inputs: Any,
        tags: Any,
        metadata: Any,
        attrs: dict[str, Any] | None,
        trace: TraceRecord,
        key: Hashable,
    ) -> None:
        self.run_id = run_id
        self.key = key  # see :func:`run_key`
        self.parent_id = parent_id
        self.kind = kind
        self.name = name
        self.inputs = inputs
        self.tags = tags
        self.metadata = metadata
        self.attrs = attrs
        # cut when the run ends (or when an open run's trace is handed over), so a
        # finished request's objects are freed by reference counting, not left for the GC
        self.trace: TraceRecord | None = trace
        self.start_ns = time.perf_counter_ns()
        self.end_ns: int | None = None
        self.outputs: Any = None
        self.error: BaseException | str | None = None
        self.first_token_ns: int | None = None
        self.chunks = 0
        self.events: list[tuple[str, int, Any]] | None = None
        # set when the run comes from another framework than its trace's root
        self.interpreter: Interpreter | None = None

    def set_attrs(self, attrs: dict[str, Any] | None) -> None:
        if attrs:
            if self.attrs is None:
                self.attrs = dict(attrs)
            else:
                self.attrs.update(attrs)


class TraceRecord:
    """All runs of one request, handed to the sink when its root ends."""

    __slots__ = (
        "abandoned",
        "interpreter",
        "keys",
        "open_runs",
        "options",
        "perf_start_ns",
        "records",
        "root",
        "root_done",
        "wait_for_children",
        "wall_start_ns",
    )

    def __init__(self, options: TraceOptions, interpreter: Interpreter | None) -> None:
        self.options = options
        self.interpreter = interpreter
        self.records: list[RunRecord] = []
        self.keys: list[Hashable] = []
        """The records' run keys, in the same order (remembered at hand-over)."""
        self.root: RunRecord | None = None
        self.wall_start_ns = time.time_ns()
        self.perf_start_ns = time.perf_counter_ns()
        self.open_runs = 0
        self.root_done = False
        self.wait_for_children = False
        self.abandoned: str | None = None

    def wall_ns(self, perf_ns: int) -> int:
        """A perf-counter reading as Unix nanoseconds."""
        return self.wall_start_ns + (perf_ns - self.perf_start_ns)


@dataclass(slots=True)
class BuilderStats:
    traces_started: int = 0
    traces_finished: int = 0
    traces_abandoned: int = 0
    late_events: int = 0


_active_run: ContextVar[tuple[PacketBuilder, RunId] | None] = ContextVar(
    "aitel_active_run", default=None
)


_FINISHED_REMEMBERED = 2_048
"""Ids of recently finished runs kept to recognise late events (children of ended runs)."""


class RecentIds:
    """Run keys (see :func:`run_key`) added lately: at least the last ``size`` of them.

    Two generations of sets: adding is one C call per batch, and once the
    newer set holds ``size`` keys the older one is dropped whole.
    """

    __slots__ = ("_current", "_previous", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._current: set[Hashable] = set()
        self._previous: set[Hashable] = set()

    def add_all(self, keys: list[Hashable]) -> None:
        current = self._current
        current.update(keys)
        if len(current) >= self._size:
            self._previous = current
            self._current = set()

    def __contains__(self, key: object) -> bool:
        return key in self._current or key in self._previous


class PacketBuilder:
    """Thread- and asyncio-safe assembly of runs into traces."""

    def __init__(
        self,
        sink: Callable[[TraceRecord], object],
        *,
        stale_after_s: float = 900.0,
        max_open_traces: int = 10_000,
    ) -> None:
        self._sink = sink
        self._runs: dict[RunId, RunRecord] = {}
        self._traces: OrderedDict[RunId, TraceRecord] = OrderedDict()
        self._finished = RecentIds(_FINISHED_REMEMBERED)
        self._lock = threading.Lock()
        self._stale_after_ns = int(stale_after_s * 1e9)
        self._max_open_traces = max_open_traces
        self.stats = BuilderStats()
        _builders.add(self)

    def _after_fork_in_child(self) -> None:
        """A forked child starts with no open requests: the parent owns and ends them.

        Runs the child starts under a run of the parent (a context variable
        copied by the fork) then begin packets of their own.
        """
        self._lock = threading.Lock()
        self._runs = {}
        self._traces = OrderedDict()
        self._finished = RecentIds(_FINISHED_REMEMBERED)

    # -- events (hot path) -------------------------------------------------

    def start(
        self,
        run_id: RunId,
        parent_id: RunId | None,
        kind: str | StepKind,
        name: str,
        inputs: Any = None,
        tags: Any = None,
        metadata: Any = None,
        attrs: dict[str, Any] | None = None,
        options: TraceOptions = DEFAULT_OPTIONS,
        interpreter: Interpreter | None = None,
    ) -> None:
        """Record the start of a run; a run with an unknown parent starts a trace.

        Integrations pass every argument by position: this is their hottest call.
        """
        kind_value = kind if type(kind) is str else _kind_value(kind)
        key = run_id.int if type(run_id) is _UUID else run_id
        sweep: list[TraceRecord] | None = None
        runs = self._runs
        with self._lock:
            if key in runs:
                return
            parent = None
            if parent_id is not None:
                parent_key = parent_id.int if type(parent_id) is _UUID else parent_id
                parent = runs.get(parent_key)
                if parent is None and parent_key in self._finished:
                    self.stats.late_events += 1
                    return
            if parent is None:
                active = _active_run.get()
                if active is not None and active[0] is self:
                    parent = runs.get(run_key(active[1]))
            if parent is not None and parent.trace is not None:
                trace = parent.trace
                record = RunRecord(
                    run_id,
                    parent.run_id,
                    kind_value,
                    name,
                    inputs,
                    tags,
                    metadata,
                    attrs,
                    trace,
                    key,
                )
                if interpreter is not None and interpreter is not trace.interpreter:
                    record.interpreter = interpreter
            else:
                trace = TraceRecord(options, interpreter)
                record = RunRecord(
                    run_id, None, kind_value, name, inputs, tags, metadata, attrs, trace, key
                )
                trace.root = record
                self._traces[key] = trace
                self.stats.traces_started += 1
            trace.records.append(record)
            trace.keys.append(key)
            trace.open_runs += 1
            runs[key] = record
            if parent is None and (
                len(self._traces) > self._max_open_traces or self.stats.traces_started % 256 == 0
            ):
                sweep = self._collect_stale(record.start_ns, keep=trace)
        if sweep:
            for stale in sweep:
                self._emit(stale)

    def end(
        self,
        run_id: RunId,
        outputs: Any = None,
        *,
        attrs: dict[str, Any] | None = None,
        wait_for_children: bool = False,
    ) -> None:
        """Record a run's successful end.

        With ``wait_for_children`` a root run's trace stays open until its
        last child ends (a streamed response that outlives the call).
        """
        self._close(run_id, outputs, None, attrs, wait_for_children)

    def fail(
        self,
        run_id: RunId,
        error: BaseException | str,
        *,
        outputs: Any = None,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        """Record a run's failure."""
        self._close(run_id, outputs, error, attrs, False)

    def token(self, run_id: RunId) -> None:
        """Record one streamed chunk (the first one gives time to first token)."""
        record = self._runs.get(run_id.int if type(run_id) is _UUID else run_id)
        if record is None:
            return
        if record.first_token_ns is None:
            record.first_token_ns = time.perf_counter_ns()
        record.chunks += 1

    def event(self, run_id: RunId, name: str, data: Any = None) -> None:
        """Record something that happened inside a run (retry, action, custom)."""
        record = self._runs.get(run_key(run_id))
        if record is None:
            self.stats.late_events += 1
            return
        entry = (name, time.perf_counter_ns(), data)
        if record.events is None:
            record.events = [entry]
        else:
            record.events.append(entry)

    def update(self, run_id: RunId, attrs: dict[str, Any]) -> None:
        """Attach more raw attributes to a running run."""
        record = self._runs.get(run_key(run_id))
        if record is not None:
            record.set_attrs(attrs)

    def set_inputs(self, run_id: RunId, inputs: Any) -> None:
        record = self._runs.get(run_key(run_id))
        if record is not None:
            record.inputs = inputs

    def rename(self, run_id: RunId, name: str) -> None:
        """Give a running run another name (e.g. a web request once its route is known)."""
        record = self._runs.get(run_key(run_id))
        if record is not None:
            record.name = name

    def add_metadata(self, run_id: RunId, values: dict[str, Any]) -> None:
        record = self._runs.get(run_key(run_id))
        if record is not None:
            if isinstance(record.metadata, dict):
                record.metadata = {**record.metadata, **values}
            else:
                record.metadata = dict(values)

    def is_open(self, run_id: RunId) -> bool:
        return run_key(run_id) in self._runs

    def open_traces(self) -> int:
        return len(self._traces)

    # -- bookkeeping -------------------------------------------------------

    def _close(
        self,
        run_id: RunId,
        outputs: Any,
        error: BaseException | str | None,
        attrs: dict[str, Any] | None,
        wait_for_children: bool,
    ) -> None:
        now = time.perf_counter_ns()
        key = run_id.int if type(run_id) is _UUID else run_id
        done: TraceRecord | None = None
        with self._lock:
            record = self._runs.pop(key, None)
            if record is None:
                self.stats.late_events += 1
                return
            record.end_ns = now
            record.outputs = outputs
            record.error = error
            record.set_attrs(attrs)
            trace = record.trace
            if trace is None:  # its trace was handed over already (abandoned)
                self.stats.late_events += 1
                return
            record.trace = None  # no child can start under an ended run: see ``start``
            trace.open_runs -= 1
            if record is trace.root:
                trace.root_done = True
                trace.wait_for_children = wait_for_children and error is None
            if trace.root_done and (not trace.wait_for_children or trace.open_runs == 0):
                done = trace
                self._forget(trace)
        if done is not None:
            self._emit(done)

    def _forget(self, trace: TraceRecord) -> None:
        """Drop every reference to a finished trace (called under the lock)."""
        root = trace.root
        if root is not None:
            self._traces.pop(root.key, None)
        if trace.open_runs:  # ended runs cut their link to the trace as they closed
            runs = self._runs
            for record in trace.records:
                if record.end_ns is None:
                    runs.pop(record.key, None)
                    record.trace = None
        self._finished.add_all(trace.keys)

    def _collect_stale(self, now_ns: int, keep: TraceRecord) -> list[TraceRecord]:
        """Traces open too long, or beyond the open-trace cap (called under the lock)."""
        stale: list[TraceRecord] = []
        while self._traces:
            first = next(iter(self._traces.values()))
            if first is keep:
                break
            over_cap = len(self._traces) > self._max_open_traces
            if not over_cap and now_ns - first.perf_start_ns < self._stale_after_ns:
                break
            first.abandoned = (
                "too many open requests" if over_cap else "the request did not end in time"
            )
            self.stats.traces_abandoned += 1
            self._forget(first)
            stale.append(first)
        return stale

    def flush_open(self, reason: str = "the process is shutting down") -> int:
        """Hand over every open trace as abandoned (at shutdown)."""
        with self._lock:
            traces = list(self._traces.values())
            for trace in traces:
                trace.abandoned = reason
                self.stats.traces_abandoned += 1
                self._forget(trace)
        for trace in traces:
            self._emit(trace)
        return len(traces)

    def _emit(self, trace: TraceRecord) -> None:
        self.stats.traces_finished += 1
        try:
            self._sink(trace)
        except Exception as exc:
            report_internal_error("PacketBuilder._emit", exc)


_builders: weakref.WeakSet[PacketBuilder] = weakref.WeakSet()


def _builders_after_fork_in_child() -> None:
    for builder in list(_builders):
        builder._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_builders_after_fork_in_child)


class ActiveRun:
    """Makes a run the parent of framework runs started in this context."""

    __slots__ = ("_token", "builder", "run_id")

    def __init__(self, builder: PacketBuilder, run_id: RunId) -> None:
        self.builder = builder
        self.run_id = run_id
        self._token: Any = None

    def __enter__(self) -> ActiveRun:
        self._token = _active_run.set((self.builder, self.run_id))
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            _active_run.reset(self._token)
        except ValueError:  # reset from another context (generator closed elsewhere)
            _active_run.set(None)


def active_run() -> tuple[PacketBuilder, RunId] | None:
    """The innermost run opened by aitel's own API in this context, if any."""
    return _active_run.get()
