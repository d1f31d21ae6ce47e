"""The analysis report: figures, JSON schema, terminal rendering, single packets."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from aitel.analysis.analyze import analyze
from aitel.analysis.errors import PacketNotFoundError
from aitel.analysis.failures import failures
from aitel.analysis.loading import load
from aitel.analysis.model import REPORT_SCHEMA_VERSION, schema_text
from aitel.analysis.overview import overview
from aitel.analysis.performance import performance
from aitel.analysis.render import print_report
from aitel.analysis.show import find_packet, find_packets, print_packet, step_rows
from aitel.analysis.stats import mann_whitney_u, two_proportion_z_test
from aitel.analysis.synthetic import generate_packets, write_dataset

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "analysis-report.v1.json"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_dataset(out, 3000, seed=9, per_file=1000)
    return out


@pytest.fixture(scope="module")
def report(data):
    with load([data]) as ds:
        return analyze(ds)


def test_committed_schema_is_in_sync():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "regenerate schemas/analysis-report.v1.json (see aitel.analysis.model)"
    )


def test_json_output_validates_against_committed_schema(report):
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    document = json.loads(report.model_dump_json())
    jsonschema.validate(document, schema)
    assert document["schema_version"] == REPORT_SCHEMA_VERSION


def test_overview_matches_the_data(data, report):
    packets = [
        json.loads(line)
        for f in sorted(data.glob("*.jsonl"))
        for line in f.read_text(encoding="utf-8").splitlines()
    ]
    totals = report.overview.totals
    assert totals.requests == len(packets)
    assert totals.failures == sum(p["status"] == "FAILURE" for p in packets)
    assert totals.cost_usd == pytest.approx(
        sum(p["performance"]["cost_usd"] or 0 for p in packets), rel=1e-6
    )
    latencies = sorted(p["performance"]["latency_ms"] for p in packets)
    assert totals.latency_ms.p50 == pytest.approx(latencies[len(latencies) // 2], rel=0.01)
    assert {m.key for m in report.overview.by_model} == {
        p["pipeline_metadata"]["model_name"] for p in packets
    }
    assert sum(v.requests for v in report.overview.by_variant) == len(packets)
    (comparison,) = report.overview.variant_comparisons
    assert (comparison.baseline, comparison.variant) == ("A", "B")
    by_variant = {v.key: v for v in report.overview.by_variant}
    a, b = by_variant["A"], by_variant["B"]
    expected = two_proportion_z_test(a.failures, a.requests, b.failures, b.requests)
    assert comparison.failure_rate_diff == pytest.approx(expected.diff)
    assert comparison.failure_rate_p_value == pytest.approx(expected.p_value)
    assert comparison.failure_rate_significant == (expected.p_value < 0.05)
    lat = {
        v: [
            p["performance"]["latency_ms"]
            for p in packets
            if p["pipeline_metadata"]["ab_variant"] == v
        ]
        for v in ("A", "B")
    }
    mw = mann_whitney_u(lat["A"], lat["B"])
    assert comparison.latency_p_value == pytest.approx(mw.p_value, rel=1e-6)
    assert comparison.latency_prob_slower == pytest.approx(mw.effect, rel=1e-9)


def test_failures_group_and_locate_errors(report):
    groups = {g.pattern: g for g in report.failures.groups}
    timeout = groups["web_search timed out after <n>s (attempt <n> of <n>)"]
    assert timeout.error_type == "TimeoutError"
    assert timeout.locations[0].step_kind == "tool"
    assert timeout.locations[0].step_name == "web_search"
    assert 1 <= len(timeout.example_request_ids) <= 3
    assert timeout.first_seen is not None
    assert timeout.last_seen is not None
    assert timeout.first_seen <= timeout.last_seen
    assert report.failures.failures == report.overview.totals.failures
    counts = [g.count for g in report.failures.groups]
    assert counts == sorted(counts, reverse=True)


def test_performance_report(report):
    perf = report.performance
    by_name = {(s.kind, s.name): s for s in perf.steps}
    assert by_name[("chain", "RunnableSequence")].share_of_latency is None
    leaf_share = sum(s.share_of_latency or 0 for s in perf.steps)
    assert 0.5 < leaf_share <= 1.01
    legacy = next(r for r in perf.retrievals if r.retriever == "LegacySearchRetriever")
    vector = next(r for r in perf.retrievals if r.retriever == "VectorStoreRetriever")
    assert legacy.empty_rate > 5 * vector.empty_rate
    web = next(t for t in perf.tools if t.tool == "web_search")
    calc = next(t for t in perf.tools if t.tool == "calculator")
    assert web.error_rate > calc.error_rate
    assert "TimeoutError" in web.top_errors
    assert perf.retries.requests_with_retries > 0
    assert sum(c.share for c in perf.cost_by_model) == pytest.approx(1.0)
    assert {c.key for c in perf.cost_by_step} >= {"ChatOpenAI"}


def test_reports_on_minimal_packets(tmp_path):
    lines = [
        {
            "request_id": f"r{i}",
            "status": "FAILURE" if i % 3 == 0 else "SUCCESS",
            "error_message": f"timeout after {i}s on doc {i * 7}" if i % 3 == 0 else None,
            "payload": {"input": "q" * (10 * i)},
        }
        for i in range(30)
    ]
    (tmp_path / "seed.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    with load([tmp_path]) as ds:
        result = analyze(ds)
        assert overview(ds).totals.latency_ms.count == 0
        assert performance(ds).steps == []
        groups = failures(ds).groups
    assert result.overview.totals.failures == 10
    assert len(groups) == 1
    assert groups[0].pattern == "timeout after <n>s on doc <n>"
    assert groups[0].count == 10


def test_terminal_rendering(report):
    buffer = io.StringIO()
    print_report(report, Console(file=buffer, width=160, color_system=None))
    text = buffer.getvalue()
    for heading in (
        "Overview",
        "By model",
        "By A/B variant",
        "Likely root causes",
        "Top errors",
        "Steps by time",
        "Tools",
        "Cost by model",
    ):
        assert heading in text
    assert "web_search" in text


def test_show_finds_and_renders_a_failing_request(data, report):
    rid = report.failures.groups[0].example_request_ids[0]
    packet = find_packet([data], rid)
    assert packet["request_id"] == rid
    rows = step_rows(packet)
    assert rows[0]["depth"] == 0
    assert any(r["origin"] for r in rows)
    buffer = io.StringIO()
    print_packet(packet, Console(file=buffer, width=160, color_system=None))
    text = buffer.getvalue()
    assert rid in text
    assert "FAILURE" in text
    assert "✗" in text
    with pytest.raises(PacketNotFoundError):
        find_packet([data], "no-such-request")


def test_show_looks_beyond_the_first_id_field(tmp_path):
    packet = next(iter(generate_packets(1, seed=2)))
    reordered = {"payload": {"request_id": "decoy"}, **packet}
    (tmp_path / "x.jsonl").write_text(json.dumps(reordered) + "\n")
    found = find_packets([tmp_path], [packet["request_id"], packet["packet_id"]])
    assert set(found) == {packet["request_id"], packet["packet_id"]}


def test_show_finds_packets_in_a_collector_store(tmp_path):
    """Bodies stored plain or gzip-compressed are both found."""
    import gzip

    from aitel.collector import PacketStore

    plain, packed = generate_packets(2, seed=3)
    store = PacketStore(tmp_path / "aitel.db")
    store.start()
    rows = [
        (plain["packet_id"], json.dumps(plain).encode()),
        (packed["packet_id"], gzip.compress(json.dumps(packed).encode())),
    ]
    store.submit(rows).result(timeout=10)
    store.close()
    found = find_packets([tmp_path / "aitel.db"], [plain["request_id"], packed["request_id"]])
    assert {p["packet_id"] for p in found.values()} == {plain["packet_id"], packed["packet_id"]}
