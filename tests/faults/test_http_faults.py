"""The HTTP status matrix against a real collector behind a misbehaving proxy."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .harness import (
    CollectorProcess,
    FaultProxy,
    assert_exactly_once,
    drain,
    ids,
    run_app,
)

pytestmark = pytest.mark.faults

MakeProxy = Callable[..., FaultProxy]


def _gaps(proxy: FaultProxy) -> list[float]:
    return [b.at - a.at for a, b in zip(proxy.seen, proxy.seen[1:], strict=False)]


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_retry_after_is_honoured(
    tmp_path: Path, shared_collector: CollectorProcess, proxy_to: MakeProxy, form: str
) -> None:
    """A 429 with Retry-After (seconds or HTTP date) delays the retry by that long, then delivers."""
    value: object = "1"
    if form == "http-date":  # made when answering; whole seconds, so the wait is 1 to 2 s

        def value() -> str:
            return email.utils.formatdate(time.time() + 2, usegmt=True)

    proxy = proxy_to(("status", 429, {"Retry-After": value}))
    prefix = f"retry-after-{form}"
    run = run_app(tmp_path, proxy.url, count=40, prefix=prefix, dicts=True)
    assert run.returncode == 0, run.stderr
    # One 429, then only successes (the 40 packets may leave in one batch or two).
    statuses = [s.status for s in proxy.seen]
    assert statuses[0] == 429
    assert statuses[1:] and set(statuses[1:]) == {200}
    assert _gaps(proxy)[0] >= 0.9
    assert run.stats["exported"] == 40
    assert run.stats["export_errors"] == 0
    assert_exactly_once(shared_collector, prefix, ids(prefix, 40))


def test_5xx_burst_is_retried_then_delivered(
    tmp_path: Path, shared_collector: CollectorProcess, proxy_to: MakeProxy
) -> None:
    """503/502/504 are retried with backoff; a 500 is spooled and replayed; nothing is lost."""
    proxy = proxy_to(
        ("status", 503, {}),
        ("status", 502, {}),
        ("status", 504, {}),
        ("status", 500, {}),
    )
    prefix = "burst-5xx"
    run = run_app(
        tmp_path, proxy.url, count=60, prefix=prefix, dicts=True, spool=tmp_path / "spool", drain=20
    )
    assert run.returncode == 0, run.stderr
    assert run.report["drained"] is True
    assert [s.status for s in proxy.seen][:5] == [503, 502, 504, 500, 200]
    assert run.stats["exported"] == 60
    assert run.stats["dropped"] == 0
    assert run.report["exporter"]["retries"] >= 3
    assert_exactly_once(shared_collector, prefix, ids(prefix, 60))


def test_connection_resets_are_retried(
    tmp_path: Path, shared_collector: CollectorProcess, proxy_to: MakeProxy
) -> None:
    """Connections reset by the peer are retried; every packet arrives once."""
    proxy = proxy_to(("reset",), ("reset",))
    prefix = "resets"
    run = run_app(tmp_path, proxy.url, count=50, prefix=prefix, dicts=True)
    assert run.returncode == 0, run.stderr
    assert [s.action for s in proxy.seen][:3] == ["reset", "reset", "forward"]
    assert run.stats["exported"] == 50
    assert_exactly_once(shared_collector, prefix, ids(prefix, 50))


@pytest.mark.parametrize("with_spool", [True, False])
def test_blackhole_flush_and_shutdown_stay_bounded(
    tmp_path: Path, shared_collector: CollectorProcess, proxy_to: MakeProxy, with_spool: bool
) -> None:
    """A server that accepts and never answers: flush and shutdown end within their budgets,
    and every packet is spooled (or counted as dropped without a spool)."""
    proxy = proxy_to(default=("hang",))
    prefix = f"blackhole-{with_spool}"
    spool = tmp_path / "spool" if with_spool else None
    run = run_app(
        tmp_path,
        proxy.url,
        count=80,
        prefix=prefix,
        dicts=True,
        spool=spool,
        flush=2.0,
        shutdown_timeout=2.0,
        request_timeout=30,
    )
    assert run.returncode == 0, run.stderr
    assert run.report["flush_s"] < 2.6
    assert run.report["shutdown_s"] < 2.6
    stats = run.stats
    assert stats["exported"] == 0
    if with_spool:
        assert run.report["flush_ok"] is True  # "flushed" = delivered or spooled
        assert stats["spooled"] == 80
        assert stats["dropped"] == 0
        assert drain(tmp_path / "spool", shared_collector.url) == 80
        assert_exactly_once(shared_collector, prefix, ids(prefix, 80))
    else:
        # In the hanging request when its budget ran out, or still queued at shutdown.
        assert stats["dropped"] == 80
        assert stats["dropped_export_failed"] > 0
        assert stats["dropped_export_failed"] + stats["dropped_after_shutdown"] == 80


def test_413_splits_batches_until_they_fit(
    tmp_path: Path, shared_collector: CollectorProcess, proxy_to: MakeProxy
) -> None:
    """A collector that refuses batches over 40 packets gets them in halves; none is lost."""
    proxy = proxy_to(default=("limit", 40))
    prefix = "split-413"
    run = run_app(tmp_path, proxy.url, count=300, prefix=prefix, dicts=True, batch=300)
    assert run.returncode == 0, run.stderr
    statuses = [s.status for s in proxy.seen]
    assert 413 in statuses
    assert all(s.packets <= 40 for s in proxy.seen if s.status == 200)
    assert run.report["exporter"]["splits"] >= 3
    assert run.stats["exported"] == 300
    assert run.stats["rejected"] == 0
    assert_exactly_once(shared_collector, prefix, ids(prefix, 300))


def test_partial_success_keeps_the_good_packets(
    tmp_path: Path, shared_collector: CollectorProcess
) -> None:
    """Invalid packets are rejected with reasons, valid ones stored; nothing is retried."""
    prefix = "partial"
    before = shared_collector.health()
    run = run_app(tmp_path, shared_collector.url, count=30, invalid=7, prefix=prefix, dicts=True)
    assert run.returncode == 0, run.stderr
    after = shared_collector.health()
    assert run.stats["exported"] == 30
    assert run.stats["rejected"] == 7
    assert run.stats["dropped"] == 0
    assert after["rejected_packets"] - before["rejected_packets"] == 7
    assert after["requests"] - before["requests"] == run.report["exporter"]["requests"]
    assert run.report["exporter"]["retries"] == 0
    assert_exactly_once(shared_collector, prefix, ids(prefix, 30))


def test_wrong_token_is_rejected_without_retries(
    tmp_path: Path, shared_collector: CollectorProcess
) -> None:
    """401: every packet is counted as rejected, and each batch was sent exactly once."""
    prefix = "wrong-token"
    before = shared_collector.health()
    run = run_app(
        tmp_path,
        shared_collector.url,
        count=120,
        prefix=prefix,
        dicts=True,
        token="not-the-token",
        batch=50,
        spool=tmp_path / "spool",
    )
    assert run.returncode == 0, run.stderr
    after = shared_collector.health()
    assert run.stats["rejected"] == 120
    assert run.stats["exported"] == 0
    assert run.stats["spooled"] == 0
    assert after["unauthorized"] - before["unauthorized"] == 3
    assert run.report["exporter"]["retries"] == 0
    assert shared_collector.request_ids(prefix) == []
