"""Plain span records: what the mapping produces and the encoders consume.

They mirror the OTLP trace data model (``opentelemetry/proto/trace/v1``)
closely enough to encode one-to-one, but need no protobuf: the mapping
stays a pure function that tests can assert on directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeAlias

AttributeValue: TypeAlias = (
    str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]
)
"""An OpenTelemetry attribute value: a scalar or a homogeneous list of scalars."""

Attributes: TypeAlias = dict[str, AttributeValue]


class SpanKind(IntEnum):
    """``Span.SpanKind`` (same numbers as OTLP)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(IntEnum):
    """``Status.StatusCode`` (same numbers as OTLP)."""

    UNSET = 0
    OK = 1
    ERROR = 2


@dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanLink:
    trace_id: bytes
    span_id: bytes
    attributes: Attributes = field(default_factory=dict)


@dataclass(slots=True)
class SpanRecord:
    """One span, ready to encode. Ids are raw bytes (16 for traces, 8 for spans)."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    kind: SpanKind
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: Attributes = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    links: list[SpanLink] = field(default_factory=list)
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""

    @property
    def is_root(self) -> bool:
        return not self.parent_span_id


@dataclass(frozen=True, slots=True)
class InstrumentationScope:
    """Who produced the spans: aitel itself or one of its integrations."""

    name: str
    version: str = ""


@dataclass(slots=True)
class PacketTrace:
    """The spans of one context packet, root first, and what had to be cut."""

    packet_id: str
    scope: InstrumentationScope
    spans: list[SpanRecord]
    truncated_values: int = 0
    """Attribute values shortened (with a visible marker) or list items left out."""

    @property
    def root(self) -> SpanRecord:
        return self.spans[0]
