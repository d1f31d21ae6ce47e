"""The export pipeline: batching, flush, shutdown, drops that are counted, fork and exit."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Sequence

import orjson
import pytest

from aitel import EncodedPacket, ExportPipeline, ExportResult, InMemoryExporter, PipelineConfig


class GatedExporter:
    """Blocks each export until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.batches: list[int] = []

    def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
        self.gate.wait(10)
        self.batches.append(len(batch))
        return ExportResult.ok(len(batch))

    def force_flush(self, timeout_s: float) -> bool:
        return True

    def shutdown(self, timeout_s: float) -> None:
        self.gate.set()


def packet(i: int) -> dict:
    return {"packet_id": f"p{i}", "n": i}


class BatchRecorder(InMemoryExporter):
    """Keeps the packets and the size of every batch; ``sent`` is set by each export."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.sent = threading.Event()

    def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
        self.batches.append(len(batch))
        self.sent.set()
        return super().export(batch)


def test_flush_delivers_everything_in_batches() -> None:
    memory = InMemoryExporter()
    pipeline = ExportPipeline(
        memory, config=PipelineConfig(max_batch_size=100, schedule_delay_s=60)
    )
    for i in range(1050):
        assert pipeline.submit(packet(i))
    assert pipeline.flush(10)
    assert [p["n"] for p in memory.packets] == list(range(1050))
    stats = pipeline.stats()
    assert (
        stats.enqueued == stats.exported == 1050 and stats.dropped == 0 and stats.queue_depth == 0
    )
    pipeline.shutdown(5)


def test_batches_respect_byte_limit() -> None:
    seen: list[int] = []

    class Sizes(InMemoryExporter):
        def export(self, batch):
            seen.append(sum(len(p.data) for p in batch))
            return super().export(batch)

    pipeline = ExportPipeline(
        Sizes(), config=PipelineConfig(max_batch_bytes=10_000, schedule_delay_s=60)
    )
    for i in range(50):
        pipeline.submit({"packet_id": str(i), "blob": "x" * 1000})
    pipeline.flush(10)
    assert len(seen) >= 5 and all(size <= 10_000 + 1100 for size in seen)
    pipeline.shutdown(5)


def test_full_queue_drops_are_counted_exactly() -> None:
    exporter = GatedExporter()
    pipeline = ExportPipeline(
        exporter,
        config=PipelineConfig(max_queue_size=100, max_batch_size=10, schedule_delay_s=0.01),
    )
    accepted = sum(pipeline.submit(packet(i)) for i in range(1000))
    exporter.gate.set()
    assert pipeline.flush(10)
    stats = pipeline.stats()
    assert stats.dropped_queue_full == 1000 - accepted
    assert stats.exported == accepted == stats.enqueued
    pipeline.shutdown(5)


def _spooled_ids(directory) -> list[str]:
    from aitel.spool import DiskSpool

    spool = DiskSpool(directory)
    try:
        return [orjson.loads(p.data)["packet_id"] for p in spool.take(100_000)]
    finally:
        spool.close()


def test_full_queue_with_a_spool_overflows_to_it_and_loses_nothing(tmp_path) -> None:
    """10x the queue at once, the exporter stuck: the callers stage the overflow for the spool."""
    from aitel.spool import DiskSpool

    exporter = GatedExporter()
    delivered = InMemoryExporter()

    class Recording(GatedExporter):
        def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
            exporter.gate.wait(10)
            return delivered.export(batch)

    pipeline = ExportPipeline(
        Recording(),
        spool=DiskSpool(tmp_path / "spool"),
        config=PipelineConfig(max_queue_size=100, max_batch_size=10, schedule_delay_s=0.01),
    )
    assert all(pipeline.submit(packet(i)) for i in range(1000))
    stats = pipeline.stats()
    assert stats.dropped == 0
    assert stats.overflowed >= 1000 - 100 - 10  # the stuck worker holds one batch of 10
    assert stats.queue_depth <= 100
    assert stats.spooled + stats.queue_depth + stats.in_flight == 1000 - stats.exported
    exporter.gate.set()
    assert pipeline.flush(10)
    stats = pipeline.stats()
    assert stats.enqueued == 1000 and stats.dropped == 0
    assert stats.exported + stats.spooled == 1000
    assert pipeline.shutdown(5)
    ids = [p["packet_id"] for p in delivered.packets] + _spooled_ids(tmp_path / "spool")
    assert sorted(ids) == sorted(f"p{i}" for i in range(1000))  # each exactly once


def _closed_endpoint() -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/packets"


def test_with_a_spool_a_dead_destination_sends_batches_there_instead_of_holding_the_queue(
    tmp_path,
) -> None:
    """Connections refused, the exporter's own policy retrying for 20 s: the first batch is
    spooled after ``spool_after_s`` of retries, and every batch after it while the
    destination is down goes straight to the spool; finished requests do not pile up."""
    from aitel.exporters.http import HttpExporter
    from aitel.exporters.retry import RetryPolicy
    from aitel.spool import DiskSpool

    exporter = HttpExporter(
        _closed_endpoint(), retry=RetryPolicy(initial_backoff_s=0.05, max_backoff_s=0.1)
    )
    assert exporter.policy.max_elapsed_s == 20.0
    pipeline = ExportPipeline(
        exporter,
        spool=DiskSpool(tmp_path / "spool"),
        config=PipelineConfig(max_batch_size=10, schedule_delay_s=0.01, spool_after_s=0.3),
    )
    try:
        assert exporter.policy.max_elapsed_s == 0.3
        for i in range(30):
            pipeline.submit(packet(i))
        deadline = time.monotonic() + 10.0  # far less than the 20 s the policy would retry
        while pipeline.stats().spooled < 30:
            assert time.monotonic() < deadline, pipeline.stats()
            threading.Event().wait(0.02)
        stats = pipeline.stats()
        assert stats.exported == 0 and stats.dropped == 0 and stats.queue_depth == 0
        assert exporter.stats().short_circuited > 0  # later batches did not wait at all
    finally:
        pipeline.shutdown(2.0)
    assert sorted(_spooled_ids(tmp_path / "spool")) == sorted(f"p{i}" for i in range(30))


def test_retries_in_place_are_limited_only_when_there_is_a_spool(tmp_path) -> None:
    """Without a spool the exporter's policy is the only chance a batch has: it stays."""
    from aitel.exporters.http import HttpExporter
    from aitel.exporters.otlp import OtlpExporter
    from aitel.exporters.retry import RetryPolicy
    from aitel.spool import DiskSpool

    url = "http://127.0.0.1:9/v1/packets"
    alone = HttpExporter(url)
    spooled = HttpExporter(url)
    stricter = HttpExporter(url, retry=RetryPolicy(max_elapsed_s=0.5))
    otlp = OtlpExporter("http://127.0.0.1:9/v1/traces", env={})
    pipelines = [ExportPipeline(alone)] + [
        ExportPipeline(exporter, spool=DiskSpool(tmp_path / str(n)))
        for n, exporter in enumerate([spooled, stricter, otlp])
    ]
    try:
        assert alone.policy.max_elapsed_s == 20.0
        assert spooled.policy.max_elapsed_s == 2.0  # PipelineConfig.spool_after_s
        assert stricter.policy.max_elapsed_s == 0.5  # never longer than configured
        assert otlp.policy.max_elapsed_s == 2.0
        spooled.limit_retries(None)
        assert spooled.policy == RetryPolicy()
    finally:
        for pipeline in pipelines:
            pipeline.shutdown(1.0)


