"""Command line: ``aitel analyze``, ``aitel report``, ``aitel show`` and ``aitel generate``.

:func:`register` adds the sub-commands to the main ``aitel`` parser; each
sets ``func`` to a handler that returns the exit code. :func:`main` runs them
on their own (``python -m aitel.analysis.cli``).

Exit codes:

* ``0`` done;
* ``1`` the work failed (packet not found, report not writable);
* ``2`` bad arguments (unknown path, unreadable filter value);
* ``3`` no packets to analyse (empty inputs, or everything filtered out).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from rich.console import Console

    from aitel.analysis.loading import LoadStats

from aitel._cli_types import at_least, positive_number, probability
from aitel.analysis.errors import (
    AnalysisError,
    InvalidFilterError,
    NoInputError,
    PacketNotFoundError,
)

__all__ = ["EXIT_FAILED", "EXIT_NO_DATA", "EXIT_OK", "EXIT_USAGE", "main", "register"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_DATA = 3


def _console() -> Console:
    """A terminal's own width; 140 columns when piped or logged (80 would wrap the tables)."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() or os.environ.get("COLUMNS") else Console(width=140)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (repeat a flag to allow several values)")
    group.add_argument("--since", help="from this time: ISO-8601 or an age like 24h, 7d, 30m")
    group.add_argument("--until", help="before this time: ISO-8601 or an age like 1h")
    group.add_argument(
        "--status",
        action="append",
        default=[],
        choices=["success", "failure"],
        help="only requests with this outcome",
    )
    group.add_argument("--model", action="append", default=[], help="model name")
    group.add_argument("--variant", action="append", default=[], help="A/B variant")
    group.add_argument("--app-version", action="append", default=[], help="application version")
    group.add_argument(
        "--environment", "--env", action="append", default=[], help="deployment environment"
    )
    group.add_argument("--tag", action="append", default=[], help="packets carrying this tag")
    group.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pipeline metadata key equals value",
    )


def _add_analysis_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("analysis")
    group.add_argument(
        "--alpha", type=probability, default=0.05, help="significance level (default 0.05)"
    )
    group.add_argument(
        "--min-failures",
        type=at_least(1),
        default=None,
        help="failures a root-cause hypothesis needs (default: 1%% of failures)",
    )
    group.add_argument(
        "--min-lift",
        type=positive_number,
        default=1.25,
        help="smallest failure-rate ratio reported as a cause (default 1.25)",
    )
    group.add_argument(
        "--top", type=at_least(0), default=10, help="root causes to list (default 10)"
    )
    group.add_argument(
        "--top-errors", type=at_least(0), default=20, help="error groups to list (default 20)"
    )
    group.add_argument(
        "--threads", type=at_least(1), default=None, help="worker threads (default: all cores)"
    )
    group.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="parse every file afresh; do not read or write the fact cache "
        "(default: $AITEL_ANALYSIS_CACHE or ~/.cache/aitel/analysis)",
    )


