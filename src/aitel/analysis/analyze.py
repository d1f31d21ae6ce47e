"""The full analysis: load once, run every report, return one :class:`AnalysisReport`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from aitel.analysis.failures import failures
from aitel.analysis.filters import Filters
from aitel.analysis.loading import Dataset, load
from aitel.analysis.model import AnalysisReport, InputProblem, InputSummary
from aitel.analysis.overview import overview
from aitel.analysis.performance import performance
from aitel.analysis.ranking import ranking

__all__ = ["AnalysisOptions", "analyze", "analyze_paths", "input_summary"]


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    """Knobs of the reports (the defaults suit most data sets)."""

    alpha: float = 0.05
    """Significance level (variant tests, root-cause ranking after FDR control)."""
    min_failures: int | None = None
    """Minimum failures for a root-cause hypothesis; default 1% of failures, at least 5."""
    min_lift: float = 1.25
    top_errors: int = 20
    top_findings: int = 10
    top_steps: int = 15
    low_score_threshold: float = 0.3


def input_summary(ds: Dataset) -> InputSummary:
    s = ds.stats
    return InputSummary(
        sources=[str(src.path) for src in ds.sources],
        files=s.files,
        bytes=s.bytes,
        packets_read=s.packets_read,
        packets=s.packets,
        duplicates=s.duplicates,
        filtered_out=s.filtered_out,
        malformed_lines=s.malformed_lines,
        unrecognised=s.unrecognised,
        problems=[InputProblem(path=p.path, problem=p.problem) for p in s.problems],
    )


def analyze(ds: Dataset, options: AnalysisOptions | None = None) -> AnalysisReport:
    """Every report over a loaded dataset."""
    opt = options or AnalysisOptions()
    return AnalysisReport(
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        filters=ds.filters.describe(),
        input=input_summary(ds),
        overview=overview(ds, alpha=opt.alpha),
        failures=failures(ds, top=opt.top_errors),
        ranking=ranking(
            ds,
            alpha=opt.alpha,
            min_failures=opt.min_failures,
            min_lift=opt.min_lift,
            top=opt.top_findings,
        ),
        performance=performance(ds, top=opt.top_steps, low_score_threshold=opt.low_score_threshold),
    )


def analyze_paths(
    inputs: Iterable[str | Path],
    filters: Filters | None = None,
    options: AnalysisOptions | None = None,
    *,
    threads: int | None = None,
) -> AnalysisReport:
    """Load the inputs, analyse them and free the data again."""
    with load(inputs, filters, threads=threads) as ds:
        return analyze(ds, options)
