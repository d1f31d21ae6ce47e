"""The OTLP exporter against a loopback receiver, checked with the official protobuf classes."""

from __future__ import annotations

import gzip
import importlib.util
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

pytest.importorskip("opentelemetry.proto", reason="needs the otlp extra: pip install 'aitel[otlp]'")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from aitel import PipelineConfig, Settings, Tracer
from aitel.exporters.base import EncodedPacket
from aitel.exporters.otlp import OtlpExporter
from aitel.exporters.retry import RetryPolicy
from aitel.otlp import encode_json, packet_to_trace, span_id_for


def _fixtures() -> ModuleType:
    name = "aitel_tests_otlp_packets"
    if name not in sys.modules:
        path = Path(__file__).parent / "fixtures" / "otlp_packets.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


P = _fixtures()
TRACE = bytes.fromhex(P.TRACE_ID)
FAST = RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.02, max_elapsed_s=0.5)


# -- a tiny OTLP/HTTP receiver ---------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def request(self) -> ExportTraceServiceRequest:
        request = ExportTraceServiceRequest()
        request.ParseFromString(self.body)
        return request


class Receiver:
    """Records every POST (gzip undone) and answers from a script, then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: deque[tuple[int, bytes, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status, answer, headers = (
                        receiver.script.popleft()
                        if receiver.script
                        else (200, ExportTraceServiceResponse().SerializeToString(), {})
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1/traces"

    def answer(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.script.append((status, body, headers))

    def spans(self) -> list[Span]:
        return [
            span
            for item in self.received
            for rs in item.request().resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def make_exporter(receiver: Receiver) -> Iterator[Any]:
    made: list[OtlpExporter] = []

    def make(**kwargs: Any) -> OtlpExporter:
        kwargs.setdefault("retry", FAST)
        kwargs.setdefault("env", {})
        exporter = OtlpExporter(kwargs.pop("endpoint", receiver.url), **kwargs)
        made.append(exporter)
        return exporter

    yield make
    for exporter in made:
        exporter.shutdown(1.0)


def encoded(packet: dict[str, Any], *, keep_dict: bool = True) -> EncodedPacket:
    return EncodedPacket(packet["packet_id"], orjson.dumps(packet), packet if keep_dict else None)


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    return getattr(any_value, str(kind))


def attrs(key_values: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in key_values}


def kinds(key_values: Any) -> dict[str, str | None]:
    return {kv.key: kv.value.WhichOneof("value") for kv in key_values}


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- the bytes on the wire -------------------------------------------------------------


def test_protobuf_request_decodes_with_official_classes(
    receiver: Receiver, make_exporter: Any
) -> None:
    """What the exporter POSTs is an ExportTraceServiceRequest with the mapped spans."""
    exporter = make_exporter(service_name="rag-api", project_name="proj")
    result = exporter.export([encoded(P.rag_packet())])
    assert result.success and result.exported == 1

    [item] = receiver.received
    assert item.path == "/v1/traces"
    assert item.headers["content-type"] == "application/x-protobuf"
    assert "authorization" not in item.headers
    request = item.request()
    [resource_spans] = request.resource_spans
    resource = attrs(resource_spans.resource.attributes)
    assert resource["service.name"] == "rag-api"
    assert resource["openinference.project.name"] == "proj"
    assert resource["telemetry.sdk.name"] == "aitel"
    [scope_spans] = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("aitel.langchain", "0.1.0")

    spans = {attrs(s.attributes)["aitel.step.id"]: s for s in scope_spans.spans}
    assert len(spans) == 5
    root, llm, tool = spans[P.ROOT], spans[P.LLM2], spans[P.TOOL]
    assert root.trace_id == TRACE and root.parent_span_id == b""
    assert root.span_id == span_id_for(TRACE, P.ROOT)
    assert llm.parent_span_id == root.span_id
    assert root.name == "invoke_workflow RagChain"
    assert llm.name == "chat gpt-4o-mini-2024-07-18"
    assert llm.kind == Span.SPAN_KIND_CLIENT and root.kind == Span.SPAN_KIND_INTERNAL
    assert llm.start_time_unix_nano == P.BASE_NS + 530_000_000
    assert llm.end_time_unix_nano == P.BASE_NS + 890_000_000
    assert root.status.code == Status.STATUS_CODE_OK

    types = kinds(llm.attributes)
    assert types["llm.token_count.prompt"] == "int_value"
    assert types["gen_ai.request.temperature"] == "double_value"
    assert types["aitel.llm.streamed"] == "bool_value"
    assert types["gen_ai.response.finish_reasons"] == "array_value"
    llm_attrs = attrs(llm.attributes)
    assert llm_attrs["llm.token_count.total"] == 128
    assert llm_attrs["gen_ai.response.finish_reasons"] == ["stop"]
    retriever = attrs(spans[P.RETRIEVER].attributes)
    assert retriever["retrieval.documents.0.document.score"] == pytest.approx(0.92)
    assert [link.span_id for link in tool.links] == [spans[P.LLM].span_id]


def test_errors_travel_as_status_and_exception_events(
    receiver: Receiver, make_exporter: Any
) -> None:
    """A failed request decodes with ERROR status and exception events on tool and root."""
    make_exporter().export([encoded(P.failed_packet())])
    spans = {attrs(s.attributes)["aitel.step.id"]: s for s in receiver.spans()}
    for step_id in (P.ROOT, P.TOOL):
        span = spans[step_id]
        assert span.status.code == Status.STATUS_CODE_ERROR
        assert span.status.message == "ValueError: no such city"
        [event] = span.events
        assert event.name == "exception"
        event_attrs = attrs(event.attributes)
        assert event_attrs["exception.type"] == "ValueError"
        assert "Traceback" in event_attrs["exception.stacktrace"]


def test_gzip_compression_and_headers(receiver: Receiver, make_exporter: Any) -> None:
    """compression=gzip compresses the body; configured headers are sent."""
    exporter = make_exporter(
        compression="gzip",
        headers={"x-api-key": "k"},
        project_name="p",
        project_header=True,
        token="secret",
    )
    exporter.export([encoded(P.rag_packet())])
    [item] = receiver.received
    assert item.headers["content-encoding"] == "gzip"
    assert item.headers["x-api-key"] == "k"
    assert item.headers["x-project-name"] == "p"
    assert item.headers["authorization"] == "Bearer secret"
    assert len(item.request().resource_spans[0].scope_spans[0].spans) == 5


def test_otlp_json_encoding(receiver: Receiver, make_exporter: Any) -> None:
    """encoding=json sends OTLP/JSON: hex ids, camelCase, 64-bit ints as strings."""
    make_exporter(encoding="json").export([encoded(P.rag_packet())])
    [item] = receiver.received
    assert item.headers["content-type"] == "application/json"
    body = orjson.loads(item.body)
    spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    root = spans[0]
    assert root["traceId"] == P.TRACE_ID
    assert root["spanId"] == span_id_for(TRACE, P.ROOT).hex()
    assert "parentSpanId" not in root
    assert root["startTimeUnixNano"] == str(P.BASE_NS)
    assert root["status"] == {"code": 1}
    llm = next(s for s in spans if s["name"].startswith("chat") and s["kind"] == 3)
    tokens = next(a for a in llm["attributes"] if a["key"] == "llm.token_count.prompt")
    assert tokens["value"] == {"intValue": "120"}


def test_json_and_protobuf_carry_the_same_spans() -> None:
    """Both encodings hold the same ids, names and attribute keys."""
    trace = packet_to_trace(P.rag_packet())
    body = orjson.loads(encode_json([trace], {"service.name": "s"}))
    json_spans = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert [s["spanId"] for s in json_spans] == [s.span_id.hex() for s in trace.spans]
    assert [s["name"] for s in json_spans] == [s.name for s in trace.spans]
    assert [len(s["attributes"]) for s in json_spans] == [len(s.attributes) for s in trace.spans]


def test_spooled_packets_without_dicts_are_decoded(receiver: Receiver, make_exporter: Any) -> None:
    """EncodedPacket.packet is None after a spool round trip: the JSON bytes are used."""
    result = make_exporter().export([encoded(P.rag_packet(), keep_dict=False)])
    assert result.exported == 1
    assert len(receiver.spans()) == 5


# -- answers -------------------------------------------------------------------------------


def test_413_splits_the_batch(receiver: Receiver, make_exporter: Any) -> None:
    """Too large: the batch is split in halves and each half is sent."""
    receiver.answer(413)
    first, second = P.rag_packet(), P.failed_packet()
    second["packet_id"] = "00000000-0000-7000-8000-0000000000bb"
    exporter = make_exporter()
    result = exporter.export([encoded(first), encoded(second)])
    assert result.exported == 2 and result.success
    assert len(receiver.received) == 3
    assert exporter.stats().splits == 1


def test_proactive_split_above_max_request_bytes(receiver: Receiver, make_exporter: Any) -> None:
    """A body larger than max_request_bytes is split before sending."""
    exporter = make_exporter(max_request_bytes=1000)
    result = exporter.export([encoded(P.rag_packet()), encoded(P.failed_packet())])
    assert result.exported == 2
    assert len(receiver.received) == 2


def test_single_packet_still_too_large_is_rejected(receiver: Receiver, make_exporter: Any) -> None:
    """One packet that the endpoint refuses as too large is rejected, not retried forever."""
    receiver.answer(413, b"too big")
    result = make_exporter().export([encoded(P.rag_packet())])
    assert result.rejected == 1 and result.exported == 0
    assert "larger than the endpoint accepts" in result.rejections[0]


def test_client_errors_are_rejected_without_retry(receiver: Receiver, make_exporter: Any) -> None:
    """400/401/415 are final: counted as rejected with the server's message, sent once."""
    receiver.answer(415, b"Unsupported content type")
    exporter = make_exporter()
    result = exporter.export([encoded(P.rag_packet())])
    assert (result.exported, result.rejected, result.retry) == (0, 1, ())
    assert result.error is not None and "415" in result.error
    assert len(receiver.received) == 1
    assert exporter.stats().packets_rejected == 1


