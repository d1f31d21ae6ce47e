"""The builder: neutral events keyed by run id become one trace per request."""

from __future__ import annotations

import gc
import threading
import tracemalloc
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from aitel._safety import internal_errors
from aitel.builder import PacketBuilder, RecentIds, TraceRecord


def collect() -> tuple[PacketBuilder, list[TraceRecord]]:
    done: list[TraceRecord] = []
    return PacketBuilder(done.append), done


def test_root_end_emits_one_trace_with_all_runs() -> None:
    builder, done = collect()
    builder.start("r", None, "chain", "root", 1)
    builder.start("a", "r", "tool", "a", 2)
    builder.start("b", "a", "llm", "b", 3)
    builder.end("b", 4)
    builder.end("a", 5)
    assert done == []
    builder.end("r", 6)
    (trace,) = done
    assert [r.run_id for r in trace.records] == ["r", "a", "b"]
    assert [r.parent_id for r in trace.records] == [None, "r", "a"]
    assert trace.root is trace.records[0] and trace.root.outputs == 6


def test_unknown_parent_starts_a_new_request() -> None:
    builder, done = collect()
    builder.start("x", "not-ours", "llm", "model", None)
    builder.end("x", "out")
    assert len(done) == 1 and done[0].root.run_id == "x"


def test_out_of_order_end_before_child_start_is_late() -> None:
    builder, done = collect()
    builder.start("r", None, "chain", "root")
    builder.end("r")
    builder.start("c", "r", "tool", "late")
    builder.end("c")
    builder.fail("never-started", RuntimeError("x"))
    assert len(done) == 1 and builder.stats.late_events == 3


def test_uuid_run_ids_keep_their_identity_in_the_trace() -> None:
    """UUIDs are filed by their integer inside; records, events and late runs see UUIDs."""
    builder, done = collect()
    root, child, late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    builder.start(root, None, "chain", "root")
    builder.start(child, root, "llm", "model")
    assert builder.is_open(child) and builder.is_open(uuid.UUID(str(child)))  # equal, not same
    builder.token(uuid.UUID(str(child)))
    builder.event(child, "retry", {"attempt": 2})
    builder.rename(root, "renamed")
    builder.end(child, "answer")
    builder.end(root, "done")
    (trace,) = done
    assert [r.run_id for r in trace.records] == [root, child]
    assert trace.records[1].parent_id == root and type(trace.records[1].parent_id) is uuid.UUID
    assert trace.records[1].chunks == 1 and trace.records[1].events[0][0] == "retry"
    assert trace.root is not None and trace.root.name == "renamed"
    builder.start(late, root, "tool", "after the end")  # a child of a finished run
    assert builder.stats.late_events == 1 and not builder.is_open(late)
    assert builder.open_traces() == 0


def test_wait_for_children_keeps_a_streamed_request_open() -> None:
    builder, done = collect()
    builder.start("q", None, "chain", "query")
    builder.start("llm", "q", "llm", "stream")
    builder.end("q", "response object", wait_for_children=True)
    assert done == []
    builder.token("llm")
    builder.end("llm", "full text")
    assert len(done) == 1 and done[0].records[1].first_token_ns is not None


def test_failure_does_not_wait_for_children() -> None:
    builder, done = collect()
    builder.start("q", None, "chain", "query")
    builder.start("llm", "q", "llm", "stream")
    builder.fail("q", RuntimeError("x"))
    assert len(done) == 1 and done[0].records[1].end_ns is None


def test_tokens_and_events_record_time_and_data() -> None:
    builder, done = collect()
    builder.start("r", None, "llm", "m")
    builder.token("r")
    builder.token("r")
    builder.event("r", "retry", {"attempt": 2})
    builder.end("r")
    record = done[0].root
    assert record.chunks == 2 and record.first_token_ns >= record.start_ns
    assert record.events[0][0] == "retry" and record.events[0][2] == {"attempt": 2}


def test_stale_traces_are_handed_over_as_abandoned() -> None:
    done: list[TraceRecord] = []
    builder = PacketBuilder(done.append, stale_after_s=0.0, max_open_traces=10)
    builder.start("old", None, "chain", "never ends")
    for i in range(300):
        builder.start(i, None, "chain", "x")
        builder.end(i)
    abandoned = [t for t in done if t.abandoned]
    assert [t.root.run_id for t in abandoned] == ["old"]
    assert builder.stats.traces_abandoned == 1 and builder.open_traces() == 0


def test_open_trace_cap_bounds_memory() -> None:
    done: list[TraceRecord] = []
    builder = PacketBuilder(done.append, max_open_traces=50)
    for i in range(200):
        builder.start(i, None, "chain", "leaked")
    assert builder.open_traces() <= 50
    assert all(t.abandoned == "too many open requests" for t in done)


