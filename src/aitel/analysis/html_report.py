"""The self-contained HTML report (``aitel report``).

Charts are drawn by plotly.js, embedded once in the page from the ``plotly``
Python package (so the file opens without network access). The figures are
plain JSON specs built here; the Python plotting API is not used. plotly.js
is a widely used, maintained charting library that renders SVG with hover
details and zoom, and the Python package keeps its bundle current without
vendoring JavaScript into this project.
"""

from __future__ import annotations

import html
import json
import math
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from aitel.analysis.errors import ReportError
from aitel.analysis.loading import Dataset
from aitel.analysis.model import AnalysisReport
from aitel.analysis.overview import iso
from aitel.analysis.render import fmt_ms, fmt_pct, fmt_usd
from aitel.analysis.show import find_packets, step_rows

__all__ = ["build_figures", "plotly_js", "render_html", "write_html_report"]

_BUCKETS = [
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=7),
]
_MAX_WATERFALLS = 12
_RED = "#d62728"
_GREEN = "#2ca02c"
_BLUE = "#1f77b4"
_GREY = "#7f7f7f"


def plotly_js() -> str:
    """The minified plotly.js bundle shipped with the ``plotly`` package."""
    try:
        bundle = resources.files("plotly") / "package_data" / "plotly.min.js"
        return bundle.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise ReportError(
            "the HTML report needs the 'plotly' package (pip install 'aitel[analysis]')"
        ) from exc


def _bucket(ds: Dataset) -> timedelta:
    row = ds.query("SELECT min(ts), max(ts) FROM packets")[0]
    if row[0] is None or row[1] is None:
        return _BUCKETS[3]
    span = row[1] - row[0]
    for width in _BUCKETS:
        if span / width <= 80:
            return width
    return _BUCKETS[-1]


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0.01, "font": {"size": 15}},
        "margin": {"l": 60, "r": 30, "t": 45, "b": 45},
        "height": 320,
        "legend": {"orientation": "h", "y": -0.2},
        "template": None,
        "paper_bgcolor": "white",
        "plot_bgcolor": "#fafafa",
    }
    layout.update(extra)
    return layout


def _time_figures(ds: Dataset) -> list[dict[str, Any]]:
    width = _bucket(ds)
    seconds = int(width.total_seconds())
    rows = ds.query(
        f"""
        SELECT time_bucket(INTERVAL '{seconds} seconds', ts) AS t,
               count(*), count(*) FILTER (WHERE status = 'FAILURE'),
               count(*) FILTER (WHERE status <> 'UNKNOWN'),
               quantile_cont(latency_ms, [0.5, 0.9, 0.99])
        FROM packets WHERE ts IS NOT NULL GROUP BY t ORDER BY t
        """
    )
    times = [iso(r[0]) for r in rows]
    rate = [(r[2] / r[3]) if r[3] else None for r in rows]
    failure = {
        "id": "failure-rate",
        "data": [
            {
                "type": "bar",
                "x": times,
                "y": [r[1] for r in rows],
                "name": "requests",
                "marker": {"color": "#c7d7ea"},
                "yaxis": "y2",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": times,
                "y": rate,
                "name": "failure rate",
                "line": {"color": _RED},
            },
        ],
        "layout": _layout(
            f"Failure rate over time (per {_human(width)})",
            yaxis={"title": "failure rate", "tickformat": ".0%", "rangemode": "tozero"},
            yaxis2={"title": "requests", "overlaying": "y", "side": "right", "showgrid": False},
        ),
    }
    latency = {
        "id": "latency-time",
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": times,
                "y": [r[4][i] if r[4] else None for r in rows],
                "name": name,
                "line": {"color": color},
            }
            for i, (name, color) in enumerate((("p50", _BLUE), ("p90", "#ff7f0e"), ("p99", _RED)))
        ],
        "layout": _layout("Latency over time", yaxis={"title": "ms", "type": "log"}),
    }
    return [failure, latency]


