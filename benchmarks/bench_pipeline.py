"""Export throughput: how many packets per second the pipeline sustains, and drops in a burst.

aitel: pre-built packet dicts (real LangChain packets: "2KB" is the smallest
a chain makes, 2,991 bytes, and "50KB" a RAG packet with a long context and
answer; each with its own ``packet_id``) go through ``pipeline.submit`` as
fast as the loop can go, then ``flush``; the rate is packets exported per
second from the first submit to the end of the flush, with the default
processors (secrets redaction, size limits), encoding and the exporter:
JSONL, HTTP to the local aitel collector, HTTP to the sink, OTLP to the sink.

OpenTelemetry: pre-built finished ~2 KB spans are handed to
``BatchSpanProcessor.on_end`` (what ``span.end()`` does) with the
OTLP/HTTP exporter to the sink, then ``force_flush``.

Burst: the same, with a queue of ``--burst-queue`` items and 10 times as
many items submitted at once; what was dropped comes from aitel's
``pipeline.stats()`` and, for OTel, from what reached the sink.
"""

from __future__ import annotations

import gc
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services import Services

TEXT = (
    "Refunds are issued within 14 days of receiving the returned item and orders "
    "shipped within the EU follow the consumer protection policy while gift cards "
    "are replaced rather than refunded and damaged items ship again at no cost"
)
WORDS = TEXT.split()


def _text(chars: int, seed: int = 0) -> str:
    out: list[str] = []
    size = 0
    i = seed
    while size < chars:
        word = WORDS[i % len(WORDS)]
        if i % 17 == 0:
            word = f"order-{i:06d}"
        out.append(word)
        size += len(word) + 1
        i += 1
    return " ".join(out)[:chars]


