"""Context packets as OpenTelemetry traces.

:func:`packet_to_trace` maps one packet to span records (pure, no
dependencies); :mod:`aitel.otlp.encoding` turns span records into an OTLP
request (protobuf needs ``pip install 'aitel[otlp]'``);
:class:`OtlpSettings` reads the standard ``OTEL_*`` variables; the exporter
that sends them is :class:`aitel.exporters.otlp.OtlpExporter`.
"""

from __future__ import annotations

from .config import DEFAULT_ENDPOINT, OtlpSettings, parse_key_values, resource_for, traces_endpoint
from .encoding import build_request, encode_json, encode_protobuf
from .mapping import (
    DEFAULT_OPTIONS,
    OPENINFERENCE_KIND,
    MappingOptions,
    packet_to_trace,
    request_span_id,
    span_id_for,
    trace_id_for,
    unix_nano,
)
from .model import (
    Attributes,
    AttributeValue,
    InstrumentationScope,
    PacketTrace,
    SpanEvent,
    SpanKind,
    SpanLink,
    SpanRecord,
    StatusCode,
)

__all__ = [
    # mapping
    "packet_to_trace",
    "MappingOptions",
    "DEFAULT_OPTIONS",
    "OPENINFERENCE_KIND",
    "trace_id_for",
    "span_id_for",
    "request_span_id",
    "unix_nano",
    # span records
    "PacketTrace",
    "SpanRecord",
    "SpanEvent",
    "SpanLink",
    "SpanKind",
    "StatusCode",
    "InstrumentationScope",
    "Attributes",
    "AttributeValue",
    # encoding
    "build_request",
    "encode_protobuf",
    "encode_json",
    # settings
    "OtlpSettings",
    "DEFAULT_ENDPOINT",
    "traces_endpoint",
    "resource_for",
    "parse_key_values",
]