def _human(width: timedelta) -> str:
    seconds = int(width.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def _latency_histogram(ds: Dataset) -> dict[str, Any]:
    rows = ds.query(
        """
        SELECT floor(log10(greatest(latency_ms, 0.1)) * 10) / 10 AS b, status, count(*)
        FROM packets WHERE latency_ms IS NOT NULL GROUP BY ALL ORDER BY b
        """
    )
    if rows:
        lo = min(float(r[0]) for r in rows)
        hi = max(float(r[0]) for r in rows)
        bins = [round(lo + i / 10, 1) for i in range(round((hi - lo) * 10) + 1)]
    else:
        bins = []
    labels = [fmt_ms(10**b) for b in bins]
    data = []
    for status, color in (("SUCCESS", _GREEN), ("FAILURE", _RED), ("UNKNOWN", _GREY)):
        counts = {round(float(r[0]), 1): int(r[2]) for r in rows if r[1] == status}
        if counts:
            data.append(
                {
                    "type": "bar",
                    "name": status.lower(),
                    "x": labels,
                    "y": [counts.get(b, 0) for b in bins],
                    "marker": {"color": color},
                    "hovertemplate": "from %{x}: %{y} requests<extra>%{fullData.name}</extra>",
                }
            )
    return {
        "id": "latency-histogram",
        "data": data,
        "layout": _layout(
            "Latency distribution (log-spaced bins)",
            barmode="stack",
            bargap=0.05,
            xaxis={"title": "latency", "type": "category", "nticks": 12},
            yaxis={"title": "requests"},
        ),
    }


def _cost_figure(report: AnalysisReport) -> dict[str, Any]:
    rows = report.performance.cost_by_model
    return {
        "id": "cost-by-model",
        "data": [
            {
                "type": "bar",
                "x": [r.key or "unknown" for r in rows],
                "y": [r.cost_usd for r in rows],
                "marker": {"color": _BLUE},
                "text": [fmt_usd(r.cost_usd) for r in rows],
                "textposition": "auto",
                "hovertemplate": "%{x}: $%{y:.4f}<extra></extra>",
            }
        ],
        "layout": _layout("Cost by model", yaxis={"title": "USD"}),
    }


def _variant_figure(report: AnalysisReport) -> dict[str, Any] | None:
    rows = [r for r in report.overview.by_variant if r.key is not None]
    if not rows:
        return None
    names = [r.key for r in rows]
    return {
        "id": "variants",
        "data": [
            {
                "type": "bar",
                "x": names,
                "y": [r.failure_rate for r in rows],
                "name": "failure rate",
                "marker": {"color": _RED},
                "xaxis": "x",
                "yaxis": "y",
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        (r.failure_rate_ci95 or [0, 0])[1] - (r.failure_rate or 0) for r in rows
                    ],
                    "arrayminus": [
                        (r.failure_rate or 0) - (r.failure_rate_ci95 or [0, 0])[0] for r in rows
                    ],
                },
            },
            {
                "type": "bar",
                "x": names,
                "y": [r.latency_ms.p50 for r in rows],
                "name": "latency p50 (ms)",
                "marker": {"color": _BLUE},
                "xaxis": "x2",
                "yaxis": "y2",
            },
            {
                "type": "bar",
                "x": names,
                "y": [r.cost_per_request_usd for r in rows],
                "name": "cost per request (USD)",
                "marker": {"color": "#9467bd"},
                "xaxis": "x3",
                "yaxis": "y3",
            },
        ],
        "layout": _layout(
            "A/B variants",
            grid={"rows": 1, "columns": 3, "pattern": "independent"},
            yaxis={"title": "failure rate", "tickformat": ".1%"},
            yaxis2={"title": "p50 ms"},
            yaxis3={"title": "USD / request"},
        ),
    }


def _ranking_figure(report: AnalysisReport) -> dict[str, Any] | None:
    findings = report.ranking.findings
    if not findings:
        return None
    labels = [f"{f.rank}. {f.label}" for f in findings]
    return {
        "id": "ranking",
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": labels,
                "x": [f.lift for f in findings],
                "marker": {"color": _RED},
                "text": [
                    f"{f.lift:.1f}x · {fmt_pct(f.share_of_failures)} of failures" for f in findings
                ],
                "textposition": "auto",
                "hovertemplate": "%{y}<br>lift %{x:.2f}<extra></extra>",
            }
        ],
        "layout": _layout(
            "Likely root causes (lift of failure rate)",
            height=max(220, 60 + 45 * len(findings)),
            margin={"l": 320, "r": 30, "t": 45, "b": 40},
            yaxis={"autorange": "reversed"},
            xaxis={"title": "lift"},
        ),
    }