def _paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="JSONL packet files (.jsonl, .jsonl.gz), directories, globs or a SQLite store",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``analyze``, ``report``, ``show`` and ``generate`` to the ``aitel`` command."""
    analyze = subparsers.add_parser(
        "analyze",
        help="root-cause analysis of packet files",
        description="Failure rates, latency, cost, top errors, likely root causes and slow "
        "steps of the packets in the given files.",
    )
    _paths(analyze)
    analyze.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON (schema: analysis-report.v1.json)",
    )
    analyze.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="write the JSON report to this file instead of stdout",
    )
    _add_filters(analyze)
    _add_analysis_options(analyze)
    analyze.set_defaults(func=run_analyze)

    report = subparsers.add_parser(
        "report",
        help="self-contained HTML report with charts",
        description="Write one HTML file (no network needed to open it) with charts of "
        "failure rate, latency, cost, variants, root causes and failing requests.",
    )
    _paths(report)
    report.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("aitel-report.html"),
        help="HTML file to write (default aitel-report.html)",
    )
    _add_filters(report)
    _add_analysis_options(report)
    report.set_defaults(func=run_report)

    show = subparsers.add_parser(
        "show",
        help="show one request as a step tree and waterfall",
        description="Find the packet of a request and print its steps with timings, tokens, "
        "cost, tool calls and retrieved documents; the failing step is highlighted.",
    )
    show.add_argument("request_id", metavar="REQUEST_ID", help="request id (or packet id)")
    _paths(show)
    show.add_argument("--json", action="store_true", help="print the packet's JSON")
    show.set_defaults(func=run_show)

    generate = subparsers.add_parser(
        "generate",
        help="write synthetic packet files (for demos and tests)",
        description="Generate realistic packets of a retrieval-augmented assistant, with three "
        "planted failure causes unless --no-causes is given.",
    )
    generate.add_argument("--count", type=at_least(0), required=True, help="number of packets")
    generate.add_argument("--out", type=Path, required=True, help="output directory")
    generate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    generate.add_argument(
        "--no-causes",
        action="store_true",
        help="only background failures, independent of every attribute",
    )
    generate.add_argument(
        "--per-file", type=at_least(1), default=100_000, help="packets per file (default 100000)"
    )
    generate.add_argument("--gzip", action="store_true", help="write .jsonl.gz files")
    generate.add_argument("--workers", type=at_least(1), default=1, help="parallel processes")
    generate.set_defaults(func=run_generate)


def _error(command: str, message: str) -> None:
    sys.stderr.write(f"aitel {command}: error: {message}\n")


def _filters(args: argparse.Namespace) -> Any:
    from aitel.analysis.filters import Filters

    return Filters.build(
        since=args.since,
        until=args.until,
        statuses=args.status,
        models=args.model,
        variants=args.variant,
        app_versions=args.app_version,
        environments=args.environment,
        tags=args.tag,
        metadata=args.meta,
    )


def _options(args: argparse.Namespace) -> Any:
    from aitel.analysis.analyze import AnalysisOptions

    return AnalysisOptions(
        alpha=args.alpha,
        min_failures=args.min_failures,
        min_lift=args.min_lift,
        top_findings=args.top,
        top_errors=args.top_errors,
    )


def _guarded(command: str, args: argparse.Namespace, work: Any) -> int:
    try:
        return int(work(args))
    except (NoInputError, InvalidFilterError) as exc:
        _error(command, str(exc))
        return EXIT_USAGE
    except PacketNotFoundError as exc:
        _error(command, str(exc))
        return EXIT_FAILED
    except AnalysisError as exc:
        _error(command, str(exc))
        return EXIT_FAILED


def _analyze(args: argparse.Namespace) -> int:

    from aitel.analysis.analyze import analyze
    from aitel.analysis.loading import load
    from aitel.analysis.render import print_report

    with load(args.paths, _filters(args), threads=args.threads, cache=args.cache) as ds:
        if ds.stats.packets == 0:
            _error("analyze", _no_data_message(ds.stats))
            return EXIT_NO_DATA
        report = analyze(ds, _options(args))
    if args.json or args.output:
        text = report.model_dump_json(indent=2) + "\n"
        if args.output:
            try:
                args.output.write_text(text, encoding="utf-8")
            except OSError as exc:
                _error("analyze", f"cannot write {args.output}: {exc}")
                return EXIT_FAILED
        else:
            sys.stdout.write(text)
        return EXIT_OK
    print_report(report, _console())
    return EXIT_OK


def _no_data_message(stats: LoadStats) -> str:
    read = stats.packets_read
    if read:
        return f"none of the {read:,} packets read matches the filters"
    message = "no packets found in the inputs"
    problems = [f"{p.path}: {p.problem}" for p in stats.problems[:3]]
    return f"{message} ({'; '.join(problems)})" if problems else message


def _report(args: argparse.Namespace) -> int:
    from aitel.analysis.analyze import analyze
    from aitel.analysis.html_report import write_html_report
    from aitel.analysis.loading import load

    with load(args.paths, _filters(args), threads=args.threads, cache=args.cache) as ds:
        if ds.stats.packets == 0:
            _error("report", _no_data_message(ds.stats))
            return EXIT_NO_DATA
        report = analyze(ds, _options(args))
        path = write_html_report(ds, report, args.output)
    sys.stderr.write(f"wrote {path} ({report.input.packets:,} packets)\n")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:

    from aitel.analysis.show import find_packet, print_packet

    packet = find_packet(args.paths, args.request_id)
    if args.json:
        sys.stdout.write(orjson.dumps(packet, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_packet(packet, _console())
    return EXIT_OK


def _generate(args: argparse.Namespace) -> int:
    from aitel.analysis.synthetic import SyntheticOptions, write_dataset

    try:
        files = write_dataset(
            args.out,
            args.count,
            seed=args.seed,
            options=SyntheticOptions(causes=not args.no_causes),
            per_file=args.per_file,
            compress=args.gzip,
            workers=max(1, args.workers),
        )
    except OSError as exc:
        _error("generate", f"cannot write to {args.out}: {exc}")
        return EXIT_FAILED
    sys.stderr.write(f"wrote {args.count:,} packets to {len(files)} file(s) in {args.out}\n")
    return EXIT_OK


def run_analyze(args: argparse.Namespace) -> int:
    return _guarded("analyze", args, _analyze)


def run_report(args: argparse.Namespace) -> int:
    return _guarded("report", args, _report)


def run_show(args: argparse.Namespace) -> int:
    return _guarded("show", args, _show)


def run_generate(args: argparse.Namespace) -> int:
    return _guarded("generate", args, _generate)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one of the analysis sub-commands on its own."""
    parser = argparse.ArgumentParser(prog="aitel")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