def test_overflow_drop_keeps_dropping_with_a_spool(tmp_path) -> None:
    from aitel.spool import DiskSpool

    exporter = GatedExporter()
    pipeline = ExportPipeline(
        exporter,
        spool=DiskSpool(tmp_path / "spool"),
        config=PipelineConfig(
            max_queue_size=100, max_batch_size=10, schedule_delay_s=0.01, overflow="drop"
        ),
    )
    accepted = sum(pipeline.submit(packet(i)) for i in range(1000))
    exporter.gate.set()
    assert pipeline.flush(10)
    stats = pipeline.stats()
    assert stats.overflowed == 0 and stats.dropped_queue_full == 1000 - accepted > 0
    assert stats.exported == accepted
    pipeline.shutdown(5)


def test_overflow_counts_what_the_callers_could_not_build(tmp_path) -> None:
    """A materializer failing on the caller's thread is counted like one failing on the worker's."""
    from aitel.spool import DiskSpool

    def materialize(item):
        if item["n"] % 2:
            raise ValueError("odd")
        return item

    exporter = GatedExporter()
    pipeline = ExportPipeline(
        exporter,
        materialize=materialize,
        spool=DiskSpool(tmp_path / "spool"),
        config=PipelineConfig(max_queue_size=10, max_batch_size=5, schedule_delay_s=0.01),
    )
    assert all(pipeline.submit(packet(i)) for i in range(200))
    exporter.gate.set()
    assert pipeline.flush(10)
    stats = pipeline.stats()
    assert stats.dropped == stats.dropped_build_error == 100
    assert stats.exported + stats.spooled == 100
    assert stats.enqueued == 200
    pipeline.shutdown(5)


