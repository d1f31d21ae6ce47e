"""Benchmark: full root-cause analysis of many packets vs. a naive pure-Python script.

Generates synthetic packets (realistic size: a retrieval-augmented assistant
with prompts, retrieved documents, tool calls) once into a data directory,
then runs, each in a fresh process so peak memory is measured per run:

* ``aitel-cold``: load into DuckDB and run every report (overview with
  variant tests, failures, root-cause ranking, performance), starting from
  an empty fact cache: every file is parsed (and its facts are cached);
* ``aitel-warm``: the same analysis again on the unchanged files, as the
  next ``aitel analyze`` would run: the facts come from the cache;
* ``naive``: the classic script: ``json.loads`` line by line, a ``Counter``
  of error messages and the average prompt length.

Usage::

    python benchmarks/bench_analysis.py --count 1000000 --repeat 3

Prints a table of medians (wall time, CPU time, peak RSS) and writes the raw
numbers as JSON next to the data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

SEED = 7


def _usage() -> dict[str, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": r.ru_utime + r.ru_stime, "maxrss_mb": r.ru_maxrss / 1024}


def run_aitel(data: Path, cache: Path) -> dict[str, float]:
    from aitel.analysis.analyze import analyze
    from aitel.analysis.loading import load

    start = time.perf_counter()
    with load([data], cache=cache) as ds:
        loaded = time.perf_counter()
        report = analyze(ds)
    end = time.perf_counter()
    return {
        "wall_s": end - start,
        "load_s": loaded - start,
        "reports_s": end - loaded,
        "packets": report.input.packets,
        "cached_files": ds.stats.cached_files,
        "findings": len(report.ranking.findings),
        **_usage(),
    }


def run_naive(data: Path) -> dict[str, float]:
    start = time.perf_counter()
    errors: Counter[str] = Counter()
    prompt_chars = 0
    prompts = 0
    packets = 0
    for path in sorted(data.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    packet = json.loads(line)
                except json.JSONDecodeError:
                    continue
                packets += 1
                if packet.get("status") == "FAILURE":
                    errors[packet.get("error_message") or ""] += 1
                for step in packet.get("steps") or []:
                    llm = step.get("llm")
                    if llm and llm.get("messages"):
                        prompt_chars += sum(len(m.get("content") or "") for m in llm["messages"])
                        prompts += 1
                        break
    end = time.perf_counter()
    return {
        "wall_s": end - start,
        "packets": packets,
        "distinct_errors": len(errors),
        "avg_prompt_chars": prompt_chars / max(prompts, 1),
        **_usage(),
    }


def _ensure_data(data: Path, count: int, per_file: int, workers: int) -> None:
    marker = data / "GENERATED.json"
    wanted = {"count": count, "seed": SEED, "per_file": per_file}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    from aitel.analysis.synthetic import write_dataset

    for old in data.glob("*.jsonl*"):
        old.unlink()
    print(f"generating {count:,} packets into {data} ...", flush=True)
    start = time.perf_counter()
    write_dataset(data, count, seed=SEED, per_file=per_file, workers=workers)
    marker.write_text(json.dumps(wanted))
    print(f"generated in {time.perf_counter() - start:.0f}s", flush=True)


def _child(kind: str, data: Path, cache: Path) -> dict[str, float]:
    """One run in a fresh interpreter; ``process_s`` includes start-up and imports."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--data", str(data), "--cache", str(cache)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-file", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--child", choices=["aitel", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.data or Path(f"/tmp/aitel-bench-{args.count}")

    if args.child:
        result = run_aitel(data, args.cache) if args.child == "aitel" else run_naive(data)
        print(json.dumps(result))
        return

    data.mkdir(parents=True, exist_ok=True)
    _ensure_data(data, args.count, args.per_file, args.workers)
    size = sum(p.stat().st_size for p in data.glob("*.jsonl"))
    kinds = ["aitel-cold", "aitel-warm"] + ([] if args.skip_naive else ["naive"])
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="aitel-bench-cache-") as cache:
            for kind in kinds:
                result = _child(kind.split("-")[0], data, Path(cache))
                runs[kind].append(result)
                print(
                    f"run {i + 1} {kind:10s} wall {result['wall_s']:6.2f}s"
                    f" (process {result['process_s']:6.2f}s)  cpu {result['cpu_s']:6.2f}s"
                    f"  peak RSS {result['maxrss_mb']:7.0f} MB",
                    flush=True,
                )

    print()
    print(
        f"data: {args.count:,} packets, {size / 1e9:.2f} GB "
        f"({size / max(args.count, 1) / 1000:.1f} KB per packet), {os.cpu_count()} cores"
    )
    print(
        f"{'':10s} {'wall (median)':>14s} {'process':>9s} {'cpu':>9s} {'peak RSS':>10s} "
        f"{'packets/s':>11s} {'MB/s':>7s}"
    )
    summary: dict[str, dict[str, float]] = {}
    for kind in kinds:
        wall = statistics.median(r["wall_s"] for r in runs[kind])
        process = statistics.median(r["process_s"] for r in runs[kind])
        cpu = statistics.median(r["cpu_s"] for r in runs[kind])
        rss = statistics.median(r["maxrss_mb"] for r in runs[kind])
        summary[kind] = {"wall_s": wall, "process_s": process, "cpu_s": cpu, "maxrss_mb": rss}
        print(
            f"{kind:10s} {wall:13.2f}s {process:8.2f}s {cpu:8.2f}s {rss:8.0f}MB "
            f"{args.count / wall:11,.0f} {size / 1e6 / wall:7.0f}"
        )
    for kind in ("aitel-cold", "aitel-warm"):
        load_s = statistics.median(r["load_s"] for r in runs[kind])
        reports_s = statistics.median(r["reports_s"] for r in runs[kind])
        print(f"{kind} split: load {load_s:.2f}s, reports {reports_s:.2f}s")
    (data / "RESULTS.json").write_text(
        json.dumps({"count": args.count, "bytes": size, "runs": runs, "median": summary}, indent=2)
    )


if __name__ == "__main__":
    main()
