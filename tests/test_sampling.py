"""Sampling: a fraction of requests, plus every failure and every slow one, each whole or not at all."""

from __future__ import annotations

import time

import pytest

import aitel
from aitel import SamplingProcessor
from aitel._ids import new_id
from aitel.config import ConfigError, Settings
from aitel.testing import PacketCapture, capture_packets
from aitel.tracer import default_processors


def request(index: int, *, steps: int = 3, fail: bool = False, sleep_s: float = 0.0) -> None:
    """One traced request with ``steps`` child steps (the last one fails when ``fail``)."""
    try:
        with aitel.trace("rag", input={"i": index}, request_id=f"req-{index:05d}") as t:
            for n in range(steps):
                with t.step(f"step-{n}", kind="retriever" if n == 0 else "custom", input=n) as s:
                    if fail and n == steps - 1:
                        raise RuntimeError(f"request {index} failed")
                    s.set_output(n * 2)
            if sleep_s:
                time.sleep(sleep_s)  # the request's own work: it is slow
            t.set_output(f"answer {index}")
    except RuntimeError:
        pass


def test_no_sampling_by_default(aitel_packets: PacketCapture) -> None:
    for i in range(20):
        request(i)
    assert len(aitel_packets.packets()) == 20
    assert aitel_packets.tracer.stats().sampled_out == 0
    assert all((p["processing"] or {}).get("sample_rate") is None for p in aitel_packets.packets())
    assert not any(
        isinstance(p, SamplingProcessor) for p in aitel_packets.tracer.pipeline.processors
    )


def test_rate_keeps_that_fraction_of_requests_and_counts_the_rest() -> None:
    with capture_packets(sample_rate=0.25) as captured:
        for i in range(2000):
            request(i, steps=3)
        packets = captured.packets()
        stats = captured.tracer.stats()
    kept = len(packets)
    assert 400 <= kept <= 600  # 500 expected; 5 standard deviations either side
    assert stats.enqueued == 2000
    assert stats.sampled_out == 2000 - kept
    assert stats.exported == kept
    assert stats.dropped == 0
    for packet in packets:
        assert packet["processing"]["sample_rate"] == 0.25
        assert [s["name"] for s in packet["steps"]] == ["rag", "step-0", "step-1", "step-2"]


def test_decision_is_made_once_per_request_from_its_id() -> None:
    """The same request ids are kept by every process: it depends on the trace id only."""
    ids = [new_id() for _ in range(400)]
    kept_sets = []
    for _ in range(2):
        with capture_packets(sample_rate=0.5) as captured:
            for request_id in ids:
                with aitel.trace("r", request_id=request_id) as t, t.step("inner"):
                    pass
            kept_sets.append({p["request_id"] for p in captured.packets()})
    assert kept_sets[0] == kept_sets[1]
    rule = SamplingProcessor(0.5)
    expected = {i for i in ids if rule.keeps({"trace_id": i.replace("-", ""), "status": "SUCCESS"})}
    assert kept_sets[0] == expected
    assert 120 <= len(expected) <= 280


def test_failures_are_always_kept_whole() -> None:
    """With a rate of 0 every success is dropped and every failure kept, with all its steps."""
    with capture_packets(sample_rate=0.0) as captured:
        for i in range(100):
            request(i, steps=5, fail=i % 4 == 0)
        packets = captured.packets()
        stats = captured.tracer.stats()
    assert sorted(p["request_id"] for p in packets) == [f"req-{i:05d}" for i in range(0, 100, 4)]
    assert stats.sampled_out == 75 and stats.exported == 25
    for packet in packets:
        assert packet["status"] == "FAILURE"
        assert len(packet["steps"]) == 6
        assert packet["error"]["step_name"] == "step-4"
        assert packet["processing"]["sample_rate"] == 0.0


def test_slow_requests_are_kept() -> None:
    with capture_packets(sample_rate=0.0, keep_slower_than_ms=30.0) as captured:
        for i in range(20):
            request(i, sleep_s=0.04 if i in {3, 11} else 0.0)
        packets = captured.packets()
        stats = captured.tracer.stats()
    assert sorted(p["request_id"] for p in packets) == ["req-00003", "req-00011"]
    assert all(p["performance"]["latency_ms"] >= 30.0 for p in packets)
    assert stats.sampled_out == 18


def test_a_sampled_request_is_exported_whole_or_not_at_all() -> None:
    """Requests with many steps: never a partial packet, never a step on its own."""
    with capture_packets(sample_rate=0.3) as captured:
        for i in range(300):
            request(i, steps=20)
        packets = captured.packets()
        stats = captured.tracer.stats()
    assert stats.exported == len(packets) == 300 - stats.sampled_out
    assert len({p["request_id"] for p in packets}) == len(packets)
    for packet in packets:
        assert len(packet["steps"]) == 21
        root_id = packet["steps"][0]["step_id"]
        assert all(s["parent_id"] == root_id for s in packet["steps"][1:])


def test_sampling_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITEL_SAMPLE_RATE", "0")
    monkeypatch.setenv("AITEL_KEEP_SLOWER_THAN_MS", "1000000")
    settings = Settings.from_env()
    assert (settings.sample_rate, settings.keep_slower_than_ms) == (0.0, 1_000_000.0)
    processors = default_processors(settings)
    assert isinstance(processors[0], SamplingProcessor)  # cheapest first: before redaction
    with capture_packets() as captured:
        request(1)
        request(2, fail=True)
        assert [p["request_id"] for p in captured.packets()] == ["req-00002"]
        assert captured.tracer.stats().sampled_out == 1


def test_bad_rates_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        SamplingProcessor(1.5)
    monkeypatch.setenv("AITEL_SAMPLE_RATE", "half")
    with pytest.raises(ConfigError, match="AITEL_SAMPLE_RATE"):
        Settings.from_env()