def test_transient_errors_are_retried(receiver: Receiver, make_exporter: Any) -> None:
    """503 then 200: the shared retry policy sends again and succeeds."""
    receiver.answer(503)
    exporter = make_exporter()
    result = exporter.export([encoded(P.rag_packet())])
    assert result.success
    assert len(receiver.received) == 2
    assert exporter.stats().retries == 1


def test_persistent_failure_is_transient_then_short_circuits(
    receiver: Receiver, make_exporter: Any
) -> None:
    """When retries run out the batch goes back to the pipeline; the endpoint then cools down."""
    for _ in range(50):
        receiver.answer(503, b"overloaded")
    exporter = make_exporter(
        retry=RetryPolicy(max_attempts=2, initial_backoff_s=0.01), cooldown_s=30.0
    )
    batch = [encoded(P.rag_packet())]
    result = exporter.export(batch)
    assert result.exported == 0 and list(result.retry) == batch
    assert result.error is not None and "503" in result.error
    sent = len(receiver.received)
    again = exporter.export(batch)
    assert list(again.retry) == batch and "unavailable" in str(again.error)
    assert len(receiver.received) == sent
    assert exporter.stats().short_circuited == 1


def test_unreachable_endpoint_is_transient_and_never_raises(make_exporter: Any) -> None:
    """Connection refused: a transient result, no exception."""
    exporter = make_exporter(
        endpoint="http://127.0.0.1:9/v1/traces", retry=RetryPolicy(max_attempts=1)
    )
    result = exporter.export([encoded(P.rag_packet())])
    assert result.exported == 0 and len(result.retry) == 1
    assert result.error


