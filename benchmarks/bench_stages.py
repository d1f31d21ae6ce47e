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
* In place, on LangChain workloads (``--in-place``): the same requests with
  the handler whose finished requests are dropped (the hot path alone); the
  same with a thread that burns ``--busy-us`` of unrelated Python CPU per
  request (what any background work of that size costs the caller); with
  the packet built, redacted, encoded and written on the caller's thread
  right after each request (``inline``); and as shipped (``worker``: the
  export worker does that work on its own thread). Blocks are interleaved;
  medians of CPU per request over the rounds, minus no callbacks, split
  into the background thread's CPU and the caller's. With ``--one-cpu`` the
  process is pinned to one CPU, so that the worker shares the caller's
  caches: the difference to a normal run is what moving the work to another
  core costs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
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
    # the whole check of a received batch of 512, sent as an array and as lines
    lines = b"\n".join(orjson.dumps(p) for p in packets[:512])
    limit = 512
    out["collector_array_us"] = best_us(lambda b: collector._check_batch(b, limit), [body]) / 512
    out["collector_lines_us"] = best_us(lambda b: collector._check_lines(b, limit), [lines]) / 512
    return out


class BusyThread:
    """Every 4 requests, burns ``us_per_request`` x 4 of pure Python CPU on its own thread.

    It touches none of the requests' objects: what it costs the caller's
    thread is what any background Python work of that size costs it.
    """

    def __init__(self, us_per_request: float) -> None:
        self._seconds = us_per_request / 1e6
        self._cond = threading.Condition()
        self._pending = 0
        self.thread = threading.Thread(target=self._loop, name="bench-busy", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._pending < 4:
                    self._cond.wait()
                count, self._pending = self._pending, 0
            end = time.thread_time() + count * self._seconds
            total = 0
            while time.thread_time() < end:
                for i in range(200):
                    total += i

    def submit(self, trace: Any) -> None:
        with self._cond:
            self._pending += 1
            if self._pending >= 4:
                self._cond.notify()

    def idle(self) -> None:
        """Wait until the work handed over so far is burnt (no sleeps: polls the count)."""
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            with self._cond:
                if self._pending < 4:
                    break
            time.sleep(0)  # yields the GIL to the busy thread


BUSY = "hot path + busy thread"


def in_place(name: str, rounds: int, requests: int, busy_us: float) -> dict[str, float]:
    """CPU per request over no callbacks (µs), and the caller's share (see above)."""
    from langchain_aitel import AITelHandler

    from aitel import Settings, Tracer
    from aitel.exporters.jsonl import JsonlExporter

    run = WORKLOADS[name].build()
    tracers: dict[str, Any] = {}
    callbacks: dict[str, list[Any] | None] = {"none": None}
    background: dict[str, threading.Thread] = {}
    busy = BusyThread(busy_us)
    for mode in ("hot path", BUSY, "inline", "worker"):
        tracer = Tracer(JsonlExporter(tempfile.mkdtemp()), settings=Settings())
        pipeline = tracer.pipeline
        if mode == "hot path":
            tracer.builder._sink = lambda trace: None
        elif mode == BUSY:
            tracer.builder._sink = busy.submit
            background[mode] = busy.thread
        elif mode == "inline":

            def build_here(trace: Any, pipeline: Any = pipeline) -> None:
                encoded = pipeline._prepare(trace, pipeline._counters)
                if encoded is not None:
                    pipeline.exporter.export([encoded])

            tracer.builder._sink = build_here
        tracers[mode] = tracer
        callbacks[mode] = [AITelHandler(tracer=tracer)]
    cpu: dict[str, list[float]] = {mode: [] for mode in callbacks}
    thread_cpu: dict[str, list[float]] = {BUSY: [], "worker": []}
    for rnd in range(rounds):
        modes = list(callbacks)
        for mode in modes[rnd % len(modes) :] + modes[: rnd % len(modes)]:
            tracer = tracers.get(mode)
            for _ in range(20):
                run(callbacks[mode])
            if tracer is not None:
                tracer.flush(30.0)
            if mode == BUSY:  # the warm-up's share burnt before the clock starts
                busy.idle()
            gc.collect()
            if mode == "worker" and tracer.pipeline._worker is not None:
                background[mode] = tracer.pipeline._worker
            thread = background.get(mode)
            clock = time.pthread_getcpuclockid(thread.ident) if thread and thread.ident else None
            t0 = time.clock_gettime(clock) if clock is not None else 0.0
            start = time.process_time()
            for _ in range(requests):
                run(callbacks[mode])
            if tracer is not None:
                tracer.flush(30.0)
            if mode == BUSY:  # the flush of the busy thread: its share burnt
                busy.idle()
            cpu[mode].append((time.process_time() - start) / requests * 1e6)
            if clock is not None:
                thread_cpu[mode].append((time.clock_gettime(clock) - t0) / requests * 1e6)
    for tracer in tracers.values():
        tracer.shutdown(5.0)
    base = statistics.median(cpu["none"])
    out = {"no callbacks": base}
    for mode, values in cpu.items():
        if mode == "none":
            continue
        total = statistics.median(values) - base
        out[mode] = total
        if thread_cpu.get(mode):
            own = statistics.median(thread_cpu[mode])
            out[f"{mode}: its thread"] = own
            out[f"{mode}: the caller"] = total - own
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
    p.add_argument("--in-place", default="lcel", help="LangChain workloads measured in place")
    p.add_argument("--in-place-rounds", type=int, default=20)
    p.add_argument(
        "--busy-us", type=float, default=300.0, help="the busy thread's CPU per request (µs)"
    )
    p.add_argument("--one-cpu", action="store_true", help="pin the process to one CPU")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.one_cpu:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    names = [n for n in args.workloads.split(",") if n]
    places = [n for n in args.in_place.split(",") if n and not WORKLOADS[n].missing()]
    results = {
        "one_cpu": args.one_cpu,
        "in_place": {n: in_place(n, args.in_place_rounds, 200, args.busy_us) for n in places},
        "requests": request_stages(names, args.requests),
        "packet_3kb": packet_stages(args.packets),
        "full_collection": full_collection_ms(),
    }
    print(
        "== in place: CPU per request over no callbacks (µs, medians of "
        f"{args.in_place_rounds} rounds{'; one CPU' if args.one_cpu else ''}) =="
    )
    for name, row in results["in_place"].items():
        print(name)
        for key, value in row.items():
            print(f"  {key:36} {value:7,.0f}")
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
