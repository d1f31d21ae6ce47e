"""The aitel hot path: how long each callback takes on the application's thread.

Every callback method of an aitel handler is wrapped with a timer
(``perf_counter_ns`` before and after the call) and the workloads run
through it with the JSONL exporter working in the background, as in
production. The timer's own cost is measured the same way around an empty
function and reported as ``timer floor``.

LangChain: the ``AITelHandler.on_*`` methods (``guarded`` wrapper included).
LlamaIndex: the span/event translator behind ``AITelSpanHandler`` and
``AITelEventHandler`` (the pydantic handler shells are not timed).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from configs import missing as config_missing
from workloads import Workload


def _timed(method: Callable[..., Any], sink: list[int]) -> Callable[..., Any]:
    perf_ns = time.perf_counter_ns

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = perf_ns()
        try:
            return method(*args, **kwargs)
        finally:
            sink.append(perf_ns() - t0)

    return wrapper


def _timer_floor(samples: int = 20_000) -> list[int]:
    times: list[int] = []

    def empty(*args: Any, **kwargs: Any) -> None:
        return None

    timed = _timed(empty, times)
    for _ in range(samples):
        timed(None, run_id=None)
    return times


def _stats(times_ns: list[int]) -> dict[str, float]:
    ordered = sorted(times_ns)
    n = len(ordered)

    def q(p: float) -> float:
        return ordered[min(n - 1, round(p * (n - 1)))] / 1000

    return {
        "count": n,
        "p50_us": q(0.50),
        "p99_us": q(0.99),
        "max_us": ordered[-1] / 1000,
        "mean_us": statistics.fmean(ordered) / 1000,
    }


def _wrap_langchain(handler: Any, timings: dict[str, list[int]]) -> None:
    for name in dir(type(handler)):
        if name.startswith("on_") and callable(getattr(handler, name)):
            setattr(handler, name, _timed(getattr(handler, name), timings[name]))


def _wrap_translator(instrumentation: Any, timings: dict[str, list[int]]) -> None:
    translator = instrumentation.span_handler._translator
    for name in ("span_enter", "span_exit", "span_drop", "handle"):
        setattr(translator, name, _timed(getattr(translator, name), timings[name]))


def run_hotpath(
    workloads: list[Workload], requests: int, log: Callable[[str], None]
) -> dict[str, Any]:
    from configs import CONFIGS

    from aitel import Settings, Tracer
    from aitel.exporters.jsonl import JsonlExporter

    out: dict[str, Any] = {"timer_floor": _stats(_timer_floor()), "workloads": {}}
    tmp = Path(tempfile.mkdtemp(prefix="aitel-bench-hotpath-"))
    for w in workloads:
        reason = w.missing() or config_missing(CONFIGS["aitel-jsonl"], w, None)
        if reason:
            out["workloads"][w.name] = {"status": "n/a", "reason": reason}
            continue
        log(f"hot path: {w.name}")
        timings: dict[str, list[int]] = defaultdict(list)
        tracer = Tracer(JsonlExporter(tmp / w.name), settings=Settings())
        instrumentation = None
        try:
            run = w.build()
            if w.framework == "langchain":
                from langchain_aitel import AITelHandler

                handler = AITelHandler(tracer=tracer)
                callbacks: list[Any] | None = [handler]
                warm = 20
                for _ in range(warm):  # untimed
                    run(callbacks)
                _wrap_langchain(handler, timings)
            else:
                from llama_index.callbacks.aitel import AITelInstrumentation

                callbacks = None
                instrumentation = AITelInstrumentation(tracer=tracer).instrument()
                warm = 5
                for _ in range(warm):
                    run(None)
                _wrap_translator(instrumentation, timings)
            n = max(5, round(requests * w.weight))
            for _ in range(n):
                run(callbacks)
            tracer.flush(30.0)
        except Exception as exc:
            out["workloads"][w.name] = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
            continue
        finally:
            if instrumentation is not None:
                instrumentation.uninstrument()
            tracer.shutdown(10.0)
        total_ns = sum(sum(v) for v in timings.values())
        callback_stats = {name: _stats(v) for name, v in sorted(timings.items()) if v}
        out["workloads"][w.name] = {
            "status": "ok",
            "requests": n,
            "callbacks": callback_stats,
            "per_request_us": total_ns / n / 1000,
            "per_request_p50_us": sum(s["p50_us"] * s["count"] for s in callback_stats.values())
            / n,
            "calls_per_request": sum(len(v) for v in timings.values()) / n,
            "exported": tracer.stats().exported,
            "requests_total": n + warm,
        }
    return out
