"""Performance: where time and money go, and which steps misbehave.

* steps by kind and name, with their share of all request time (time in leaf
  steps only, so nested chains are not counted twice);
* retrievals per source that returned nothing or only low-scoring documents;
* tool error rates;
* retries (``performance.retries``) and how requests with retries fare;
* cost by model and by step.
"""

from __future__ import annotations

from typing import Any

from aitel.analysis.loading import Dataset
from aitel.analysis.model import (
    CostRow,
    Performance,
    RetrievalStat,
    RetryStats,
    StepStat,
    ToolStat,
)

__all__ = ["performance"]

_STEPS = "steps AS s"
"""One row per step of the loaded packets (a view set up by :func:`load`)."""


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def performance(ds: Dataset, *, top: int = 15, low_score_threshold: float = 0.3) -> Performance:
    """Slowest steps, weak retrievals, failing tools, retries and cost breakdowns."""
    q = ds.query
    total_latency = float(q("SELECT coalesce(sum(latency_ms), 0) FROM packets")[0][0])

    step_rows = q(
        f"""
        SELECT s.kind, s.name, count(*), count(*) FILTER (WHERE s.status = 'FAILURE'),
               coalesce(sum(s.duration_ms), 0), bool_and(s.leaf),
               coalesce(sum(s.duration_ms) FILTER (WHERE s.leaf), 0),
               avg(s.duration_ms), quantile_cont(s.duration_ms, [0.5, 0.95])
        FROM {_STEPS}
        GROUP BY ALL
        ORDER BY 7 DESC, 5 DESC
        LIMIT ?
        """,
        [top],
    )
    steps = [
        StepStat(
            kind=kind,
            name=name,
            calls=int(calls),
            failures=int(fails),
            total_ms=float(total),
            share_of_latency=(
                float(leaf_total) / total_latency
                if total_latency and leaf_total
                else (None if not all_leaf else 0.0)
            ),
            mean_ms=_f(mean),
            p50_ms=_f(qs[0]) if qs else None,
            p95_ms=_f(qs[1]) if qs else None,
        )
        for kind, name, calls, fails, total, all_leaf, leaf_total, mean, qs in step_rows
    ]

    retrieval_rows = q(
        f"""
        SELECT coalesce(s.name, s.kind) AS retriever, count(*),
               count(*) FILTER (WHERE s.n_docs = 0),
               count(*) FILTER (WHERE s.top_score < ?), avg(s.top_score)
        FROM {_STEPS}
        WHERE s.kind IN ('retriever', 'reranker') AND s.status = 'SUCCESS'
          AND s.n_docs IS NOT NULL
        GROUP BY retriever
        ORDER BY 3 DESC, 2 DESC
        LIMIT ?
        """,
        [low_score_threshold, top],
    )
    retrievals = [
        RetrievalStat(
            retriever=str(source),
            calls=int(calls),
            empty=int(empty),
            empty_rate=int(empty) / int(calls) if calls else 0.0,
            low_score=int(low),
            mean_top_score=_f(mean_top),
        )
        for source, calls, empty, low, mean_top in retrieval_rows
    ]

    tool_rows = q(
        f"""
        SELECT s.tool, count(*), count(*) FILTER (WHERE s.status = 'FAILURE'),
               list_sort(list_distinct(
                   list(s.error_type) FILTER (WHERE s.error_type IS NOT NULL)))[1:5],
               quantile_cont(s.duration_ms, 0.95)
        FROM {_STEPS}
        WHERE s.tool IS NOT NULL
        GROUP BY s.tool
        ORDER BY 3 DESC, 2 DESC
        LIMIT ?
        """,
        [top],
    )
    tools = [
        ToolStat(
            tool=str(tool),
            calls=int(calls),
            failures=int(fails),
            error_rate=int(fails) / int(calls) if calls else 0.0,
            top_errors=[str(e) for e in (errors or [])],
            p95_ms=_f(p95),
        )
        for tool, calls, fails, errors, p95 in tool_rows
    ]

    retry = q(
        """
        SELECT count(*) FILTER (WHERE retries > 0), coalesce(sum(retries), 0),
               count(*) FILTER (WHERE retries > 0 AND status = 'FAILURE'),
               count(*) FILTER (WHERE retries > 0 AND status <> 'UNKNOWN'),
               count(*) FILTER (WHERE coalesce(retries, 0) = 0 AND status = 'FAILURE'),
               count(*) FILTER (WHERE coalesce(retries, 0) = 0 AND status <> 'UNKNOWN')
        FROM packets
        """
    )[0]
    retries = RetryStats(
        requests_with_retries=int(retry[0]),
        retries=int(retry[1]),
        failure_rate_with_retries=int(retry[2]) / int(retry[3]) if retry[3] else None,
        failure_rate_without_retries=int(retry[4]) / int(retry[5]) if retry[5] else None,
    )

    cost_by_model = _cost(ds, "coalesce(s.model, 'unknown')", top)
    cost_by_step = _cost(ds, "coalesce(s.name, s.kind)", top)
    return Performance(
        steps=steps,
        retrievals=retrievals,
        low_score_threshold=low_score_threshold,
        tools=tools,
        retries=retries,
        cost_by_model=cost_by_model,
        cost_by_step=cost_by_step,
    )


def _cost(ds: Dataset, key_sql: str, top: int) -> list[CostRow]:
    rows = ds.query(
        f"""
        SELECT {key_sql} AS key, count(*), coalesce(sum(s.cost_usd), 0),
               sum(s.prompt_tokens), sum(s.completion_tokens)
        FROM {_STEPS}
        WHERE s.cost_usd IS NOT NULL OR s.prompt_tokens IS NOT NULL
        GROUP BY key
        ORDER BY 3 DESC, 2 DESC
        """
    )
    total = sum(float(r[2]) for r in rows)
    return [
        CostRow(
            key=None if key is None else str(key),
            calls=int(calls),
            cost_usd=float(cost),
            share=float(cost) / total if total else 0.0,
            prompt_tokens=None if pt is None else int(pt),
            completion_tokens=None if ct is None else int(ct),
        )
        for key, calls, cost, pt, ct in rows[:top]
    ]
