"""``aitel`` on the command line. Thin: the library does the work and raises
its own errors; this module turns them into messages and exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from ._cli_types import at_least
from ._version import __version__
from .schema import json_schema
from .validate import validate_files

EXIT_OK = 0
EXIT_INVALID = 1  # invalid packets
EXIT_FAILED = 1  # the work failed (an output not writable)
EXIT_USAGE = 2


def _expand(patterns: Sequence[str]) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            paths.extend(sorted(p for p in path.rglob("*.jsonl*") if p.is_file()))
        elif any(ch in pattern for ch in "*?["):
            paths.extend(sorted(Path().glob(pattern)))
        else:
            paths.append(path)
    return paths


def _validate(args: argparse.Namespace) -> int:
    paths = _expand(args.paths)
    if not paths:
        print("aitel validate: no files matched", file=sys.stderr)
        return EXIT_USAGE
    report = validate_files(paths)
    for problem in report.problems[: args.max_problems]:
        print(f"{problem.path}:{problem.line}: {problem.reason}")
    hidden = len(report.problems) - args.max_problems
    if hidden > 0:
        print(f"... and {hidden} more problems")
    verdict = "ok" if report.ok else "INVALID"
    print(
        f"{verdict}: {report.valid}/{report.packets} packets valid in {report.files} file(s)",
        file=sys.stderr if not report.ok else sys.stdout,
    )
    return EXIT_OK if report.ok else EXIT_INVALID


def _schema(args: argparse.Namespace) -> int:
    data = orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if args.output:
        try:
            Path(args.output).write_bytes(data)
        except OSError as exc:
            print(f"aitel schema: error: cannot write {args.output}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    else:
        sys.stdout.write(data.decode())
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    try:
        from langchain_aitel.demo import run_demo
    except ImportError as exc:
        print(
            f"aitel demo needs the LangChain integration ({exc}): pip install langchain-aitel",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return run_demo(
        requests=args.requests, directory=args.dir, seed=args.seed, analyze=not args.no_analysis
    )


def _missing(extra: str, command: str, error: ImportError) -> Any:
    def run(args: argparse.Namespace) -> int:
        print(
            f"aitel {command} needs extra packages ({error.name or error}): "
            f'pip install "aitel[{extra}]"',
            file=sys.stderr,
        )
        return EXIT_USAGE

    return run


def _register_optional(subparsers: Any) -> None:
    try:
        from .analysis.cli import register as register_analysis
    except ImportError as exc:
        for name in ("analyze", "report", "show"):
            sub = subparsers.add_parser(name, help=f"(needs aitel[analysis]) {name}")
            sub.add_argument("rest", nargs="*")
            sub.set_defaults(func=_missing("analysis", name, exc))
    else:
        register_analysis(subparsers)
    try:
        from .collector.cli import register as register_collector
    except ImportError as exc:
        sub = subparsers.add_parser("collect", help="(needs aitel[collector]) run a collector")
        sub.add_argument("rest", nargs="*")
        sub.set_defaults(func=_missing("collector", "collect", exc))
    else:
        register_collector(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aitel",
        description="Context packets for LLM applications: validate, analyse, collect.",
    )
    parser.add_argument("--version", action="version", version=f"aitel {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = subparsers.add_parser("validate", help="check JSONL packet files against the schema")
    validate.add_argument("paths", nargs="+", help="files, directories or globs (gzip ok)")
    validate.add_argument("--max-problems", type=at_least(0), default=50, help="problems to print")
    validate.set_defaults(func=_validate)

    schema = subparsers.add_parser("schema", help="print the context packet JSON Schema")
    schema.add_argument("-o", "--output", help="write to this file instead of stdout")
    schema.set_defaults(func=_schema)

    demo = subparsers.add_parser(
        "demo", help="run an offline RAG + agent pipeline, write packets, print an analysis"
    )
    demo.add_argument("--requests", type=at_least(1), default=60, help="how many requests to run")
    demo.add_argument("--dir", default=None, help="where packets go (default ./aitel-telemetry)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--no-analysis", action="store_true", help="skip the analysis at the end")
    demo.set_defaults(func=_demo)

    _register_optional(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
