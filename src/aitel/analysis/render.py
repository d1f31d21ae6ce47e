"""Terminal rendering of an :class:`AnalysisReport` with rich tables."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from aitel.analysis.model import AnalysisReport, GroupSummary, InputSummary, Percentiles

__all__ = ["fmt_ms", "fmt_pct", "fmt_usd", "print_report", "render_report"]


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f}s"
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def fmt_usd(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.5f}"
    return f"${value:,.2f}"


def fmt_int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def fmt_p(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1e-4:
        return "<0.0001"
    return f"{value:.4f}"


def _pcts(p: Percentiles) -> str:
    if not p.count:
        return "-"
    return f"{fmt_ms(p.p50)} / {fmt_ms(p.p90)} / {fmt_ms(p.p99)}"


def _table(title: str, *columns: str, right: Sequence[int] = ()) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        expand=False,
    )
    for index, column in enumerate(columns):
        table.add_column(column, justify="right" if index in right else "left", overflow="fold")
    return table


def _summary_row(s: GroupSummary) -> list[str]:
    return [
        fmt_int(s.requests),
        fmt_int(s.failures),
        fmt_pct(s.failure_rate, 2),
        _pcts(s.latency_ms),
        _pcts(s.ttft_ms),
        fmt_int(s.total_tokens),
        "-" if s.tokens_per_request is None else f"{s.tokens_per_request:,.0f}",
        fmt_usd(s.cost_usd),
        fmt_usd(s.cost_per_request_usd),
    ]


_SUMMARY_COLUMNS = (
    "requests",
    "failures",
    "fail %",
    "latency p50/p90/p99",
    "TTFT p50/p90/p99",
    "tokens",
    "tok/req",
    "cost",
    "cost/req",
)


def _input_panel(inp: InputSummary) -> RenderableType:
    parts = [
        f"{inp.packets:,} packets analysed from {inp.files} file(s), {inp.bytes / 1e6:,.1f} MB",
    ]
    extras = []
    if inp.duplicates:
        extras.append(f"{inp.duplicates:,} duplicates dropped")
    if inp.filtered_out:
        extras.append(f"{inp.filtered_out:,} filtered out")
    if inp.malformed_lines:
        extras.append(f"{inp.malformed_lines:,} malformed lines skipped")
    if inp.unrecognised:
        extras.append(f"{inp.unrecognised:,} objects without ids skipped")
    if extras:
        parts.append("; ".join(extras))
    text = Text("\n".join(parts))
    for problem in inp.problems[:10]:
        text.append(f"\n! {problem.path}: {problem.problem}", style="yellow")
    if len(inp.problems) > 10:
        text.append(f"\n! ... and {len(inp.problems) - 10} more file problems", style="yellow")
    return text


def render_report(report: AnalysisReport) -> list[RenderableType]:
    """The report as rich renderables, in reading order."""
    out: list[RenderableType] = []
    ov = report.overview
    header = Text("aitel analysis", style="bold")
    if ov.first_request:
        header.append(f"  {ov.first_request} .. {ov.last_request}", style="dim")
    if report.filters:
        header.append(
            "  filters: " + ", ".join(f"{k}={v}" for k, v in report.filters.items()), style="dim"
        )
    out.append(Panel(Group(header, _input_panel(report.input)), box=box.ROUNDED))

    totals = _table("Overview", *_SUMMARY_COLUMNS, right=range(9))
    totals.add_row(*_summary_row(ov.totals))
    out.append(totals)
    for title, rows in (("By model", ov.by_model), ("By A/B variant", ov.by_variant)):
        if rows:
            table = _table(title, "", *_SUMMARY_COLUMNS, right=range(1, 10))
            for row in rows:
                table.add_row(row.key or "(none)", *_summary_row(row))
            out.append(table)
    if ov.variant_comparisons:
        table = _table(
            "Variant vs baseline",
            "variant",
            "fail % diff",
            "p (z-test)",
            "p50 latency diff",
            "P(slower)",
            "p (Mann-Whitney)",
            "verdict",
            right=range(1, 6),
        )
        for c in ov.variant_comparisons:
            verdicts = []
            if c.failure_rate_significant and c.failure_rate_diff is not None:
                verdicts.append("fails more" if c.failure_rate_diff > 0 else "fails less")
            if c.latency_significant and c.latency_prob_slower is not None:
                verdicts.append("slower" if c.latency_prob_slower > 0.5 else "faster")
            verdict = Text(
                ", ".join(verdicts) or "within noise", style="bold red" if verdicts else "green"
            )
            diff = c.failure_rate_diff
            table.add_row(
                f"{c.variant} vs {c.baseline}",
                "-" if diff is None else f"{diff * 100:+.2f} pp",
                fmt_p(c.failure_rate_p_value),
                "-" if c.latency_p50_diff_ms is None else f"{c.latency_p50_diff_ms:+.0f}ms",
                fmt_pct(c.latency_prob_slower),
                fmt_p(c.latency_p_value),
                verdict,
            )
        out.append(table)

    rk = report.ranking
    if rk.findings:
        table = _table(
            f"Likely root causes (tested {rk.hypotheses_tested} hypotheses, "
            f"q < {rk.alpha}, >= {rk.min_failures} failures)",
            "#",
            "attribute",
            "requests",
            "fail %",
            "elsewhere",
            "lift",
            "of failures",
            "q",
            "explains also",
            right=(2, 3, 4, 5, 6, 7),
        )
        for f in rk.findings:
            table.add_row(
                str(f.rank),
                Text(f.label, style="bold"),
                fmt_int(f.requests),
                fmt_pct(f.failure_rate),
                fmt_pct(f.failure_rate_elsewhere),
                f"{f.lift:.1f}x",
                fmt_pct(f.share_of_failures),
                fmt_p(f.q_value),
                "; ".join(r.label for r in f.related[:3]),
            )
        out.append(table)
    else:
        out.append(
            Text(
                "Root causes: no attribute is significantly over-represented among "
                f"failures ({rk.hypotheses_tested} hypotheses tested).",
                style="green",
            )
        )

    fl = report.failures
    if fl.groups:
        table = _table(
            f"Top errors ({fl.failures:,} failures in {fl.groups_total} groups)",
            "count",
            "share",
            "error",
            "where",
            "first / last seen",
            "example request",
            right=(0, 1),
        )
        for g in fl.groups:
            where = ", ".join(
                f"{loc.step_kind or '?'}:{loc.step_name or '?'}" for loc in g.locations[:2]
            )
            seen = f"{(g.first_seen or '-')[:16]} / {(g.last_seen or '-')[:16]}"
            table.add_row(
                fmt_int(g.count),
                fmt_pct(g.share_of_failures),
                Text(f"{g.error_type or 'Error'}: ", style="bold").append(g.pattern, style=""),
                where,
                seen,
                g.example_request_ids[0] if g.example_request_ids else "-",
            )
        out.append(table)

    pf = report.performance
    if pf.steps:
        table = _table(
            "Steps by time",
            "kind",
            "name",
            "calls",
            "fail",
            "share of time",
            "mean",
            "p50",
            "p95",
            right=(2, 3, 4, 5, 6, 7),
        )
        for s in pf.steps:
            table.add_row(
                s.kind or "?",
                s.name or "?",
                fmt_int(s.calls),
                fmt_int(s.failures),
                fmt_pct(s.share_of_latency),
                fmt_ms(s.mean_ms),
                fmt_ms(s.p50_ms),
                fmt_ms(s.p95_ms),
            )
        out.append(table)
    if pf.retrievals:
        table = _table(
            f"Retrievals (low score: best document < {pf.low_score_threshold})",
            "retriever",
            "calls",
            "empty",
            "empty %",
            "low score",
            "mean top score",
            right=(1, 2, 3, 4, 5),
        )
        for r in pf.retrievals:
            table.add_row(
                r.retriever,
                fmt_int(r.calls),
                fmt_int(r.empty),
                fmt_pct(r.empty_rate),
                fmt_int(r.low_score),
                "-" if r.mean_top_score is None else f"{r.mean_top_score:.3f}",
            )
        out.append(table)
    if pf.tools:
        table = _table(
            "Tools", "tool", "calls", "failures", "error %", "p95", "errors", right=(1, 2, 3, 4)
        )
        for t in pf.tools:
            table.add_row(
                t.tool,
                fmt_int(t.calls),
                fmt_int(t.failures),
                fmt_pct(t.error_rate),
                fmt_ms(t.p95_ms),
                ", ".join(t.top_errors),
            )
        out.append(table)
    rt = pf.retries
    out.append(
        Text(
            f"Retries: {rt.retries:,} in {rt.requests_with_retries:,} requests; failure rate "
            f"{fmt_pct(rt.failure_rate_with_retries)} with retries vs "
            f"{fmt_pct(rt.failure_rate_without_retries)} without."
        )
    )
    for cost_title, cost_rows in (
        ("Cost by model", pf.cost_by_model),
        ("Cost by step", pf.cost_by_step),
    ):
        if cost_rows:
            table = _table(
                cost_title,
                "",
                "calls",
                "cost",
                "share",
                "prompt tok",
                "completion tok",
                right=(1, 2, 3, 4, 5),
            )
            for cost in cost_rows:
                table.add_row(
                    cost.key or "?",
                    fmt_int(cost.calls),
                    fmt_usd(cost.cost_usd),
                    fmt_pct(cost.share),
                    fmt_int(cost.prompt_tokens),
                    fmt_int(cost.completion_tokens),
                )
            out.append(table)
    return out


def print_report(report: AnalysisReport, console: Console | None = None) -> None:
    """Print the report to the terminal (or the given console)."""
    target = console or Console()
    for item in render_report(report):
        target.print(item)
