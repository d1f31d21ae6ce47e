"""aitel benchmarks: overhead next to the peers, hot path, export throughput, memory.

    python benchmarks/run.py --quick                 # smoke run, a few minutes
    python benchmarks/run.py --json results.json     # the full run
    python benchmarks/run.py --list                  # what can run here

``scripts/bench.sh`` creates ``.venv-bench`` with the peers installed and
runs this script with the same arguments. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import configs as configs_module
from configs import CONFIGS, Env
from workloads import WORKLOADS

SUITES = ("overhead", "hotpath", "pipeline", "memory", "outage")
PACKAGES = (
    "aitel",
    "langchain-aitel",
    "llama-index-callbacks-aitel",
    "langchain-core",
    "llama-index-core",
    "langfuse",
    "langsmith",
    "openinference-instrumentation-langchain",
    "openinference-instrumentation-llama-index",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "orjson",
    "httpx",
)
MEMORY_CONFIGS = "baseline,noop,aitel-jsonl,langfuse,langsmith,openinference"
OUTAGE_CONFIGS = (
    "baseline,aitel-http,aitel-http+spool,aitel-otlp,aitel-otlp+spool,"
    "langfuse,langsmith,openinference"
)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="aitel's per-request overhead next to Langfuse, LangSmith and OpenInference, "
        "its hot path, export throughput and memory. Everything runs offline on this machine.",
    )
    p.add_argument("--quick", action="store_true", help="a fast smoke run (small counts)")
    p.add_argument(
        "--suites",
        type=_csv,
        default=list(SUITES),
        help=f"which parts to run (default: {','.join(SUITES)})",
    )
    p.add_argument(
        "--workloads",
        type=_csv,
        default=list(WORKLOADS),
        help=f"workloads (default: {','.join(WORKLOADS)})",
    )
    p.add_argument(
        "--configs",
        type=_csv,
        default=list(CONFIGS),
        help=f"configurations (default: {','.join(CONFIGS)}; baseline is always run)",
    )
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 2)")
    p.add_argument(
        "--invocations", type=int, help="timed requests per block (default 200; quick 30)"
    )
    p.add_argument("--warmup", type=int, help="untimed requests per block (default 20; quick 5)")
    p.add_argument("--hotpath-requests", type=int, help="requests per workload (default 500)")
    p.add_argument(
        "--pipeline-count",
        type=int,
        help="2 KB packets per throughput run (default 20000; quick 2000)",
    )
    p.add_argument(
        "--pipeline-count-large",
        type=int,
        help="50 KB packets per throughput run (default 2000; quick 200)",
    )
    p.add_argument(
        "--burst-queue",
        type=int,
        help="queue size for the burst test; 10x as many are sent (default 2048)",
    )
    p.add_argument(
        "--memory-counts",
        type=lambda s: [int(x) for x in _csv(s)],
        help="requests at which RSS is read (default 20000,100000; quick 1000,3000)",
    )
    p.add_argument("--memory-workload", default="rag", help="workload for memory (default rag)")
    p.add_argument(
        "--memory-configs",
        type=_csv,
        default=_csv(MEMORY_CONFIGS),
        help=f"configurations for memory (default {MEMORY_CONFIGS})",
    )
    p.add_argument(
        "--outage-requests",
        type=int,
        help="requests while every destination is down (default 20000; quick 1000)",
    )
    p.add_argument(
        "--outage-configs",
        type=_csv,
        default=_csv(OUTAGE_CONFIGS),
        help=f"configurations for the outage (default {OUTAGE_CONFIGS}; +spool: with a spool)",
    )
    p.add_argument("--json", type=Path, help="also write every number to this JSON file")
    p.add_argument(
        "--log",
        type=Path,
        help="where the libraries' stderr goes (default: a file in the temp dir)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (JSONL files, logs)")
    p.add_argument("--list", action="store_true", help="show what can run here and exit")
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {
        "rounds": 2 if quick else 5,
        "invocations": 30 if quick else 200,
        "warmup": 5 if quick else 20,
        "hotpath_requests": 50 if quick else 500,
        "pipeline_count": 2000 if quick else 20000,
        "pipeline_count_large": 200 if quick else 2000,
        "burst_queue": 1024 if quick else 2048,
        "memory_counts": [1000, 3000] if quick else [20000, 100000],
        "outage_requests": 1000 if quick else 20000,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for name in args.suites:
        if name not in SUITES:
            p.error(f"unknown suite {name!r}; choose from {', '.join(SUITES)}")
    for name in args.workloads:
        if name not in WORKLOADS:
            p.error(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    outage = [n.removesuffix("+spool") for n in args.outage_configs]
    for name in [*args.configs, *args.memory_configs, *outage]:
        if name not in CONFIGS:
            p.error(f"unknown configuration {name!r}; choose from {', '.join(CONFIGS)}")
    if "baseline" not in args.configs:
        args.configs.insert(0, "baseline")
    return args


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        info["load_average"] = list(os.getloadavg())
    return info


class Progress:
    """Progress lines go to the terminal even while stderr is captured."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.t0 = time.monotonic()

    def __call__(self, message: str) -> None:
        self.stream.write(f"[{time.monotonic() - self.t0:7.1f}s] {message}\n")
        self.stream.flush()


