"""Memory: RSS growth after many requests through one configuration.

Each configuration runs in a fresh child process (``python
benchmarks/bench_memory.py --config NAME ...``), so one's garbage never
counts against another: warm up, flush, ``gc.collect()``, read RSS; run up to
each checkpoint (e.g. 20,000 and 100,000 requests), flush, collect, read RSS
again. Growth per request is ``(RSS - RSS after warm-up) / requests``: memory
a tracer keeps per request (an unpruned run map grows linearly).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def rss_bytes() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _sink_stats(sink_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sink_url}/_sink/stats", timeout=5) as r:
        data: dict[str, Any] = json.loads(r.read())
        return data


def child(args: argparse.Namespace) -> dict[str, Any]:
    from configs import CONFIGS, Env, clean_environment, missing
    from workloads import WORKLOADS, units_per_request

    clean_environment()
    workload = WORKLOADS[args.workload]
    config = CONFIGS[args.config]
    env = Env(
        sink_url=args.sink,
        collector_url=args.collector or None,
        collector_missing=None if args.collector else "no collector",
        tmpdir=Path(tempfile.mkdtemp(prefix="aitel-bench-memory-")),
    )
    reason = workload.missing() or missing(config, workload, env)
    if reason:
        return {"status": "n/a", "reason": reason}
    run = workload.build()
    run(None)
    units = units_per_request(workload, run)
    session = config.make(workload, env)
    # the sink's counters are shared with the rest of the run: count from here
    before = session.delivered(_sink_stats(args.sink) if session.sink_key else {}) or 0
    session.attach()
    callbacks = session.callbacks
    for _ in range(args.warmup):
        run(callbacks)
    session.flush()
    gc.collect()
    rss0 = rss_bytes()
    done = 0
    points = []
    t0 = time.perf_counter()
    for target in sorted(args.counts):
        while done < target:
            run(callbacks)
            done += 1
        session.flush()
        gc.collect()
        rss = rss_bytes()
        points.append(
            {
                "requests": target,
                "rss_mb": rss / 2**20,
                "growth_mb": (rss - rss0) / 2**20,
                "bytes_per_request": (rss - rss0) / target,
                "seconds": time.perf_counter() - t0,
            }
        )
    session.detach()
    result: dict[str, Any] = {
        "status": "ok",
        "rss_after_warmup_mb": rss0 / 2**20,
        "points": points,
    }
    if session.unit:
        delivered = session.delivered(_sink_stats(args.sink) if session.sink_key else {})
        if delivered is not None:
            delivered -= before
        per_request = 1 if session.unit == "packets" else units
        expected = (done + args.warmup) * per_request
        result["delivery"] = {
            "unit": session.unit,
            "expected": expected,
            "delivered": delivered,
            "ratio": delivered / expected if delivered is not None and expected else None,
        }
    session.close()
    shutil.rmtree(env.tmpdir, ignore_errors=True)
    return result


def run_memory(
    configs: list[str],
    workload: str,
    counts: list[int],
    warmup: int,
    sink_url: str,
    collector_url: str | None,
    stderr_path: Path,
    log: Callable[[str], None],
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    out: dict[str, Any] = {"workload": workload, "counts": counts, "configs": {}}
    for name in configs:
        log(f"memory: {name} ({workload}, {max(counts):,} requests, own process)")
        cmd = [
            sys.executable,
            str(HERE / "bench_memory.py"),
            "--config",
            name,
            "--workload",
            workload,
            "--counts",
            ",".join(str(c) for c in counts),
            "--warmup",
            str(warmup),
            "--sink",
            sink_url,
            "--collector",
            collector_url or "",
        ]
        out["configs"][name] = run_child(cmd, stderr_path, timeout_s)
    return out


def run_child(cmd: list[str], stderr_path: Path, timeout_s: float) -> dict[str, Any]:
    """Run one configuration's child process: the JSON on its last line of output."""
    with open(stderr_path, "ab") as err:
        try:
            proc = subprocess.run(
                cmd, stdout=subprocess.PIPE, stderr=err, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return {"status": "error", "reason": f"timed out ({timeout_s}s)"}
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"status": "error", "reason": f"child exited {proc.returncode}; see {stderr_path}"}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description="one memory measurement (used by run.py)")
    parser.add_argument("--config", required=True)
    parser.add_argument("--workload", default="rag")
    parser.add_argument("--counts", type=lambda s: [int(x) for x in s.split(",")], required=True)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--collector", default="")
    args = parser.parse_args()
    try:
        result = child(args)
    except Exception as exc:
        result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
