"""An application process for the fault-injection suite.

It emits ``--count`` packets (``trace()`` spans, or prepared dicts with
``--dicts``) through ``Tracer(HttpExporter(...), spool=DiskSpool(...))`` and
ends the way ``--exit`` says. Request ids are ``<prefix>-<n>``. A JSON report
(counters after shutdown) goes to ``--report``; signal modes print ``READY``
once the packets are submitted (or flushed, with ``--ready-after flush``).
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import os
import resource
import signal
import sys
import threading
import time
import uuid
from typing import Any

REPORT: dict[str, Any] = {}
ARGS: argparse.Namespace


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--token", default="T")
    p.add_argument("--spool")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--prefix", default="app")
    p.add_argument(
        "--exit",
        default="return",
        choices=["return", "sys.exit", "sigint", "sigterm", "sigterm-default", "sigkill"],
    )
    p.add_argument("--ready-after", default="submit", choices=["submit", "flush"])
    p.add_argument("--report")
    p.add_argument("--dicts", action="store_true")
    p.add_argument("--invalid", type=int, default=0, help="also submit this many invalid packets")
    p.add_argument("--payload-bytes", type=int, default=200)
    p.add_argument("--queue", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--shutdown-timeout", type=float, default=5.0)
    p.add_argument("--flush", type=float, default=None, help="flush(timeout) before exiting")
    p.add_argument("--drain", type=float, default=None, help="wait this long for an empty spool")
    p.add_argument("--rate", type=float, default=None, help="packets per second")
    p.add_argument("--max-elapsed", type=float, default=5.0)
    p.add_argument("--request-timeout", type=float, default=5.0)
    p.add_argument("--fork", choices=["mp", "prefork"], default=None)
    p.add_argument("--children", type=int, default=3)
    p.add_argument("--sample-memory", action="store_true")
    return p.parse_args()


def finish() -> None:
    snapshot()
    write_report()


def write_report() -> None:
    if ARGS.report and REPORT:
        tmp = ARGS.report + ".tmp"
        with open(tmp, "w") as f:
            json.dump(REPORT, f)
        os.replace(tmp, ARGS.report)


def main() -> int:
    global ARGS
    ARGS = args = parse()
    # Registered before aitel is imported, so it runs after aitel's exit handler.
    atexit.register(finish)
    if args.exit == "sigterm":  # an application with its own SIGTERM handler (aitel chains to it)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import aitel
    from aitel.config import Settings
    from aitel.exporters.http import HttpExporter
    from aitel.exporters.retry import RetryPolicy
    from aitel.pipeline import PipelineConfig
    from aitel.spool import DiskSpool

    exporter = HttpExporter(
        args.endpoint,
        token=args.token,
        timeout_s=args.request_timeout,
        retry=RetryPolicy(
            initial_backoff_s=0.05, max_backoff_s=0.5, max_elapsed_s=args.max_elapsed
        ),
        cooldown_s=0.2,
        max_cooldown_s=1.0,
    )
    spool = DiskSpool(args.spool, adopt_interval_s=0.5) if args.spool else None
    tracer = aitel.Tracer(
        exporter,
        spool=spool,
        settings=Settings(redaction=()),
        pipeline_config=PipelineConfig(
            max_queue_size=args.queue,
            max_batch_size=args.batch,
            schedule_delay_s=0.1,
            shutdown_timeout_s=args.shutdown_timeout,
            spool_retry_interval_s=0.2,
        ),
    )
    REPORT.update(prefix=args.prefix, emitted=0, pid=os.getpid())
    global TRACER
    TRACER = tracer

    memory = MemorySampler(tracer) if args.sample_memory else None
    if args.fork == "mp":
        emit(tracer, f"{args.prefix}-parent-a", args.count)
        run_multiprocessing(tracer, args)
        emit(tracer, f"{args.prefix}-parent-b", args.count)
    elif args.fork == "prefork":
        emit(tracer, f"{args.prefix}-parent-a", args.count)
        run_prefork(tracer, args)
        emit(tracer, f"{args.prefix}-parent-b", args.count)
    else:
        emit(tracer, args.prefix, args.count)
        if args.invalid:
            emit_invalid(tracer, args.prefix, args.invalid)
    if memory is not None:
        memory.stop()
        REPORT["memory"] = memory.result()

    if args.flush is not None:
        started = time.monotonic()
        REPORT["flush_ok"] = tracer.flush(args.flush)
        REPORT["flush_s"] = time.monotonic() - started
    if args.drain is not None:
        REPORT["drained"] = drain(tracer, args.drain)
    if args.ready_after == "flush" and args.flush is None:
        tracer.flush(30)
    snapshot()
    if args.exit == "sigkill":
        write_report()
    if args.exit in ("sigint", "sigterm", "sigterm-default", "sigkill"):
        print("READY", flush=True)
        threading.Event().wait()  # until the signal arrives
    if args.exit == "sys.exit":
        sys.exit(0)
    started = time.monotonic()
    REPORT["shutdown_ok"] = tracer.shutdown(args.shutdown_timeout)
    REPORT["shutdown_s"] = time.monotonic() - started
    return 0


TRACER: Any = None
_TEMPLATE: dict[str, Any] | None = None


def template(tracer: Any) -> dict[str, Any]:
    """One valid packet, built once through trace() by a throwaway in-memory tracer."""
    global _TEMPLATE
    if _TEMPLATE is None:
        import aitel
        from aitel.config import Settings

        memory = aitel.InMemoryExporter()
        scratch = aitel.Tracer(memory, settings=Settings(redaction=()))
        with aitel.trace("template", input={"q": "x"}, tracer=scratch) as span:
            span.set_output("y")
        scratch.shutdown(5)
        _TEMPLATE = memory.packets[0]
    return _TEMPLATE


def emit(tracer: Any, prefix: str, count: int) -> None:
    import aitel

    args = ARGS
    pad = "p" * args.payload_bytes
    interval = 1.0 / args.rate if args.rate else 0.0
    next_at = time.monotonic()
    base = template(tracer) if args.dicts else None
    for n in range(count):
        request_id = f"{prefix}-{n}"
        if base is not None:
            packet = dict(base)
            packet.update(
                packet_id=str(uuid.uuid4()), request_id=request_id, payload={"input": pad}
            )
            tracer.pipeline.submit(packet)
        else:
            with aitel.trace(
                "work", input={"n": n, "pad": pad}, tracer=tracer, request_id=request_id
            ) as span:
                span.set_output("done")
        REPORT["emitted"] = REPORT.get("emitted", 0) + 1
        if interval:
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the load, not synchronisation


def emit_invalid(tracer: Any, prefix: str, count: int) -> None:
    base = template(tracer)
    for n in range(count):
        packet = dict(base)
        packet.update(packet_id=str(uuid.uuid4()), request_id=f"{prefix}-bad-{n}", status="BOGUS")
        tracer.pipeline.submit(packet)
        REPORT["invalid"] = REPORT.get("invalid", 0) + 1


def drain(tracer: Any, timeout: float) -> bool:
    """Wait until everything was delivered and the spool is empty."""
    deadline = time.monotonic() + timeout
    tracer.flush(timeout)
    while time.monotonic() < deadline:
        stats = tracer.stats()
        if stats.spool_pending == 0 and stats.queue_depth == 0 and stats.in_flight == 0:
            return True
        time.sleep(0.05)  # polling with a deadline
    return False


def run_multiprocessing(tracer: Any, args: argparse.Namespace) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.children) as pool:
        results = pool.map(child_task, range(args.children))
        pool.close()
        pool.join()
    REPORT["children"] = results


def child_task(index: int) -> int:
    emit(TRACER, f"{ARGS.prefix}-child{index}", ARGS.count)
    return os.getpid()


def run_prefork(tracer: Any, args: argparse.Namespace) -> None:
    pids = []
    for index in range(args.children):
        pid = os.fork()
        if pid == 0:  # a worker: serve, then exit through the interpreter (atexit runs)
            REPORT.clear()
            ARGS.report = None
            emit(tracer, f"{args.prefix}-child{index}", args.count)
            sys.exit(0)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    REPORT["children"] = codes


class MemorySampler:
    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self.start_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.max_queue = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.max_queue = max(self.max_queue, self.tracer.stats().queue_depth)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> dict[str, int]:
        end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"rss_growth_kb": end - self.start_rss_kb, "max_queue": self.max_queue}


def snapshot() -> None:
    tracer = TRACER
    if tracer is None or not REPORT:
        return
    REPORT["stats"] = tracer.stats().as_dict()
    REPORT["exporter"] = dataclasses.asdict(tracer.exporter.stats())
    spool = tracer.pipeline.spool
    if spool is not None:
        REPORT["spool"] = dataclasses.asdict(spool.stats())


if __name__ == "__main__":
    sys.exit(main())