@contextlib.contextmanager
def capture_stderr(path: Path) -> Iterator[TextIO]:
    """Send fd 2 (warnings, library logs, child processes) to ``path``; yield the terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            terminal.close()


def list_available(env: Env) -> str:
    from report import table

    rows = []
    for w in WORKLOADS.values():
        cells = [w.name, w.missing() or "ok"]
        for c in CONFIGS.values():
            cells.append((configs_module.missing(c, w, env) and "n/a") or "ok")
        rows.append(cells)
    legend = "\n".join(f"  {c.name}: {c.title}" for c in CONFIGS.values())
    return table(["workload", "available", *CONFIGS], rows) + "\n\nconfigurations:\n" + legend


def summarize_stderr(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    if not lines:
        return ""
    counts: dict[str, int] = {}
    for line in lines:
        key = line.strip()[:140]
        if key:
            counts[key] = counts.get(key, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:5]
    body = "\n".join(f"  {n:>7,} x {text}" for text, n in top)
    return f"libraries wrote {len(lines):,} lines to stderr ({path}); most frequent:\n{body}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configs_module.clean_environment()
    tmp = Path(tempfile.mkdtemp(prefix="aitel-bench-"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = args.log or Path(tempfile.gettempdir()) / f"aitel-bench-{stamp}.log"
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": machine(),
        "versions": versions(),
    }
    if args.list:
        env = Env("http://127.0.0.1:0", None, None, tmp)
        from services import collector_available

        env.collector_missing = collector_available()
        if env.collector_missing is None:
            env.collector_url = "http://127.0.0.1:0/v1/packets"
        print(list_available(env))
        shutil.rmtree(tmp, ignore_errors=True)
        return 0

    from report import (
        hotpath_tables,
        memory_table,
        outage_table,
        overhead_tables,
        pipeline_tables,
    )
    from services import Services

    texts: list[str] = []

    def save() -> None:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1, default=str))

    with capture_stderr(log_path) as terminal:
        log = Progress(terminal)
        log(f"temp dir {tmp}; library output -> {log_path}")
        with Services(want_collector=True) as services:
            env = Env(
                sink_url=services.sink.url,
                collector_url=services.collector.url if services.collector else None,
                collector_missing=services.collector_missing,
                tmpdir=tmp,
            )
            if services.collector_missing:
                log(f"aitel collector: n/a ({services.collector_missing})")
            workloads = [WORKLOADS[n] for n in args.workloads]
            if "overhead" in args.suites:
                from bench_overhead import run_overhead

                chosen = [CONFIGS[n] for n in args.configs]
                results["overhead"] = run_overhead(
                    workloads,
                    chosen,
                    env,
                    services.sink,
                    rounds=args.rounds,
                    invocations=args.invocations,
                    warmup=args.warmup,
                    log=log,
                )
                texts.append(overhead_tables(results["overhead"]))
                save()
            if "hotpath" in args.suites:
                from bench_hotpath import run_hotpath

                results["hotpath"] = run_hotpath(workloads, args.hotpath_requests, log)
                texts.append(hotpath_tables(results["hotpath"]))
                save()
            if "pipeline" in args.suites:
                from bench_pipeline import run_pipeline

                results["pipeline"] = run_pipeline(
                    services,
                    count_small=args.pipeline_count,
                    count_large=args.pipeline_count_large,
                    burst_queue=args.burst_queue,
                    log=log,
                )
                texts.append(pipeline_tables(results["pipeline"]))
                save()
            if "memory" in args.suites:
                from bench_memory import run_memory

                results["memory"] = run_memory(
                    args.memory_configs,
                    args.memory_workload,
                    args.memory_counts,
                    warmup=50 if args.quick else 300,
                    sink_url=services.sink.url,
                    collector_url=env.collector_url,
                    stderr_path=log_path,
                    log=log,
                )
                texts.append(memory_table(results["memory"]))
                save()
            if "outage" in args.suites:
                from bench_outage import run_outage

                results["outage"] = run_outage(
                    args.outage_configs,
                    args.memory_workload,
                    args.outage_requests,
                    sample_every=max(1, args.outage_requests // 40),
                    warmup=50 if args.quick else 300,
                    stderr_path=log_path,
                    log=log,
                )
                texts.append(outage_table(results["outage"]))
                save()
        results["machine"]["load_average_end"] = machine().get("load_average")
        results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        save()
        log("done")

    header = (
        f"aitel benchmarks - {results['started']} - Python {results['machine']['python']}, "
        f"{results['machine']['cpus']} CPUs, load average at start "
        f"{_load(results['machine'].get('load_average'))}, at end "
        f"{_load(results['machine'].get('load_average_end'))}\n"
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v)
    )
    print(header + "\n\n" + "\n\n".join(texts))
    note = summarize_stderr(log_path)
    if note:
        print("\n" + note)
    if args.json:
        print(f"\nJSON: {args.json}")
    if args.keep:
        print(f"kept: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _load(values: Any) -> str:
    return "?" if not values else " ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
