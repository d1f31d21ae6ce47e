"""Overview: volume, failure rate, latency, tokens and cost, by model and by variant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aitel.analysis.loading import Dataset
from aitel.analysis.model import GroupSummary, Overview, Percentiles, VariantComparison
from aitel.analysis.stats import mann_whitney_from_ranks, two_proportion_z_test, wilson_interval

__all__ = ["iso", "overview", "variant_baseline"]

_BASELINE_NAMES = ("control", "baseline", "a", "default", "v1")

_SUMMARY_SQL = """
SELECT
    GROUPING(model) AS g_model,
    GROUPING(variant) AS g_variant,
    model,
    variant,
    count(*) AS requests,
    count(*) FILTER (WHERE status = 'FAILURE') AS failures,
    count(*) FILTER (WHERE status = 'UNKNOWN') AS unknown,
    count(latency_ms) AS lat_n,
    avg(latency_ms) AS lat_mean,
    quantile_cont(latency_ms, [0.5, 0.9, 0.99]) AS lat_q,
    count(ttft_ms) AS ttft_n,
    avg(ttft_ms) AS ttft_mean,
    quantile_cont(ttft_ms, [0.5, 0.9, 0.99]) AS ttft_q,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(total_tokens) AS total_tokens,
    avg(total_tokens) AS tokens_per_request,
    sum(cost_usd) AS cost,
    avg(cost_usd) AS cost_per_request,
    sum(retries) AS retries,
    min(ts) AS first_ts,
    max(ts) AS last_ts
