"""Root-cause analysis of context packets.

Load packet files (JSONL, gzip, the collector's SQLite store) into DuckDB
once, then ask for reports::

    from aitel.analysis import load, analyze

    with load(["./aitel-telemetry/"]) as ds:
        report = analyze(ds)
    for finding in report.ranking.findings:
        print(finding.label, f"{finding.lift:.1f}x")

Each report is also available on its own (``overview.overview``,
``failures.failures``, ``ranking.ranking``, ``performance.performance`` in the
modules of those names); rendering lives in
:mod:`aitel.analysis.render` (terminal) and :mod:`aitel.analysis.html_report`
(HTML). Needs the ``analysis`` extra (duckdb, rich; plotly for HTML).
"""

from __future__ import annotations

from aitel.analysis.analyze import AnalysisOptions, analyze, analyze_paths
from aitel.analysis.errors import (
    AnalysisError,
    InvalidFilterError,
    NoInputError,
    PacketNotFoundError,
    ReportError,
)
from aitel.analysis.filters import Filters
from aitel.analysis.loading import Dataset, LoadStats, load
from aitel.analysis.model import AnalysisReport
from aitel.analysis.normalize import normalize_message
from aitel.analysis.show import find_packet, find_packets

__all__ = [
    # loading
    "Dataset",
    "Filters",
    "LoadStats",
    "load",
    # reports
    "AnalysisOptions",
    "AnalysisReport",
    "analyze",
    "analyze_paths",
    "normalize_message",
    # single packets
    "find_packet",
    "find_packets",
    # errors
    "AnalysisError",
    "InvalidFilterError",
    "NoInputError",
    "PacketNotFoundError",
    "ReportError",
]