def test_time_based_batching_exports_without_flush() -> None:
    memory = InMemoryExporter()
    pipeline = ExportPipeline(
        memory, config=PipelineConfig(max_batch_size=1000, schedule_delay_s=0.05)
    )
    pipeline.submit(packet(1))
    deadline = __import__("time").monotonic() + 5
    while not memory.packets and __import__("time").monotonic() < deadline:
        threading.Event().wait(0.01)
    assert [p["n"] for p in memory.packets] == [1]
    pipeline.shutdown(5)


def test_processor_failure_fails_closed_and_is_counted() -> None:
    class Broken:
        def process(self, packet):
            raise RuntimeError("redactor crashed")

    memory = InMemoryExporter()
    pipeline = ExportPipeline(memory, processors=[Broken()])
    pipeline.submit(packet(1))
    pipeline.flush(5)
    assert memory.packets == []
    assert pipeline.stats().dropped_processor_error == 1
    pipeline.shutdown(5)


def test_exporter_that_raises_is_contained_and_counted() -> None:
    class Raising(InMemoryExporter):
        def export(self, batch):
            raise OSError("disk on fire")

    pipeline = ExportPipeline(Raising())
    pipeline.submit(packet(1))
    pipeline.flush(5)
    stats = pipeline.stats()
    assert stats.dropped_export_failed == 1 and stats.export_errors == 1
    pipeline.shutdown(5)


def test_rejected_and_partial_results_are_counted() -> None:
    class Picky(InMemoryExporter):
        def export(self, batch):
            return ExportResult(exported=len(batch) - 1, rejected=1, error="bad packet")

    pipeline = ExportPipeline(Picky())
    for i in range(3):
        pipeline.submit(packet(i))
    pipeline.flush(5)
    stats = pipeline.stats()
    assert stats.exported + stats.rejected == 3 and stats.rejected >= 1
    pipeline.shutdown(5)


def test_sampled_out_packets_are_counted() -> None:
    class DropOdd:
        def process(self, p):
            return None if p["n"] % 2 else p

    memory = InMemoryExporter()
    pipeline = ExportPipeline(memory, processors=[DropOdd()])
    for i in range(10):
        pipeline.submit(packet(i))
    pipeline.flush(5)
    assert len(memory.packets) == 5 and pipeline.stats().sampled_out == 5
    pipeline.shutdown(5)


def test_flush_is_bounded_when_the_exporter_hangs() -> None:
    exporter = GatedExporter()
    pipeline = ExportPipeline(exporter)
    pipeline.submit(packet(1))
    assert pipeline.flush(0.2) is False
    exporter.gate.set()
    assert pipeline.flush(5) is True
    pipeline.shutdown(5)


def test_shutdown_is_idempotent_and_later_submits_are_counted() -> None:
    memory = InMemoryExporter()
    pipeline = ExportPipeline(memory)
    pipeline.submit(packet(1))
    assert pipeline.shutdown(5) and pipeline.shutdown(5)
    assert memory.shut_down and len(memory.packets) == 1
    assert pipeline.submit(packet(2)) is False
    assert pipeline.stats().dropped_after_shutdown == 1


def test_dead_worker_is_restarted() -> None:
    memory = InMemoryExporter()
    pipeline = ExportPipeline(memory)
    pipeline.submit(packet(1))
    pipeline.flush(5)
    pipeline._worker = threading.Thread(target=lambda: None)  # a worker that died
    pipeline._worker.start()
    pipeline._worker.join()
    pipeline.submit(packet(2))
    assert pipeline.flush(5)
    assert len(memory.packets) == 2 and pipeline.stats().worker_restarts == 1
    pipeline.shutdown(5)