FROM packets
GROUP BY GROUPING SETS ((), (model), (variant))
"""


def iso(value: datetime | None) -> str | None:
    """A naive UTC datetime as ISO-8601 with ``Z``."""
    if value is None:
        return None
    return value.isoformat(timespec="microseconds") + "Z"


def _percentiles(n: Any, mean: Any, q: Any) -> Percentiles:
    if not n:
        return Percentiles(count=0)
    return Percentiles(count=int(n), mean=float(mean), p50=q[0], p90=q[1], p99=q[2])


def _summary(row: dict[str, Any], key: str | None) -> GroupSummary:
    requests = int(row["requests"])
    failures = int(row["failures"])
    known = requests - int(row["unknown"])
    rate = failures / known if known else None
    return GroupSummary(
        key=key,
        requests=requests,
        failures=failures,
        unknown_status=int(row["unknown"]),
        failure_rate=rate,
        failure_rate_ci95=list(wilson_interval(failures, known)) if known else None,
        latency_ms=_percentiles(row["lat_n"], row["lat_mean"], row["lat_q"]),
        ttft_ms=_percentiles(row["ttft_n"], row["ttft_mean"], row["ttft_q"]),
        prompt_tokens=_int(row["prompt_tokens"]),
        completion_tokens=_int(row["completion_tokens"]),
        total_tokens=_int(row["total_tokens"]),
        tokens_per_request=_float(row["tokens_per_request"]),
        cost_usd=_float(row["cost"]),
        cost_per_request_usd=_float(row["cost_per_request"]),
        retries=_int(row["retries"]),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def variant_baseline(variants: list[tuple[str, int]]) -> str | None:
    """The variant others are compared with: a conventional name, else the largest group."""
    if not variants:
        return None
    by_name = {v.lower(): v for v, _ in variants}
    for name in _BASELINE_NAMES:
        if name in by_name:
            return by_name[name]
    return max(variants, key=lambda item: (item[1], item[0]))[0]


def _latency_test(ds: Dataset, baseline: str, variant: str) -> tuple[float | None, float | None]:
    """Mann-Whitney p-value and P(variant slower) from ranks computed in SQL."""
    row = ds.con.execute(
        """
        WITH v AS (
            SELECT latency_ms AS x, (variant = ?) AS first
            FROM packets WHERE variant IN (?, ?) AND latency_ms IS NOT NULL
        ),
        tied AS (
            SELECT x, count(*) AS c, count(*) FILTER (WHERE first) AS c1 FROM v GROUP BY x
        ),
        ranked AS (
            SELECT c, c1, sum(c) OVER (ORDER BY x ROWS UNBOUNDED PRECEDING) - (c - 1) / 2.0 AS r
            FROM tied
        )
        SELECT sum(c1), sum(c) - sum(c1), sum(r * c1), sum(c * c * c - c) FROM ranked
        """,
        [baseline, baseline, variant],
    ).fetchone()
    if row is None or not row[0] or not row[1]:
        return None, None
    result = mann_whitney_from_ranks(int(row[0]), int(row[1]), float(row[2]), float(row[3]))
    return result.p_value, result.effect


def overview(ds: Dataset, *, alpha: float = 0.05, max_groups: int = 50) -> Overview:
    """Totals and the same figures by model and by A/B variant, variants compared to a baseline."""
    cursor = ds.con.execute(_SUMMARY_SQL)
    names = [d[0] for d in cursor.description or []]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    total_row = next((r for r in rows if r["g_model"] and r["g_variant"]), None)
    if total_row is None:  # no packets at all
        total_row = dict.fromkeys(names) | {"requests": 0, "failures": 0, "unknown": 0}
    by_model = sorted(
        (r for r in rows if not r["g_model"] and r["g_variant"]), key=lambda r: -r["requests"]
    )[:max_groups]
    by_variant = sorted(
        (r for r in rows if r["g_model"] and not r["g_variant"]), key=lambda r: -r["requests"]
    )[:max_groups]

    comparisons: list[VariantComparison] = []
    named = [(r["variant"], int(r["requests"])) for r in by_variant if r["variant"] is not None]
    baseline = variant_baseline(named)
    if baseline is not None and len(named) > 1:
        base = next(r for r in by_variant if r["variant"] == baseline)
        others = [r for r in by_variant if r["variant"] not in (None, baseline)]
        corrected = alpha / max(1, len(others))
        for row in others:
            comparisons.append(_compare(ds, base, row, corrected))

    return Overview(
        first_request=iso(total_row.get("first_ts")),
        last_request=iso(total_row.get("last_ts")),
        totals=_summary(total_row, None),
        by_model=[_summary(r, r["model"]) for r in by_model],
        by_variant=[_summary(r, r["variant"]) for r in by_variant],
        variant_comparisons=comparisons,
    )


def _compare(
    ds: Dataset, base: dict[str, Any], row: dict[str, Any], alpha: float
) -> VariantComparison:
    n1 = int(base["requests"]) - int(base["unknown"])
    n2 = int(row["requests"]) - int(row["unknown"])
    rate_p: float | None = None
    rate1 = rate2 = diff = None
    if n1 > 0 and n2 > 0:
        z = two_proportion_z_test(int(base["failures"]), n1, int(row["failures"]), n2)
        rate_p, rate1, rate2, diff = z.p_value, z.p1, z.p2, z.diff
    # The baseline is sample 1, so the test's effect is P(variant slower than baseline).
    lat_p, slower = _latency_test(ds, str(base["variant"]), str(row["variant"]))
    p50_base = base["lat_q"][0] if base["lat_q"] else None
    p50_var = row["lat_q"][0] if row["lat_q"] else None
    cost_diff = None
    if base["cost_per_request"] is not None and row["cost_per_request"] is not None:
        cost_diff = float(row["cost_per_request"]) - float(base["cost_per_request"])
    return VariantComparison(
        baseline=str(base["variant"]),
        variant=str(row["variant"]),
        failure_rate_baseline=rate1,
        failure_rate_variant=rate2,
        failure_rate_diff=diff,
        failure_rate_p_value=rate_p,
        failure_rate_significant=rate_p is not None and rate_p < alpha,
        latency_p50_diff_ms=(
            None if p50_base is None or p50_var is None else float(p50_var) - float(p50_base)
        ),
        latency_p_value=lat_p,
        latency_prob_slower=slower,
        latency_significant=lat_p is not None and lat_p < alpha,
        cost_per_request_diff_usd=cost_diff,
        alpha=alpha,
    )
