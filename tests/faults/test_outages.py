"""Collector outages, bursts against a slow collector, and memory during a long outage."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import (
    CollectorProcess,
    FaultProxy,
    assert_exactly_once,
    closed_endpoint,
    drain,
    ids,
    run_app,
    start_app,
    wait_for,
)

pytestmark = pytest.mark.faults

MakeProxy = Callable[..., FaultProxy]


def test_collector_restarted_mid_stream(tmp_path: Path) -> None:
    """The collector is killed while packets flow and comes back: each packet is stored once."""
    collector = CollectorProcess(tmp_path / "store.db").start()
    count = 1000
    app = start_app(
        tmp_path,
        collector.url,
        count=count,
        prefix="restart",
        dicts=True,
        rate=500,
        spool=tmp_path / "spool",
        drain=30,
        exit="sigterm",
        batch=100,
        max_elapsed=0.5,
    )
    try:
        wait_for(lambda: collector.health()["packets"] >= 200, 20, "the first packets to arrive")
        collector.stop(signal.SIGKILL)
        # Keep the collector down until a batch outlived its retries and was spooled.
        wait_for(lambda: _spooled_bytes(tmp_path / "spool") > 0, 30, "a batch to be spooled")
        collector.start()  # same port, same store
        app.wait_line("READY", timeout=60)
        app.signal(signal.SIGTERM)
        run = app.finish()
        assert run.report["drained"] is True
        stats = run.stats
        assert stats["enqueued"] == count
        assert stats["exported"] == count
        assert stats["dropped"] == 0
        assert stats["export_errors"] >= 1  # the outage outlasted the retries: spooled, replayed
        assert run.report["spool"]["stored"] > 0
        assert run.report["spool"]["acked"] == run.report["spool"]["stored"]
        assert_exactly_once(collector, "restart", ids("restart", count))
    finally:
        collector.stop()


def test_collector_down_for_the_whole_run(tmp_path: Path) -> None:
    """Nothing listens while the application runs; a collector started afterwards gets it all."""
    endpoint_port_holder = CollectorProcess(tmp_path / "store.db")
    count = 800
    run = run_app(
        tmp_path,
        endpoint_port_holder.url,
        count=count,
        prefix="later",
        spool=tmp_path / "spool",
        shutdown_timeout=2.0,
        max_elapsed=0.5,
    )
    assert run.returncode == 0, run.stderr
    assert run.stats["spooled"] == count
    assert run.stats["dropped"] == 0
    assert run.report["spool"]["stored"] == count
    collector = endpoint_port_holder.start()
    try:
        assert drain(tmp_path / "spool", collector.url) == count
        assert_exactly_once(collector, "later", ids("later", count))
        assert list((tmp_path / "spool").iterdir()) == []  # drained subdirectories are removed
    finally:
        collector.stop()


def test_burst_against_slow_collector_with_spool_loses_nothing(
    tmp_path: Path, shared_collector: CollectorProcess, proxy_to: MakeProxy
) -> None:
    """10,000 packets, 200 ms per batch, a 3 s exit budget: sent or spooled, then all stored."""
    proxy = proxy_to(default=("delay", 0.2))
    count = 10_000
    run = run_app(
        tmp_path,
        proxy.url,
        count=count,
        prefix="burst-spool",
        dicts=True,
        spool=tmp_path / "spool",
        shutdown_timeout=3.0,
    )
    assert run.returncode == 0, run.stderr
    stats = run.stats
    assert stats["enqueued"] == count
    assert stats["dropped"] == 0
    assert stats["exported"] + stats["spooled"] == count
    assert stats["spooled"] > 0  # the budget was too short to send everything
    drain(tmp_path / "spool", shared_collector.url)
    assert_exactly_once(shared_collector, "burst-spool", ids("burst-spool", count))


def test_burst_against_slow_collector_without_spool_counts_drops_exactly(
    tmp_path: Path, shared_collector: CollectorProcess, proxy_to: MakeProxy
) -> None:
    """Memory only, a 2,048-packet queue: what is not stored is exactly what was counted dropped."""
    proxy = proxy_to(default=("delay", 0.2))
    count = 10_000
    prefix = "burst-memory"
    run = run_app(
        tmp_path,
        proxy.url,
        count=count,
        prefix=prefix,
        dicts=True,
        queue=2048,
        shutdown_timeout=10.0,
    )
    assert run.returncode == 0, run.stderr
    stats = run.stats
    stored = set(shared_collector.request_ids(prefix))
    assert stats["dropped_queue_full"] > 0
    assert stats["exported"] + stats["dropped"] == count
    assert len(stored) == stats["exported"]
    assert stored <= ids(prefix, count)


def test_memory_stays_bounded_during_a_long_outage(tmp_path: Path) -> None:
    """20,000 packets into a dead endpoint: the queue never exceeds its bound, memory stays
    flat, and every packet is either spooled or counted."""
    count = 20_000
    run = run_app(
        tmp_path,
        closed_endpoint(),
        count=count,
        prefix="outage",
        dicts=True,
        queue=1000,
        spool=tmp_path / "spool",
        payload_bytes=2000,
        sample_memory=True,
        rate=8000,
        shutdown_timeout=3.0,
        max_elapsed=0.5,
    )
    assert run.returncode == 0, run.stderr
    stats, memory = run.stats, run.report["memory"]
    assert memory["max_queue"] <= 1000
    # 20,000 packets of ~2.5 kB would be ~50 MB of bytes alone if they were kept in memory
    assert memory["rss_growth_kb"] < 25_000, memory
    assert stats["spooled"] + stats["dropped"] == count
    assert stats["spooled"] == run.report["spool"]["stored"]


def _spooled_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*.seg") if p.is_file())
