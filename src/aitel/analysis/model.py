"""The analysis report as data: what ``aitel analyze --json`` prints.

These pydantic models are the contract for machines reading the report. The
published JSON Schema is ``schemas/analysis-report.v1.json``; regenerate it
with::

    python -c "from aitel.analysis.model import schema_text; print(schema_text(), end='')" \
        > schemas/analysis-report.v1.json

Minor versions (``1.x``) only add optional fields.

Conventions: rates are fractions in ``[0, 1]``; durations are milliseconds;
costs are US dollars; times are UTC ISO-8601 strings ending in ``Z``; a value
that cannot be computed (no data) is ``null``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "AnalysisReport",
    "Condition",
    "CostRow",
    "ErrorGroup",
    "ErrorLocation",
    "Failures",
    "Finding",
    "GroupSummary",
    "InputProblem",
    "InputSummary",
    "Overview",
    "Percentiles",
    "Performance",
    "Ranking",
    "RelatedFinding",
    "RetrievalStat",
    "RetryStats",
    "StepStat",
    "ToolStat",
    "VariantComparison",
    "json_schema",
]

REPORT_SCHEMA_VERSION = "1.0"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Percentiles(_Out):
    """Distribution of a measure over the requests that report it."""

    count: int = Field(description="Requests with a value.")
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class GroupSummary(_Out):
    """Volume, reliability, speed and spend of a set of requests."""

    key: str | None = Field(
        default=None, description="The group's value (model, variant); null for all requests."
    )
    requests: int
    failures: int
    unknown_status: int = Field(description="Requests whose outcome was not recorded.")
    failure_rate: float | None = Field(description="Failures over requests with a known outcome.")
    failure_rate_ci95: list[float] | None = Field(
        default=None, description="Wilson 95% interval of the failure rate: [low, high]."
    )
    latency_ms: Percentiles
    ttft_ms: Percentiles = Field(description="Time to first token.")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    tokens_per_request: float | None = Field(
        default=None, description="Mean total tokens over requests that report usage."
    )
    cost_usd: float | None = None
    cost_per_request_usd: float | None = Field(
        default=None, description="Mean cost over requests that report a cost."
    )
    retries: int | None = None


class VariantComparison(_Out):
    """An A/B variant against the baseline variant, with tests for noise."""

    baseline: str
    variant: str
    failure_rate_baseline: float | None
    failure_rate_variant: float | None
    failure_rate_diff: float | None = Field(description="Variant minus baseline.")
    failure_rate_p_value: float | None = Field(description="Two-proportion z-test, two-sided.")
    failure_rate_significant: bool
    latency_p50_diff_ms: float | None = Field(description="Variant median minus baseline median.")
    latency_p_value: float | None = Field(description="Mann-Whitney U test, two-sided.")
    latency_prob_slower: float | None = Field(
        description="Probability that a variant request is slower than a baseline one (0.5: same)."
    )
    latency_significant: bool
    cost_per_request_diff_usd: float | None = None
    alpha: float = Field(description="Significance level after Bonferroni correction.")


class Overview(_Out):
    first_request: str | None
    last_request: str | None
    totals: GroupSummary
    by_model: list[GroupSummary]
    by_variant: list[GroupSummary]
    variant_comparisons: list[VariantComparison]


class ErrorLocation(_Out):
    step_kind: str | None
    step_name: str | None
    count: int


class ErrorGroup(_Out):
    """Failures whose messages differ only in request-specific values."""

    error_type: str | None
    pattern: str = Field(description="The message with numbers, ids, quotes and paths masked.")
    example_message: str
    count: int
    share_of_failures: float
    first_seen: str | None
    last_seen: str | None
    example_request_ids: list[str]
    locations: list[ErrorLocation] = Field(
        description="Where the error arose, most frequent first."
    )


class Failures(_Out):
    failures: int
    groups_total: int
    groups: list[ErrorGroup]


class Condition(_Out):
    attribute: str = Field(description="e.g. 'variant', 'prompt_chars', 'tool', 'metadata.tier'.")
    value: str


class RelatedFinding(_Out):
    """A weaker pattern that the finding above it explains."""

    label: str
    conditions: list[Condition]
    lift: float
    failures: int


class Finding(_Out):
    """An attribute value (or a pair of them) over-represented among failures."""

    rank: int
    label: str
    conditions: list[Condition]
    requests: int
    failures: int
    failure_rate: float
    failure_rate_elsewhere: float = Field(description="Failure rate of all other requests.")
    lift: float = Field(description="failure_rate / failure_rate_elsewhere.")
    share_of_failures: float = Field(description="Fraction of all failures that match.")
    excess_failures: float = Field(
        description="Failures above what the rate elsewhere would predict."
    )
    p_value: float
    q_value: float = Field(description="Benjamini-Hochberg adjusted p-value.")
    related: list[RelatedFinding] = Field(default_factory=list)


class Ranking(_Out):
    """Likely root causes, strongest first."""

    method: str
    alpha: float
    min_failures: int
    min_lift: float
    hypotheses_tested: int
    findings: list[Finding]


class StepStat(_Out):
    kind: str | None
    name: str | None
    calls: int
    failures: int
    total_ms: float
    share_of_latency: float | None = Field(
        description="Share of all request time spent in this step; null for steps that only "
        "contain other steps (their time is counted in their children)."
    )
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None


class RetrievalStat(_Out):
    retriever: str = Field(description="The retriever (or reranker) step's name.")
    calls: int
    empty: int
    empty_rate: float
    low_score: int = Field(description="Calls whose best document scored below the threshold.")
    mean_top_score: float | None


class ToolStat(_Out):
    tool: str
    calls: int
    failures: int
    error_rate: float
    top_errors: list[str]
    p95_ms: float | None


class RetryStats(_Out):
    requests_with_retries: int
    retries: int
    failure_rate_with_retries: float | None
    failure_rate_without_retries: float | None


class CostRow(_Out):
    key: str | None
    calls: int
    cost_usd: float
    share: float
    prompt_tokens: int | None
    completion_tokens: int | None


class Performance(_Out):
    steps: list[StepStat]
    retrievals: list[RetrievalStat]
    low_score_threshold: float
    tools: list[ToolStat]
    retries: RetryStats
    cost_by_model: list[CostRow]
    cost_by_step: list[CostRow]


class InputProblem(_Out):
    path: str
    problem: str


class InputSummary(_Out):
    sources: list[str]
    files: int
    bytes: int
    packets_read: int
    packets: int = Field(description="Packets analysed (after deduplication and filters).")
    duplicates: int
    filtered_out: int
    malformed_lines: int
    unrecognised: int
    problems: list[InputProblem]


class AnalysisReport(_Out):
    """Root-cause analysis of a set of context packets."""

    schema_version: str = Field(default=REPORT_SCHEMA_VERSION, pattern=r"^1\.[0-9]+$")
    generated_at: str
    filters: dict[str, Any]
    input: InputSummary
    overview: Overview
    failures: Failures
    ranking: Ranking
    performance: Performance


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the analysis report."""
    schema = AnalysisReport.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://aitel.dev/schemas/analysis-report.v1.json"
    return schema


def schema_text() -> str:
    """The schema file's exact text."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