def _waterfall(packet: dict[str, Any]) -> dict[str, Any]:
    rows = step_rows(packet)
    labels: list[str] = []
    for index, row in enumerate(rows):
        step = row["step"]
        mark = "✗ " if row["failed"] else ""
        labels.append(f"{index + 1:>2} {'· ' * row['depth']}{mark}{step.get('name') or '?'}")
    hover = []
    for row in rows:
        step = row["step"]
        text = f"{step.get('kind')} · {fmt_ms(row['duration_ms'])}"
        error = step.get("error")
        if isinstance(error, dict):
            text += f"<br>{html.escape(str(error.get('type')))}: " + html.escape(
                str(error.get("message"))[:160]
            )
        hover.append(text)
    colors = ["#8b0000" if r["origin"] else (_RED if r["failed"] else _GREEN) for r in rows]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": labels,
                "x": [max(r["duration_ms"] or 0.0, 0.01) for r in rows],
                "base": [r["offset_ms"] or 0.0 for r in rows],
                "marker": {"color": colors},
                "hovertext": hover,
                "hovertemplate": "%{y}<br>%{hovertext}<extra></extra>",
            }
        ],
        "layout": _layout(
            "Step waterfall",
            height=max(220, 70 + 28 * len(rows)),
            margin={"l": 260, "r": 30, "t": 45, "b": 40},
            xaxis={"title": "ms since request start"},
            yaxis={"autorange": "reversed", "type": "category"},
            showlegend=False,
        ),
    }


def build_figures(
    ds: Dataset, report: AnalysisReport, *, waterfalls: int = _MAX_WATERFALLS
) -> dict[str, Any]:
    """Every chart of the report as plotly JSON, plus waterfalls of failing examples."""
    figures: list[dict[str, Any]] = []
    figures += _time_figures(ds)
    figures.append(_latency_histogram(ds))
    figures.append(_cost_figure(report))
    for optional in (_variant_figure(report), _ranking_figure(report)):
        if optional is not None:
            figures.append(optional)
    examples: list[tuple[str, str]] = []
    for group in report.failures.groups:
        for rid in group.example_request_ids[:1]:
            examples.append((rid, f"{group.error_type or 'Error'}: {group.pattern}"))
        if len(examples) >= waterfalls:
            break
    packets = find_packets(ds.sources, [rid for rid, _ in examples]) if examples else {}
    selectable = [
        {"request_id": rid, "label": f"{label[:90]} — {rid}", "figure": _waterfall(packets[rid])}
        for rid, label in examples
        if rid in packets
    ]
    return {"figures": figures, "waterfalls": selectable}