def base_packet(target_bytes: int) -> dict[str, Any]:
    """A real packet from the LCEL (small) or RAG (large) workload, padded to ``target_bytes``.

    Below 8,000 bytes: the root chain and the model call with the answer
    emptied, padded only if still under ``target_bytes`` (the LCEL packet
    is already about 3 KB).
    """
    import orjson
    from langchain_aitel import AITelHandler
    from workloads import WORKLOADS

    from aitel import InMemoryExporter, Settings, Tracer

    exporter = InMemoryExporter()
    tracer = Tracer(exporter, settings=Settings())
    name = "lcel" if target_bytes < 8000 else "rag"
    WORKLOADS[name].build()([AITelHandler(tracer=tracer)])
    tracer.flush(10.0)
    tracer.shutdown(5.0)
    packet = exporter.packets[0]
    if target_bytes < 8000:
        # the root chain and the model call: the smallest packet that still looks real
        packet["steps"] = [s for s in packet["steps"] if s["parent_id"] is None or s["llm"]]
        packet["payload"]["output"] = ""
    size = len(orjson.dumps(packet))
    room = max(0, target_bytes - size)
    if target_bytes >= 8000:
        # long retrieved context and answer, each under the 32 KiB per-value limit
        packet["payload"]["input"] = {"question": "refunds?", "context": _text(room // 2, 1)}
        packet["payload"]["output"] = _text(room - room // 2, 2)
    else:
        packet["payload"]["output"] = _text(room, 3)
    return packet


def prebuild(base: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` independent deep copies, each with its own ids."""
    import orjson

    raw = orjson.dumps(base)
    out = []
    for _ in range(count):
        packet = orjson.loads(raw)
        pid = str(uuid.uuid4())
        packet["packet_id"] = pid
        packet["request_id"] = pid
        out.append(packet)
    return out


def _aitel_targets(services: Services, size_label: str, tmp: Path) -> dict[str, Callable[[], Any]]:
    targets: dict[str, Callable[[], Any]] = {}
    from aitel.exporters.jsonl import JsonlExporter

    targets["jsonl"] = lambda: JsonlExporter(tempfile.mkdtemp(dir=tmp))
    try:
        from aitel.exporters.http import HttpExporter
    except ImportError:
        HttpExporter = None
    if HttpExporter is not None:
        if services.collector is not None:
            url = services.collector.url
            targets["http-collector"] = lambda: HttpExporter(url)
        sink_url = f"{services.sink.url}/aitel-http-pipe-{size_label}/v1/packets"
        targets["http-sink"] = lambda: HttpExporter(sink_url)
    try:
        from aitel.exporters.otlp import OtlpExporter
    except ImportError:
        OtlpExporter = None
    if OtlpExporter is not None:
        otlp_url = f"{services.sink.url}/aitel-otlp-pipe-{size_label}/v1/traces"
        targets["otlp-sink"] = lambda: OtlpExporter(otlp_url, env={})
    return targets


def _aitel_run(
    make_exporter: Callable[[], Any],
    packets: list[dict[str, Any]],
    queue: int,
    spool_dir: Path | None = None,
) -> dict[str, Any]:
    from aitel import PipelineConfig, Settings, Tracer

    spool = None
    if spool_dir is not None:
        from aitel.spool import DiskSpool

        spool = DiskSpool(spool_dir)
    tracer = Tracer(
        make_exporter(),
        settings=Settings(),
        spool=spool,
        pipeline_config=PipelineConfig(max_queue_size=queue),
    )
    submit = tracer.pipeline.submit
    gc.collect()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for packet in packets:
        submit(packet)
    t_submitted = time.perf_counter()
    flushed = tracer.flush(600.0)
    spooled_at_flush = tracer.stats().spooled
    if spool is not None:  # delivered or spooled so far; the worker now replays the spool
        deadline = time.monotonic() + 600.0
        while tracer.stats().spool_pending > 0 and time.monotonic() < deadline:
            tracer.flush(1.0)
            time.sleep(0.01)
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    stats = tracer.stats()
    tracer.shutdown(10.0)
    n = len(packets)
    result = {
        "submitted": n,
        "exported": stats.exported,
        "dropped": stats.dropped,
        "dropped_queue_full": stats.dropped_queue_full,
        "flushed": flushed,
        "packets_per_s": stats.exported / (t1 - t0) if t1 > t0 else None,
        "submit_us": (t_submitted - t0) / n * 1e6,
        "cpu_us_per_packet": (cpu1 - cpu0) / n * 1e6,
        "seconds": t1 - t0,
    }
    if spool is not None:
        result.update(
            overflowed=stats.overflowed,
            spooled_at_flush=spooled_at_flush,
            spool_pending=stats.spool_pending,
        )
    return result


def _otel_spans(count: int) -> tuple[list[Any], int]:
    """``count`` finished spans of about 2 KB in OTLP, and their encoded size."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("aitel-bench")
    text_in, text_out = _text(850, 4), _text(850, 5)
    spans = []
    for i in range(count):
        span = tracer.start_span(
            "ChatOpenAI",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini-2024-07-18",
                "input.value": text_in,
                "output.value": text_out,
                "llm.token_count.prompt": 42,
                "llm.token_count.completion": 24,
                "llm.token_count.total": 66,
                "metadata": f'{{"session_id": "s-{i}"}}',
            },
        )
        span.end()
        spans.append(span)
    size = encode_spans(spans[:100]).ByteSize() // min(100, count) if spans else 0
    return spans, size


def _otel_run(sink_url: str, key: str, spans: list[Any], queue: int) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    processor = BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"{sink_url}/{key}/v1/traces"),
        max_queue_size=queue,
        max_export_batch_size=min(512, queue),
    )
    on_end = processor.on_end
    gc.collect()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for span in spans:
        on_end(span)
    t_submitted = time.perf_counter()
    processor.force_flush()
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    processor.shutdown()
    n = len(spans)
    return {
        "submitted": n,
        "submit_us": (t_submitted - t0) / n * 1e6,
        "cpu_us_per_packet": (cpu1 - cpu0) / n * 1e6,
        "seconds": t1 - t0,
    }


def run_pipeline(
    services: Services,
    *,
    count_small: int,
    count_large: int,
    burst_queue: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    import orjson

    tmp = Path(tempfile.mkdtemp(prefix="aitel-bench-pipeline-"))
    out: dict[str, Any] = {"throughput": {}, "burst": {}, "burst_queue": burst_queue}
    sink = services.sink
    if services.collector is None:
        out["collector"] = f"n/a: {services.collector_missing}"
    sizes = {"2KB": (2048, count_small), "50KB": (50 * 1024, count_large)}
    for label, (target, count) in sizes.items():
        base = base_packet(target)
        packet_bytes = len(orjson.dumps(base))
        for target_name, make in _aitel_targets(services, label, tmp).items():
            log(f"pipeline: aitel {target_name} {label} x {count}")
            packets = prebuild(base, count)
            before = _external_count(services, target_name, label)
            try:
                result = _aitel_run(make, packets, queue=count + 16)
            except Exception as exc:
                result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
            del packets
            result["packet_bytes"] = packet_bytes
            result.update(_arrived(services, target_name, label, before))
            out["throughput"][f"aitel {target_name} {label}"] = result
        # burst: 10x the queue, submitted at once
        burst_count = burst_queue * 10 if label == "2KB" else max(64, burst_queue // 4) * 10
        queue = burst_queue if label == "2KB" else max(64, burst_queue // 4)
        for target_name, make in _aitel_targets(services, f"burst-{label}", tmp).items():
            if target_name not in {"jsonl", "http-collector", "otlp-sink"}:
                continue
            log(f"pipeline: aitel burst {target_name} {label} x {burst_count} (queue {queue})")
            packets = prebuild(base, burst_count)
            before = _external_count(services, target_name, f"burst-{label}")
            try:
                result = _aitel_run(make, packets, queue=queue)
            except Exception as exc:
                result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
            del packets
            result["queue"] = queue
            result["packet_bytes"] = packet_bytes
            result.update(_arrived(services, target_name, f"burst-{label}", before))
            out["burst"][f"aitel {target_name} {label}"] = result
            if target_name == "otlp-sink":
                continue
            # the same burst with a disk spool: the overflow goes to disk, not away
            key = f"burst-spool-{label}"
            log(
                f"pipeline: aitel burst {target_name} {label} x {burst_count}"
                f" (queue {queue}, spool)"
            )
            packets = prebuild(base, burst_count)
            before = _external_count(services, target_name, key)
            try:
                result = _aitel_run(
                    _aitel_targets(services, key, tmp)[target_name],
                    packets,
                    queue=queue,
                    spool_dir=Path(tempfile.mkdtemp(prefix="spool-", dir=tmp)),
                )
            except Exception as exc:
                result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
            del packets
            result["queue"] = queue
            result["packet_bytes"] = packet_bytes
            result.update(_arrived(services, target_name, key, before))
            out["burst"][f"aitel {target_name} {label} +spool"] = result

    try:
        import opentelemetry.exporter.otlp.proto.http
        import opentelemetry.sdk  # noqa: F401
    except ImportError as exc:
        out["throughput"]["otel-bsp 2KB"] = {"status": "n/a", "reason": str(exc)}
        return out
    for mode, count, queue in (
        ("throughput", count_small, count_small + 16),
        ("burst", burst_queue * 10, burst_queue),
    ):
        log(f"pipeline: OTel BatchSpanProcessor {mode} 2KB x {count} (queue {queue})")
        spans, span_bytes = _otel_spans(count)
        key = f"otel-bsp-{mode}"
        try:
            result = _otel_run(sink.url, key, spans, queue)
        except Exception as exc:
            out[mode]["otel-bsp 2KB"] = {
                "status": "error",
                "reason": f"{type(exc).__name__}: {exc}",
            }
            continue
        finally:
            del spans
        arrived = sink.settle([key]).get(key, {}).get("items", 0)
        result["span_bytes"] = span_bytes
        result["queue"] = queue
        result["exported"] = arrived
        result["dropped"] = count - arrived
        result["packets_per_s"] = arrived / result["seconds"] if result["seconds"] else None
        out[mode]["otel-bsp 2KB"] = result
    return out


def _external_count(services: Services, target: str, label: str) -> int | None:
    if target == "http-collector" and services.collector is not None:
        return services.collector.stored()
    key = _sink_key(target, label)
    if key is not None:
        return services.sink.items(key)
    return None


def _sink_key(target: str, label: str) -> str | None:
    if target == "http-sink":
        return f"aitel-http-pipe-{label}"
    if target == "otlp-sink":
        return f"aitel-otlp-pipe-{label}"
    return None


def _arrived(services: Services, target: str, label: str, before: int | None) -> dict[str, Any]:
    """What the destination itself counted (collector: packets stored; sink: packets/spans)."""
    if before is None:
        return {}
    if target == "http-collector" and services.collector is not None:
        return {"stored_at_collector": services.collector.stored() - before}
    key = _sink_key(target, label)
    if key is None:
        return {}
    after = services.sink.settle([key]).get(key, {}).get("items", 0)
    unit = "spans_at_sink" if target == "otlp-sink" else "packets_at_sink"
    return {unit: after - before}
