"""Where aitel's CPU goes, stage by stage: what bounds the overhead and throughput.

    .venv-bench/bin/python benchmarks/bench_stages.py              # table
    .venv-bench/bin/python benchmarks/bench_stages.py --json out.json

Each stage runs alone in a tight loop over many items (best of 5 rounds of
CPU time per item), so these are floors: inside an application the same
code runs with colder caches and costs more.

* Per request, for each workload: the finished requests are captured, then
  turned into packets (``materialize``), redacted (default ``secrets``
  preset) and encoded, each stage timed on its own.
* Per 3 KB packet (the pipeline benchmark's "2KB" packet): the secrets
  check, encoding, writing batches of 512 to a JSONL file, and the
  collector's work on a received batch (parse, validate with pydantic,
  re-encode for storage).
* A full collection of Python's cycle collector with the frameworks
  loaded: how long any thread of the process is held when one happens.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench_pipeline import base_packet, prebuild
from workloads import WORKLOADS

ROUNDS = 5


def best_us(fn: Callable[[Any], Any], items: Sequence[Any], rounds: int = ROUNDS) -> float:
    """The lowest CPU time per item over ``rounds`` passes, in µs."""
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        for item in items:
            fn(item)
        best = min(best, time.thread_time() - start)
    return best / len(items) * 1e6


def _captured(name: str, requests: int) -> tuple[Any, list[Any]]:
    """A tracer whose finished requests are kept (not exported), and those requests."""
    from aitel import InMemoryExporter, Settings, Tracer

    tracer = Tracer(InMemoryExporter(), settings=Settings())
    finished: list[Any] = []
    tracer.builder._sink = finished.append
    workload = WORKLOADS[name]
    run = workload.build()
    if workload.framework == "langchain":
        from langchain_aitel import AITelHandler

        callbacks = [AITelHandler(tracer=tracer)]
        for _ in range(requests):
            run(callbacks)
    else:
        from llama_index.callbacks.aitel import AITelInstrumentation

        instrumentation = AITelInstrumentation(tracer=tracer).instrument()
        try:
            for _ in range(requests):
                run(None)
        finally:
            instrumentation.uninstrument()
    return tracer, finished


def request_stages(names: list[str], requests: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in names:
        if WORKLOADS[name].missing():
            continue
        tracer, finished = _captured(name, requests)
        pipeline = tracer.pipeline
        row = {"materialize_us": best_us(pipeline._materialize, finished)}
        packets = [pipeline._materialize(item) for item in finished]
        for processor in pipeline._steps:
            row[f"{type(processor).__name__}_us"] = best_us(processor.process, packets)
        row["encode_us"] = best_us(pipeline._encode, packets)
        row["packet_bytes"] = statistics.median(len(pipeline._encode(p)) for p in packets)
        out[name] = row
        tracer.shutdown(5.0)
    return out


def packet_stages(count: int) -> dict[str, float]:
    import orjson

    from aitel import Settings, Tracer
    from aitel.exporters.base import EncodedPacket
    from aitel.exporters.jsonl import JsonlExporter

    base = base_packet(2048)
    tracer = Tracer(JsonlExporter(tempfile.mkdtemp()), settings=Settings())
    pipeline = tracer.pipeline
    out: dict[str, float] = {"packet_bytes": len(orjson.dumps(base))}
    for processor in pipeline._steps:
        # each round redacts fresh copies: a redacted packet is not the same work twice
        out[f"{type(processor).__name__}_us"] = min(
            best_us(processor.process, prebuild(base, count), rounds=1) for _ in range(ROUNDS)
        )
    packets = prebuild(base, count)
    out["encode_us"] = best_us(pipeline._encode, packets)
    batches = [
        [EncodedPacket(p["packet_id"], orjson.dumps(p)) for p in packets[i : i + 512]]
        for i in range(0, len(packets), 512)
    ]
    out["jsonl_write_us"] = best_us(pipeline.exporter.export, batches) / 512
    tracer.shutdown(5.0)
    try:
        from aitel.collector import app as collector
    except ImportError:
        return out
    body = b"[" + b",".join(orjson.dumps(p) for p in packets[:512]) + b"]"
    items = orjson.loads(body)
    out["collector_parse_us"] = best_us(orjson.loads, [body]) / 512
    out["collector_validate_us"] = best_us(collector._invalid, items)
    out["collector_encode_us"] = best_us(orjson.dumps, items)
    return out


def full_collection_ms(rounds: int = ROUNDS) -> dict[str, float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": statistics.median(times), "objects": len(gc.get_objects())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/bench_stages.py", description=__doc__)
    p.add_argument("--requests", type=int, default=500, help="requests per workload")
    p.add_argument("--packets", type=int, default=5_000, help="3 KB packets")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    names = [n for n in args.workloads.split(",") if n]
    results = {
        "requests": request_stages(names, args.requests),
        "packet_3kb": packet_stages(args.packets),
        "full_collection": full_collection_ms(),
    }
    print("== per request (µs of CPU, tight loop) ==")
    for name, row in results["requests"].items():
        cells = "  ".join(
            f"{key.removesuffix('_us')} {value:,.1f}"
            for key, value in row.items()
            if key != "packet_bytes"
        )
        print(f"{name:9} {cells}  ({row['packet_bytes']:,.0f} B)")
    print("== per 3 KB packet (µs of CPU) ==")
    for key, value in results["packet_3kb"].items():
        print(f"{key.removesuffix('_us'):24} {value:,.1f}")
    full = results["full_collection"]
    print(
        f"== a full gc.collect() with the frameworks loaded: {full['median_ms']:.1f} ms "
        f"({full['objects']:,} objects) =="
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