def _kpis(report: AnalysisReport) -> str:
    t = report.overview.totals
    cards = [
        ("requests", f"{t.requests:,}"),
        ("failure rate", fmt_pct(t.failure_rate, 2)),
        (
            "latency p50 / p90 / p99",
            f"{fmt_ms(t.latency_ms.p50)} / {fmt_ms(t.latency_ms.p90)} / {fmt_ms(t.latency_ms.p99)}",
        ),
        ("time to first token p50", fmt_ms(t.ttft_ms.p50)),
        ("cost", fmt_usd(t.cost_usd)),
        ("cost per request", fmt_usd(t.cost_per_request_usd)),
    ]
    return "".join(
        f'<div class="kpi"><div class="v">{html.escape(v)}</div>'
        f'<div class="k">{html.escape(k)}</div></div>'
        for k, v in cards
    )


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"n" if i in numeric else ""}">{html.escape(c)}</td>'
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _tables(report: AnalysisReport) -> dict[str, str]:
    rk = report.ranking
    ranking = (
        _table(
            [
                "#",
                "attribute",
                "requests",
                "failure rate",
                "elsewhere",
                "lift",
                "of failures",
                "q",
                "explains also",
            ],
            [
                [
                    str(f.rank),
                    f.label,
                    f"{f.requests:,}",
                    fmt_pct(f.failure_rate),
                    fmt_pct(f.failure_rate_elsewhere),
                    f"{f.lift:.2f}x",
                    fmt_pct(f.share_of_failures),
                    f"{f.q_value:.2g}",
                    "; ".join(r.label for r in f.related[:3]),
                ]
                for f in rk.findings
            ],
            {2, 3, 4, 5, 6, 7},
        )
        if rk.findings
        else (
            "<p>No attribute is significantly over-represented among failures "
            f"({rk.hypotheses_tested} hypotheses tested).</p>"
        )
    )
    errors = _table(
        ["count", "share", "error", "where", "first seen", "last seen", "example request"],
        [
            [
                f"{g.count:,}",
                fmt_pct(g.share_of_failures),
                f"{g.error_type or 'Error'}: {g.pattern}",
                ", ".join(f"{loc.step_kind}:{loc.step_name}" for loc in g.locations[:2]),
                (g.first_seen or "-")[:19],
                (g.last_seen or "-")[:19],
                g.example_request_ids[0] if g.example_request_ids else "-",
            ]
            for g in report.failures.groups
        ],
        {0, 1},
    )
    steps = _table(
        ["kind", "name", "calls", "failures", "share of time", "mean", "p50", "p95"],
        [
            [
                s.kind or "?",
                s.name or "?",
                f"{s.calls:,}",
                f"{s.failures:,}",
                fmt_pct(s.share_of_latency),
                fmt_ms(s.mean_ms),
                fmt_ms(s.p50_ms),
                fmt_ms(s.p95_ms),
            ]
            for s in report.performance.steps
        ],
        {2, 3, 4, 5, 6, 7},
    )
    tools = _table(
        ["tool", "calls", "failures", "error rate", "p95", "errors"],
        [
            [
                t.tool,
                f"{t.calls:,}",
                f"{t.failures:,}",
                fmt_pct(t.error_rate),
                fmt_ms(t.p95_ms),
                ", ".join(t.top_errors),
            ]
            for t in report.performance.tools
        ],
        {1, 2, 3, 4},
    )
    retrievals = _table(
        ["retriever", "calls", "empty", "empty rate", "low score", "mean top score"],
        [
            [
                r.retriever,
                f"{r.calls:,}",
                f"{r.empty:,}",
                fmt_pct(r.empty_rate),
                f"{r.low_score:,}",
                "-" if r.mean_top_score is None else f"{r.mean_top_score:.3f}",
            ]
            for r in report.performance.retrievals
        ],
        {1, 2, 3, 4, 5},
    )
    variants = (
        _table(
            [
                "variant",
                "vs",
                "failure rate diff",
                "p (z-test)",
                "p50 latency diff",
                "P(slower)",
                "p (Mann-Whitney)",
            ],
            [
                [
                    c.variant,
                    c.baseline,
                    "-" if c.failure_rate_diff is None else f"{c.failure_rate_diff * 100:+.2f} pp",
                    "-" if c.failure_rate_p_value is None else f"{c.failure_rate_p_value:.2g}",
                    "-" if c.latency_p50_diff_ms is None else f"{c.latency_p50_diff_ms:+.0f} ms",
                    fmt_pct(c.latency_prob_slower),
                    "-" if c.latency_p_value is None else f"{c.latency_p_value:.2g}",
                ]
                for c in report.overview.variant_comparisons
            ],
            {2, 3, 4, 5, 6},
        )
        if report.overview.variant_comparisons
        else ""
    )
    return {
        "ranking": ranking,
        "errors": errors,
        "steps": steps,
        "tools": tools,
        "retrievals": retrievals,
        "variants": variants,
    }


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
background:#f3f4f6}
header{background:#1f2937;color:#fff;padding:16px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#cbd5e1;font-size:13px}
main{padding:18px 28px;max-width:1400px}
section{background:#fff;border-radius:8px;padding:14px 18px;margin:0 0 16px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:16px;margin:0 0 10px}
.kpis{display:flex;flex-wrap:wrap;gap:12px}.kpi{background:#fff;border-radius:8px;
padding:10px 16px;min-width:150px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.kpi .v{font-size:20px;font-weight:600}.kpi .k{font-size:12px;color:#666}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media (max-width:1000px){.grid{grid-template-columns:1fr}}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f9fafb}td.n{text-align:right;font-variant-numeric:tabular-nums}
.warn{color:#92400e}select{font-size:13px;max-width:100%;margin-bottom:8px}
"""

_SCRIPT = """
(function () {
  var status = document.getElementById('render-status');
  var errors = [];
  window.addEventListener('error', function (e) {
    errors.push(String(e.message));
    status.setAttribute('data-errors', errors.join(' | '));
  });
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var config = {responsive: true, displaylogo: false};
  var jobs = data.figures.map(function (fig) {
    return Plotly.newPlot(fig.id, fig.data, fig.layout, config);
  });
  var select = document.getElementById('waterfall-select');
  if (data.waterfalls.length) {
    data.waterfalls.forEach(function (w, i) {
      var option = document.createElement('option');
      option.value = String(i);
      option.textContent = w.label;
      select.appendChild(option);
    });
    var draw = function () {
      var w = data.waterfalls[Number(select.value)];
      return Plotly.react('waterfall', w.figure.data, w.figure.layout, config);
    };
    select.addEventListener('change', draw);
    jobs.push(draw());
  } else {
    select.style.display = 'none';
    document.getElementById('waterfall').textContent = 'No failing request to show.';
  }
  Promise.all(jobs).then(function () {
    status.setAttribute('data-charts', String(jobs.length));
    status.setAttribute('data-errors', errors.join(' | '));
    status.textContent = 'rendered';
  }, function (err) {
    errors.push(String(err));
    status.setAttribute('data-errors', errors.join(' | '));
  });
})();
"""


def render_html(report: AnalysisReport, figures: dict[str, Any], *, js: str | None = None) -> str:
    """The complete HTML page."""
    bundle = plotly_js() if js is None else js
    payload = json.dumps(figures, separators=(",", ":"), allow_nan=False, default=str)
    payload = payload.replace("</", "<\\/")
    ov = report.overview
    inp = report.input
    subtitle = (
        f"{inp.packets:,} packets · {html.escape(ov.first_request or '-')} → "
        f"{html.escape(ov.last_request or '-')}"
    )
    if report.filters:
        subtitle += " · filters: " + html.escape(
            ", ".join(f"{k}={v}" for k, v in report.filters.items())
        )
    notes = []
    if inp.malformed_lines:
        notes.append(f"{inp.malformed_lines:,} malformed lines skipped")
    if inp.duplicates:
        notes.append(f"{inp.duplicates:,} duplicate packets dropped")
    notes += [f"{p.path}: {p.problem}" for p in inp.problems[:10]]
    note_html = "".join(f'<p class="warn">{html.escape(n)}</p>' for n in notes)
    tables = _tables(report)
    fig_ids = {f["id"] for f in figures["figures"]}

    def chart(fig_id: str) -> str:
        return f'<div id="{fig_id}"></div>' if fig_id in fig_ids else ""

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aitel report</title><style>{_CSS}</style>
<script>{bundle}</script>
</head><body>
<header><h1>aitel report</h1><p>{subtitle}</p></header>
<main>
<div id="render-status" data-charts="0" data-errors="" hidden></div>
{note_html}
<section><div class="kpis">{_kpis(report)}</div></section>
<div class="grid">
<section>{chart("failure-rate")}</section>
<section>{chart("latency-time")}</section>
<section>{chart("latency-histogram")}</section>
<section>{chart("cost-by-model")}</section>
</div>
<section><h2>Root causes</h2>{chart("ranking")}{tables["ranking"]}</section>
<section><h2>A/B variants</h2>{chart("variants")}{tables["variants"]}</section>
<section><h2>Top errors</h2>{tables["errors"]}</section>
<section><h2>Failing request</h2>
<select id="waterfall-select" aria-label="failing request"></select>
<div id="waterfall"></div></section>
<div class="grid">
<section><h2>Steps by time</h2>{tables["steps"]}</section>
<section><h2>Tools</h2>{tables["tools"]}<h2 style="margin-top:14px">Retrievals</h2>
{tables["retrievals"]}</section>
</div>
</main>
<script type="application/json" id="report-data">{payload}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


def _clean(value: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) with null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_html_report(ds: Dataset, report: AnalysisReport, out: str | Path) -> Path:
    """Write the HTML report for an analysed dataset; returns the path written."""
    js = plotly_js()
    figures = _clean(build_figures(ds, report))
    page = render_html(report, figures, js=js)
    target = Path(out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {target}: {exc}") from exc
    return target
