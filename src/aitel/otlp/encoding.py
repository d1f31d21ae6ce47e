"""Span records as an OTLP ``ExportTraceServiceRequest``: protobuf or OTLP/JSON.

Protobuf uses the official ``opentelemetry-proto`` message classes
(``pip install 'aitel[otlp]'``); OTLP/JSON is written directly (hex ids,
lowerCamelCase fields, 64-bit integers as strings, enums as numbers) and
needs no extra package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from .model import AttributeValue, InstrumentationScope, PacketTrace, SpanRecord

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

INSTALL_HINT = "the OTLP protobuf encoding needs opentelemetry-proto: pip install 'aitel[otlp]'"


def require_protobuf() -> None:
    """Raise ImportError with the install command when opentelemetry-proto is missing."""
    try:
        import opentelemetry.proto.collector.trace.v1.trace_service_pb2  # noqa: F401
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc


def _group(traces: Sequence[PacketTrace]) -> dict[InstrumentationScope, list[SpanRecord]]:
    groups: dict[InstrumentationScope, list[SpanRecord]] = {}
    for trace in traces:
        groups.setdefault(trace.scope, []).extend(trace.spans)
    return groups


# -- protobuf ----------------------------------------------------------------------


def build_request(
    traces: Sequence[PacketTrace], resource: Mapping[str, AttributeValue]
) -> ExportTraceServiceRequest:
    """The protobuf request message (one resource, one scope per integration)."""
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(INSTALL_HINT) from exc

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    _put_attributes(resource_spans.resource.attributes, resource)
    for scope, spans in _group(traces).items():
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = scope.name
        scope_spans.scope.version = scope.version
        for record in spans:
            span = scope_spans.spans.add()
            span.trace_id = record.trace_id
            span.span_id = record.span_id
            span.parent_span_id = record.parent_span_id
            span.name = record.name
            span.kind = record.kind.value
            span.start_time_unix_nano = record.start_time_unix_nano
            span.end_time_unix_nano = record.end_time_unix_nano
            _put_attributes(span.attributes, record.attributes)
            for event in record.events:
                pb_event = span.events.add()
                pb_event.name = event.name
                pb_event.time_unix_nano = event.time_unix_nano
                _put_attributes(pb_event.attributes, event.attributes)
            for link in record.links:
                pb_link = span.links.add()
                pb_link.trace_id = link.trace_id
                pb_link.span_id = link.span_id
                _put_attributes(pb_link.attributes, link.attributes)
            span.status.code = record.status_code.value
            if record.status_message:
                span.status.message = record.status_message
    return request


def encode_protobuf(traces: Sequence[PacketTrace], resource: Mapping[str, AttributeValue]) -> bytes:
    """Serialized ``ExportTraceServiceRequest`` (``application/x-protobuf``)."""
    return bytes(build_request(traces, resource).SerializeToString())


def _put_attributes(target: Any, attributes: Mapping[str, AttributeValue]) -> None:
    """Append ``attributes`` to a repeated ``KeyValue`` field."""
    for key, value in attributes.items():
        kv = target.add()
        kv.key = key
        _set_value(kv.value, value)


def _set_value(target: AnyValue, value: AttributeValue) -> None:
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    else:
        array = target.array_value
        array.SetInParent()
        for item in value:
            _set_value(array.values.add(), item)


def decode_partial_success(body: bytes, encoding: str = "protobuf") -> tuple[int, str]:
    """``(rejected_spans, error_message)`` from an ``ExportTraceServiceResponse`` body."""
    if not body:
        return 0, ""
    if encoding == "json":
        return _json_partial_success(body)
    try:
        from google.protobuf.message import (  # type: ignore[import-untyped, unused-ignore]
            DecodeError,
        )
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )
    except ImportError:  # pragma: no cover - exercised only without the extra
        return 0, ""
    response = ExportTraceServiceResponse()
    try:
        response.ParseFromString(body)
    except DecodeError:
        return 0, ""
    partial = response.partial_success
    return int(partial.rejected_spans), str(partial.error_message)


# -- OTLP/JSON ---------------------------------------------------------------------


def _json_partial_success(body: bytes) -> tuple[int, str]:
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 0, ""
    partial = decoded.get("partialSuccess") if isinstance(decoded, dict) else None
    if not isinstance(partial, dict):
        return 0, ""
    try:
        rejected = int(partial.get("rejectedSpans") or 0)
    except (TypeError, ValueError):
        rejected = 0
    return rejected, str(partial.get("errorMessage") or "")


def _json_value(value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    return {"arrayValue": {"values": [_json_value(item) for item in value]}}


def _json_attributes(attributes: Mapping[str, AttributeValue]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _json_value(value)} for key, value in attributes.items()]


def _json_span(record: SpanRecord) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": record.trace_id.hex(),
        "spanId": record.span_id.hex(),
        "name": record.name,
        "kind": int(record.kind),
        "startTimeUnixNano": str(record.start_time_unix_nano),
        "endTimeUnixNano": str(record.end_time_unix_nano),
        "attributes": _json_attributes(record.attributes),
        "status": {"code": int(record.status_code)},
    }
    if record.parent_span_id:
        span["parentSpanId"] = record.parent_span_id.hex()
    if record.status_message:
        span["status"]["message"] = record.status_message
    if record.events:
        span["events"] = [
            {
                "timeUnixNano": str(event.time_unix_nano),
                "name": event.name,
                "attributes": _json_attributes(event.attributes),
            }
            for event in record.events
        ]
    if record.links:
        span["links"] = [
            {
                "traceId": link.trace_id.hex(),
                "spanId": link.span_id.hex(),
                "attributes": _json_attributes(link.attributes),
            }
            for link in record.links
        ]
    return span


def encode_json(traces: Sequence[PacketTrace], resource: Mapping[str, AttributeValue]) -> bytes:
    """OTLP/JSON ``ExportTraceServiceRequest`` (``application/json``)."""
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": _json_attributes(resource)},
                "scopeSpans": [
                    {
                        "scope": {"name": scope.name, "version": scope.version},
                        "spans": [_json_span(record) for record in spans],
                    }
                    for scope, spans in _group(traces).items()
                ],
            }
        ]
    }
    return orjson.dumps(body)
