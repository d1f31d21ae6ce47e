"""Synthetic data and the root-cause ranking: planted causes first, none invented."""

from __future__ import annotations

from pathlib import Path

import pytest

from aitel.analysis.loading import load
from aitel.analysis.ranking import ranking
from aitel.analysis.synthetic import (
    LONG_PROMPT_CHARS,
    SyntheticOptions,
    generate_packets,
    write_dataset,
)
from aitel.schema import ContextPacket

COUNT = 8000


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("planted")
    write_dataset(out, COUNT, seed=21, per_file=4000)
    return out


@pytest.fixture(scope="module")
def cause_free(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cause_free")
    write_dataset(out, COUNT, seed=22, options=SyntheticOptions(causes=False), per_file=4000)
    return out


@pytest.mark.parametrize("causes", [True, False])
def test_synthetic_packets_conform_to_the_schema(causes):
    packets = list(generate_packets(300, seed=5, options=SyntheticOptions(causes=causes)))
    for packet in packets:
        ContextPacket.model_validate(packet)
    failures = [p for p in packets if p["status"] == "FAILURE"]
    assert failures
    for packet in failures:
        assert packet["error"]["step_kind"] is not None
        assert packet["error_message"].startswith(packet["error"]["type"])


def test_generation_is_deterministic(tmp_path):
    a = write_dataset(tmp_path / "a", 50, seed=3, per_file=20)
    b = write_dataset(tmp_path / "b", 50, seed=3, per_file=20, workers=2)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert len(a) == 3


def test_planted_effect_sizes(planted):
    with load([planted]) as ds:
        (b_long, a_long) = (
            ds.scalar(
                "SELECT avg((status = 'FAILURE')::INT) FROM packets "
                "WHERE variant = ? AND prompt_chars > ?",
                [variant, LONG_PROMPT_CHARS],
            )
            for variant in ("B", "A")
        )
        assert b_long > 3 * a_long


def _signature(finding) -> set[tuple[str, str]]:
    return {(c.attribute, c.value) for c in finding.conditions}


def _cause_of(finding) -> str | None:
    sig = _signature(finding)
    attrs = {a for a, _ in sig}
    if ("variant", "B") in sig and "prompt_chars" in attrs:
        value = dict(sig)["prompt_chars"]
        if value.startswith((">=4k", "4k", ">=2k")):
            return "variant_b_long_prompt"
    if ("retrieved_docs", "0") in sig or ("retrieval_source", "LegacySearchRetriever") in sig:
        return "empty_legacy_retrieval"
    if ("tool", "web_search") in sig:
        return "web_search_timeout"
    return None


def test_ranking_puts_the_planted_causes_first(planted):
    with load([planted]) as ds:
        result = ranking(ds)
    causes = [_cause_of(f) for f in result.findings]
    assert set(causes[:3]) == {
        "variant_b_long_prompt",
        "empty_legacy_retrieval",
        "web_search_timeout",
    }, [f.label for f in result.findings]
    assert None not in causes, [f.label for f in result.findings]
    for finding in result.findings:
        assert finding.q_value < result.alpha
        assert finding.lift >= result.min_lift
        assert finding.failures >= result.min_failures
    top = result.findings[0]
    assert top.failure_rate > top.failure_rate_elsewhere
    # Facets of the same cause are listed under it, not as separate findings.
    related = {r.label for f in result.findings for r in f.related}
    assert "retrieval_source = LegacySearchRetriever" in related or any(
        "LegacySearchRetriever" in f.label for f in result.findings
    )


def test_ranking_invents_nothing_on_cause_free_data(cause_free):
    with load([cause_free]) as ds:
        result = ranking(ds)
    assert result.hypotheses_tested > 100
    assert result.findings == [], [f.label for f in result.findings]


def test_ranking_without_failures(tmp_path):
    write_dataset(tmp_path, 200, seed=1, options=SyntheticOptions(causes=False, failure_rate=0))
    with load([tmp_path]) as ds:
        result = ranking(ds)
    assert result.findings == []
    assert result.hypotheses_tested == 0