def test_flush_open_hands_over_everything() -> None:
    builder, done = collect()
    builder.start("a", None, "chain", "x")
    builder.start("b", None, "chain", "y")
    assert builder.flush_open() == 2
    assert {t.root.run_id for t in done} == {"a", "b"} and builder.open_traces() == 0


def test_no_state_kept_after_100k_requests() -> None:
    """Memory is flat: nothing of a finished request stays in the builder."""
    builder = PacketBuilder(lambda trace: None)

    def requests(start: int, count: int) -> None:
        for i in range(start, start + count):
            builder.start(i, None, "chain", "r")
            builder.start(-i - 1, i, "llm", "m")
            builder.end(-i - 1)
            builder.end(i)

    tracemalloc.start()
    requests(0, 30_000)  # fills the bounded ring of finished ids under tracing
    before = tracemalloc.take_snapshot()
    requests(30_000, 100_000)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert not builder._runs and builder.open_traces() == 0
    assert grown < 200_000, grown  # < 2 bytes per request: nothing per request is kept


class Payload:
    """Something the framework passes in (a message, a document): weak-referenceable."""


@contextmanager
def cycle_collector_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def test_a_handed_over_request_is_freed_without_the_cycle_collector() -> None:
    """Records do not keep their trace alive: a finished request's objects go at once.

    A record pointing back at its trace made every request a reference cycle,
    so the framework's objects waited for the cycle collector: memory rose by
    megabytes over a long run, and the collections cost time on the user's thread.
    """
    builder = PacketBuilder(lambda trace: None)
    with cycle_collector_off():
        for ending in ("finished", "abandoned", "late child"):
            inputs, outputs, child_inputs = Payload(), Payload(), Payload()
            refs = [weakref.ref(inputs), weakref.ref(outputs), weakref.ref(child_inputs)]
            builder.start("root", None, "chain", "root", inputs)
            builder.start("child", "root", "llm", "model", child_inputs)
            if ending == "abandoned":
                builder.flush_open()
            else:
                builder.end("child", outputs)
                builder.end("root", outputs)
                if ending == "late child":
                    builder.start("late", "root", "tool", "late", Payload())
                    builder.end("late")
            del inputs, outputs, child_inputs
            assert [ref() for ref in refs] == [None, None, None], ending


def test_an_abandoned_runs_late_end_is_counted_not_recorded() -> None:
    builder, done = collect()
    builder.start("r", None, "chain", "root")
    builder.start("c", "r", "llm", "model")
    builder.flush_open()
    builder.end("c", "too late")
    builder.start("d", "c", "tool", "grandchild")
    assert builder.stats.late_events == 2
    (trace,) = done
    assert [r.run_id for r in trace.records] == ["r", "c"] and trace.records[1].outputs is None


def test_recent_ids_keep_the_last_size_keys_and_stay_bounded() -> None:
    recent = RecentIds(4)
    for n in range(0, 30, 3):
        recent.add_all([n, n + 1, n + 2])
        kept = [k for k in range(n + 3) if k in recent]
        assert all(k in recent for k in range(max(0, n - 1), n + 3))
        assert len(kept) < 2 * (4 + 3)  # two generations, each cut once it reaches the size
    assert 0 not in recent and 29 in recent


def test_a_late_child_of_a_long_finished_request_starts_a_request_of_its_own() -> None:
    builder, done = collect()
    builder.start("old", None, "chain", "old")
    builder.end("old")
    for n in range(5_000):  # past what the builder remembers of finished runs
        builder.start(n, None, "tool", "filler")
        builder.end(n)
    builder.start("late", "old", "tool", "late")
    builder.end("late")
    assert done[-1].root is not None and done[-1].root.run_id == "late"
    assert builder.stats.late_events == 0


def test_a_failing_sink_is_counted_and_never_reaches_the_caller() -> None:
    def sink(trace: TraceRecord) -> None:
        raise RuntimeError("the queue is broken")

    builder = PacketBuilder(sink)
    before = internal_errors.by_site.get("PacketBuilder._emit", 0)
    builder.start("r", None, "chain", "root")
    builder.end("r", "out")
    assert internal_errors.by_site.get("PacketBuilder._emit", 0) == before + 1
    assert builder.stats.traces_finished == 1 and builder.open_traces() == 0


def test_many_threads_never_mix_requests() -> None:
    done: list[TraceRecord] = []
    lock = threading.Lock()

    def sink(trace: TraceRecord) -> None:
        with lock:
            done.append(trace)

    builder = PacketBuilder(sink)

    def work(t: int) -> None:
        for j in range(500):
            root = (t, j)
            builder.start(root, None, "chain", f"{t}")
            for k in range(3):
                builder.start((t, j, k), root, "tool", f"{t}")
                builder.end((t, j, k))
            builder.end(root)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(done) == 4000
    for trace in done:
        assert len(trace.records) == 4
        assert {r.name for r in trace.records} == {trace.root.name}