def _run(code: str, *, send: signal.Signals | None = None) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(code)
    if send is None:
        return subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(send)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


APP = """
import sys, time, signal
import aitel
from aitel import JsonlExporter, ExportPipeline, PipelineConfig
pipeline = ExportPipeline(JsonlExporter({dir!r}), config=PipelineConfig(schedule_delay_s=3600, max_batch_size=10_000))
for i in range(300):
    pipeline.submit({{"packet_id": str(i)}})
"""


def _lines(directory) -> list[dict]:
    return [
        orjson.loads(line)
        for f in sorted(directory.glob("*.jsonl"))
        for line in f.read_bytes().splitlines()
    ]


@pytest.mark.parametrize("ending", ["return", "sys.exit(3)"])
def test_queued_packets_are_written_at_exit(tmp_path, ending: str) -> None:
    code = APP.format(dir=str(tmp_path)) + ("" if ending == "return" else ending)
    result = _run(code)
    assert result.returncode == (0 if ending == "return" else 3), result.stderr
    assert len(_lines(tmp_path)) == 300


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_queued_packets_are_written_on_signal(tmp_path, sig: signal.Signals) -> None:
    code = APP.format(dir=str(tmp_path)) + "print('ready', flush=True)\ntime.sleep(60)\n"
    result = _run(code, send=sig)
    assert len(_lines(tmp_path)) == 300
    assert result.returncode == -sig if sig == signal.SIGTERM else result.returncode != 0


def test_sigterm_chains_the_previous_handler(tmp_path) -> None:
    code = (
        "import signal, sys\nsignal.signal(signal.SIGTERM, lambda s, f: (print('app handler ran', flush=True), sys.exit(7)))\n"
        + APP.format(dir=str(tmp_path))
        + "print('ready', flush=True)\ntime.sleep(60)\n"
    )
    result = _run(code, send=signal.SIGTERM)
    assert "app handler ran" in result.stdout
    assert result.returncode == 7
    assert len(_lines(tmp_path)) == 300


def test_fork_child_exports_its_own_packets_and_no_parent_duplicates(tmp_path) -> None:
    code = f"""
import os
from aitel import JsonlExporter, ExportPipeline, PipelineConfig
pipeline = ExportPipeline(JsonlExporter({str(tmp_path)!r}), config=PipelineConfig(schedule_delay_s=3600, max_batch_size=10_000))
for i in range(50):
    pipeline.submit({{"packet_id": "parent-" + str(i)}})
pids = []
for c in range(3):
    pid = os.fork()
    if pid == 0:
        for i in range(20):
            pipeline.submit({{"packet_id": "child-%d-%d" % (c, i)}})
        pipeline.shutdown(10)
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
pipeline.shutdown(10)
"""
    result = _run(code)
    assert result.returncode == 0, result.stderr
    ids = [p["packet_id"] for p in _lines(tmp_path)]
    assert len(ids) == len(set(ids)) == 50 + 3 * 20
    assert len(list(tmp_path.glob("*.jsonl"))) == 4  # one file per process


def test_small_queue_wakes_the_worker_before_it_fills() -> None:
    """With a 64-packet queue the worker exports at 16 queued packets, not at a 512 batch."""
    import time

    memory = InMemoryExporter()
    pipeline = ExportPipeline(
        memory, config=PipelineConfig(max_queue_size=64, max_batch_size=512, schedule_delay_s=60)
    )
    for i in range(16):
        pipeline.submit(packet(i))
    deadline = time.monotonic() + 10
    while len(memory.packets) < 16 and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    assert len(memory.packets) == 16  # without a flush, long before the 60 s schedule
    pipeline.shutdown(5)


def test_a_slow_send_does_not_break_the_next_batches_into_small_ones() -> None:
    """What arrives while a batch is being sent waits for a full batch (or the timer, a flush).

    The first send is the slow one: while it is in progress 5 packets arrive. The
    worker must not send those 5 on their own as soon as it is free; they leave
    with the next 27 as one batch of 32 (the batch size of a 128-packet queue).
    """
    first_sent = threading.Event()

    class SlowFirstSend(BatchRecorder):
        def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
            if not self.batches:
                for i in range(100, 105):  # arrive during the send
                    pipeline.submit(packet(i))
                first_sent.set()
            return super().export(batch)

    exporter = SlowFirstSend()
    pipeline = ExportPipeline(
        exporter, config=PipelineConfig(max_queue_size=128, schedule_delay_s=60)
    )
    for i in range(32):
        pipeline.submit(packet(i))
    assert first_sent.wait(10)
    for i in range(105, 132):
        pipeline.submit(packet(i))
    assert pipeline.flush(10)
    assert exporter.batches == [32, 32]
    assert len(exporter.packets) == 64
    pipeline.shutdown(5)