def test_partial_success_is_reported(receiver: Receiver, make_exporter: Any) -> None:
    """A partial_success answer counts the rejected spans and keeps the batch exported."""
    answer = ExportTraceServiceResponse()
    answer.partial_success.rejected_spans = 2
    answer.partial_success.error_message = "attribute limit"
    receiver.answer(200, answer.SerializeToString())
    exporter = make_exporter()
    result = exporter.export([encoded(P.rag_packet())])
    assert result.exported == 1
    assert result.error == "partial success: 2 spans rejected: attribute limit"
    assert exporter.stats().partial_rejected_spans == 2


def test_unmappable_packet_is_rejected_alone(receiver: Receiver, make_exporter: Any) -> None:
    """A packet whose bytes are not a JSON object is rejected; the rest are sent."""
    bad = EncodedPacket("bad-1", b"[1, 2]", None)
    result = make_exporter().export([bad, encoded(P.rag_packet())])
    assert (result.exported, result.rejected) == (1, 1)
    assert result.rejections[0].startswith("bad-1: not mappable")
    assert len(receiver.spans()) == 5


def test_after_shutdown_batches_are_handed_back(make_exporter: Any) -> None:
    """A shut-down exporter returns batches as transient instead of sending."""
    exporter = make_exporter()
    exporter.shutdown(1.0)
    result = exporter.export([encoded(P.rag_packet())])
    assert len(result.retry) == 1 and "shut down" in str(result.error)
    assert not exporter.force_flush(1.0)


def test_truncations_are_counted_in_stats(receiver: Receiver, make_exporter: Any) -> None:
    """Values cut while mapping show up in the exporter's stats."""
    from aitel.otlp import MappingOptions

    exporter = make_exporter(mapping=MappingOptions(max_value_chars=10))
    exporter.export([encoded(P.rag_packet())])
    assert exporter.stats().truncated_values > 0
    assert exporter.stats().spans_sent == 5


# -- with the pipeline ----------------------------------------------------------------------


def test_pipeline_spools_while_down_and_replays(receiver: Receiver, tmp_path: Path) -> None:
    """Endpoint down: the batch goes to the pipeline's disk spool; back up: it is replayed."""
    from aitel.spool import DiskSpool

    receiver.answer(503)
    exporter = OtlpExporter(
        receiver.url, retry=RetryPolicy(max_attempts=1), cooldown_s=0.01, env={}
    )
    tracer = Tracer(
        exporter,
        settings=Settings(redaction=()),
        spool=DiskSpool(tmp_path / "spool", fsync="never"),
        pipeline_config=PipelineConfig(schedule_delay_s=0.05, spool_retry_interval_s=0.05),
    )
    try:
        tracer.pipeline.submit(P.rag_packet())
        wait_for(lambda: tracer.stats().exported == 1)
        stats = tracer.stats()
        assert (stats.dropped, stats.spool_pending, stats.export_errors) == (0, 0, 1)
        assert len(receiver.received) == 2  # the refused attempt, then the replay
        assert [
            len(r.request().resource_spans[0].scope_spans[0].spans) for r in receiver.received
        ] == [5, 5]
    finally:
        tracer.shutdown(5.0)
