"""Memory during a long outage: every destination is down for the whole run.

Each configuration runs in a fresh child process (``python
benchmarks/bench_outage.py --config NAME ...``) whose exporters point at a
port on 127.0.0.1 that nothing listens on (connections are refused at once,
as when a collector is down). The application keeps serving requests and
never flushes, as a real one would not: warm up, ``gc.collect()``, read RSS;
then RSS is read every ``--sample-every`` requests (without collecting),
and at the end after a collection. What matters is the peak: a tracer that
buffers what it cannot send grows with the outage, one that bounds its
queue stays flat.

aitel runs with its defaults (queue of 20,000 finished requests; batches the
endpoint cannot take are counted as dropped) and with a disk spool
(``NAME+spool``, the ``AITEL_SPOOL_DIR`` setting: undelivered batches and
the overflow of a full queue go to disk, for delivery once the endpoint is
back).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_memory import rss_bytes, run_child

HERE = Path(__file__).resolve().parent
SPOOL_SUFFIX = "+spool"


def dead_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was just freed)."""
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def child(args: argparse.Namespace) -> dict[str, Any]:
    from configs import CONFIGS, Env, clean_environment, missing
    from workloads import WORKLOADS

    clean_environment()
    tmp = Path(tempfile.mkdtemp(prefix="aitel-bench-outage-"))
    name = args.config.removesuffix(SPOOL_SUFFIX)
    spool = tmp / "spool" if args.config.endswith(SPOOL_SUFFIX) else None
    workload = WORKLOADS[args.workload]
    config = CONFIGS[name]
    env = Env(
        sink_url=args.dead,
        collector_url=f"{args.dead}/v1/packets",
        collector_missing=None,
        tmpdir=tmp,
        aitel_spool_dir=spool,
    )
    reason = workload.missing() or missing(config, workload, env)
    if reason:
        return {"status": "n/a", "reason": reason}
    run = workload.build()
    run(None)
    session = config.make(workload, env)
    session.attach()
    callbacks = session.callbacks
    for _ in range(args.warmup):
        run(callbacks)
    gc.collect()
    rss0 = rss_bytes()
    peak = rss0
    points = []
    t0 = time.perf_counter()
    for i in range(1, args.requests + 1):
        run(callbacks)
        if i % args.sample_every == 0:
            rss = rss_bytes()
            peak = max(peak, rss)
            points.append({"requests": i, "growth_mb": (rss - rss0) / 2**20})
    seconds = time.perf_counter() - t0
    gc.collect()
    rss_end = rss_bytes()
    result: dict[str, Any] = {
        "status": "ok",
        "requests": args.requests,
        "seconds": seconds,
        "rss_after_warmup_mb": rss0 / 2**20,
        "peak_growth_mb": (max(peak, rss_end) - rss0) / 2**20,
        "end_growth_mb": (rss_end - rss0) / 2**20,
        "points": points,
        "details": session.details(),
    }
    if spool is not None:
        result["spool_mb"] = _dir_bytes(spool) / 2**20 if spool.exists() else 0.0
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def run_outage(
    configs: list[str],
    workload: str,
    requests: int,
    sample_every: int,
    warmup: int,
    stderr_path: Path,
    log: Callable[[str], None],
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    out: dict[str, Any] = {"workload": workload, "requests": requests, "configs": {}}
    dead = dead_url()
    for name in configs:
        log(f"outage: {name} ({workload}, {requests:,} requests, own process)")
        cmd = [
            sys.executable,
            str(HERE / "bench_outage.py"),
            *("--config", name, "--workload", workload, "--dead", dead),
            *("--requests", str(requests), "--sample-every", str(sample_every)),
            *("--warmup", str(warmup)),
        ]
        out["configs"][name] = run_child(cmd, stderr_path, timeout_s)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, help=f"a configuration, or one + {SPOOL_SUFFIX}")
    parser.add_argument("--workload", default="rag")
    parser.add_argument(
        "--dead", default="", help="the URL nothing answers on (default: a fresh one)"
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    args.dead = args.dead or dead_url()
    sys.path.insert(0, str(HERE))
    try:
        result = child(args)
    except Exception as exc:
        result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result, default=str), flush=True)
    # the exporters may retry a dead endpoint at exit; the numbers are out
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