class Held:
    """Stands for the framework's objects a finished request holds until it becomes a packet."""


def test_finished_requests_become_packets_young_and_still_leave_in_full_batches() -> None:
    """Four queued requests wake the worker, which turns them into packets (releasing what
    they held) without sending them; the batch leaves at 32, as one request."""
    released = threading.Semaphore(0)

    def materialize(item: tuple[int, Held]) -> dict:
        return packet(item[0])

    exporter = BatchRecorder()
    pipeline = ExportPipeline(
        exporter, materialize=materialize, config=PipelineConfig(schedule_delay_s=60)
    )
    for i in range(4):
        held = Held()
        weakref.finalize(held, released.release)
        pipeline.submit((i, held))
        del held
    for _ in range(4):
        assert released.acquire(timeout=10)  # turned into packets, without a flush
    assert exporter.batches == []  # and kept for a full batch
    for i in range(4, 32):
        pipeline.submit((i, Held()))
    assert exporter.sent.wait(10)
    assert exporter.batches == [32]
    assert [p["n"] for p in exporter.packets] == list(range(32))
    pipeline.shutdown(5)


def test_every_few_requests_wake_a_waiting_worker_without_a_flush() -> None:
    """Only a waiting worker is notified; none of 200 wake-ups may be missed (60 s schedule)."""
    made = threading.Semaphore(0)

    def materialize(i: int) -> dict:
        made.release()
        return packet(i)

    pipeline = ExportPipeline(
        InMemoryExporter(), materialize=materialize, config=PipelineConfig(schedule_delay_s=60)
    )
    for round_ in range(200):
        for i in range(4):
            pipeline.submit(round_ * 4 + i)
        for _ in range(4):
            assert made.acquire(timeout=10), f"round {round_}: queued requests left waiting"
    assert pipeline.flush(10) and pipeline.stats().exported == 800
    pipeline.shutdown(5)


def test_packets_made_ready_are_counted_when_shutdown_runs_out_of_time(tmp_path) -> None:
    """Ready packets the worker could not send are spooled, or counted as dropped without one."""
    from aitel.spool import DiskSpool

    for spool in (None, DiskSpool(tmp_path)):
        pipeline = ExportPipeline(
            GatedExporter(), spool=spool, config=PipelineConfig(schedule_delay_s=60)
        )
        # as if the worker had just run (3 items: too few to wake the spool's worker)
        pipeline._queue.extend(packet(i) for i in range(3))
        with pipeline._export_lock:
            pipeline._make_ready()
        assert pipeline.stats().in_flight == 3
        pipeline._abandon_queue()
        stats = pipeline.stats()
        assert stats.in_flight == 0 and stats.enqueued == 3
        if spool is None:
            assert stats.dropped_after_shutdown == 3 and stats.spooled == 0
        else:
            assert stats.spooled == stats.spool_pending == 3 and stats.dropped == 0
        pipeline.shutdown(1)


def test_queue_overflow_setting_reaches_the_pipeline(tmp_path) -> None:
    from aitel import Settings, Tracer
    from aitel.config import ConfigError

    assert Settings.from_env({}).queue_overflow == "spool"
    settings = Settings.from_env({"AITEL_QUEUE_OVERFLOW": " Drop "})
    tracer = Tracer(InMemoryExporter(), settings=settings)
    try:
        assert tracer.pipeline.config.overflow == "drop"
    finally:
        tracer.shutdown(1)
    with pytest.raises(ConfigError, match="'spool' or 'drop'"):
        Settings.from_env({"AITEL_QUEUE_OVERFLOW": "block"})


@pytest.mark.parametrize("size", ["0", "-1"])
def test_a_queue_of_no_packets_is_a_configuration_error(size: str) -> None:
    from aitel.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="AITEL_MAX_QUEUE_SIZE"):
        Settings.from_env({"AITEL_MAX_QUEUE_SIZE": size})
