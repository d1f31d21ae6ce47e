"""A context packet as one OpenTelemetry trace (pure functions, no I/O).

Shape
    One trace per packet: the trace id is the packet's ``trace_id``. Every
    step becomes one span; the packet's root step (the one step without a
    parent in the packet) *is* the request span and additionally carries
    the request-level attributes (session, user, pipeline metadata,
    performance totals, the request's error). When a packet has no steps,
    or several parentless steps, a synthetic request span is made and the
    parentless steps hang under it. Span ids are the first 8 bytes of
    BLAKE2b(trace id + step id), so exporting a packet twice gives the same
    ids, and a step's ``parent_id`` becomes its span's parent span id.

Vocabularies
    Every span carries OpenInference attributes (what Arize Phoenix reads),
    OTel GenAI attributes (what Langfuse, Datadog, New Relic read) and
    ``aitel.*`` for what neither has (cost, A/B variant, versions,
    environment, logprob summary, request and packet ids). Span names follow
    GenAI: ``chat {model}``, ``text_completion {model}``,
    ``embeddings {model}``, ``retrieval {name}``, ``execute_tool {tool}``,
    ``invoke_agent {name}``, ``invoke_workflow {name}`` for the request;
    other chain steps keep their own name.

Limits
    Strings longer than :attr:`MappingOptions.max_value_chars` are cut with a
    ``…[truncated N chars]`` marker; lists longer than
    :attr:`MappingOptions.max_items` are cut. Nothing is dropped silently:
    each span counts its cuts in ``aitel.otlp.truncated_values`` /
    ``aitel.otlp.omitted_items`` and :class:`~aitel.otlp.model.PacketTrace`
    sums them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ._attributes import AttributeSet, as_bool, as_int, as_list, as_mapping, as_number, put_io
from .kinds import put_embedding, put_llm, put_reranker, put_retriever, put_tool
from .model import (
    InstrumentationScope,
    PacketTrace,
    SpanEvent,
    SpanKind,
    SpanLink,
    SpanRecord,
    StatusCode,
)

OPENINFERENCE_KIND = {
    "chain": "CHAIN",
    "llm": "LLM",
    "chat_model": "LLM",
    "retriever": "RETRIEVER",
    "tool": "TOOL",
    "agent": "AGENT",
    "embedding": "EMBEDDING",
    "reranker": "RERANKER",
    "custom": "CHAIN",
}
"""``step.kind`` -> ``openinference.span.kind`` (custom steps are application code: CHAIN)."""

_CLIENT_KINDS = frozenset({"llm", "chat_model", "embedding", "reranker"})

_UNKNOWN_ERROR = {"type": "Error", "message": "step failed"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class MappingOptions:
    """How much of a packet goes into span attributes."""

    max_value_chars: int = 32_768
    """Longest string attribute; longer values are cut with a visible marker."""
    max_items: int = 256
    """Most messages, documents, tool calls or tags per span; the rest are counted."""
    genai_messages: bool = True
    """Also write ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (JSON) on model spans."""


DEFAULT_OPTIONS = MappingOptions()


# -- ids and times ------------------------------------------------------------------


def trace_id_for(packet: Mapping[str, Any]) -> bytes:
    """The packet's ``trace_id`` as 16 bytes (derived from its ids if it is unusable)."""
    value = packet.get("trace_id")
    if isinstance(value, str) and len(value) == 32:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if raw and any(raw):
            return raw
    seed = str(packet.get("request_id") or packet.get("packet_id") or "")
    return _nonzero(hashlib.blake2b(seed.encode(), digest_size=16).digest())


def span_id_for(trace_id: bytes, step_id: str) -> bytes:
    """The span id of a step: the first 8 bytes of BLAKE2b(trace id + step id)."""
    return _nonzero(hashlib.blake2b(trace_id + step_id.encode(), digest_size=8).digest())


def request_span_id(trace_id: bytes) -> bytes:
    """The id of a synthetic request span (packets without a single root step)."""
    return span_id_for(trace_id, "aitel.request")


def _nonzero(raw: bytes) -> bytes:
    """All-zero ids are invalid in OpenTelemetry."""
    return raw if any(raw) else raw[:-1] + b"\x01"


def unix_nano(value: Any) -> int | None:
    """An ISO-8601 timestamp (``...Z`` or with offset) or datetime as Unix nanoseconds."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return ((moment - _EPOCH) // _MICROSECOND) * 1000


# -- the trace ---------------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    packet: Mapping[str, Any]
    options: MappingOptions
    trace_id: bytes
    span_ids: dict[str, bytes]
    request_start: int
    request_end: int
    truncated: int = 0


def packet_to_trace(
    packet: Mapping[str, Any], options: MappingOptions = DEFAULT_OPTIONS
) -> PacketTrace:
    """The spans of one packet, the request span first."""
    trace_id = trace_id_for(packet)
    steps = [
        s
        for s in as_list(packet.get("steps"))
        if isinstance(s, Mapping) and s.get("step_id") is not None
    ]
    span_ids = {str(s["step_id"]): span_id_for(trace_id, str(s["step_id"])) for s in steps}
    starts = [t for s in steps if (t := unix_nano(s.get("start_time"))) is not None]
    start = unix_nano(packet.get("timestamp"))
    start = min(starts, default=0) if start is None else start
    end = unix_nano(packet.get("end_time"))
    ctx = _Context(packet, options, trace_id, span_ids, start, start if end is None else end)

    parents = _parents(steps)
    roots = [s for s in steps if parents[str(s["step_id"])] is None]
    root_step = roots[0] if len(roots) == 1 else None

    spans: list[SpanRecord] = []
    if root_step is None:
        root_id = request_span_id(trace_id)
        spans.append(_synthetic_request_span(ctx, root_id))
        ordered = steps
    else:
        root_id = span_ids[str(root_step["step_id"])]
        ordered = [root_step, *(s for s in steps if s is not root_step)]
    for step in ordered:
        parent = parents[str(step["step_id"])]
        if parent is not None:
            parent_id = span_ids[parent]
        else:
            parent_id = b"" if step is root_step else root_id
        spans.append(_step_span(ctx, step, parent_id, is_request=step is root_step))

    producer = as_mapping(packet.get("producer"))
    integration = producer.get("integration")
    scope = (
        InstrumentationScope(f"aitel.{integration}", str(producer.get("integration_version") or ""))
        if integration
        else InstrumentationScope("aitel", str(producer.get("sdk_version") or ""))
    )
    return PacketTrace(str(packet.get("packet_id") or ""), scope, spans, ctx.truncated)


def _parents(steps: Sequence[Mapping[str, Any]]) -> dict[str, str | None]:
    """Each step's parent inside the packet; ``None`` for roots, unknown parents and cycles."""
    declared: dict[str, str | None] = {}
    for step in steps:
        parent = step.get("parent_id")
        declared[str(step["step_id"])] = None if parent is None else str(parent)
    resolved: dict[str, str | None] = {}
    for step_id, parent in declared.items():
        resolved[step_id] = parent if parent in declared and parent != step_id else None
    for step_id in declared:  # break cycles: a step whose ancestors loop becomes a root
        seen = {step_id}
        current = resolved[step_id]
        while current is not None:
            if current in seen:
                resolved[step_id] = None
                break
            seen.add(current)
            current = resolved[current]
    return resolved


def _synthetic_request_span(ctx: _Context, span_id: bytes) -> SpanRecord:
    packet = ctx.packet
    attrs = _attributes(ctx)
    metadata = as_mapping(packet.get("pipeline_metadata"))
    name = str(metadata.get("function_name") or "request")
    attrs.put("openinference.span.kind", "CHAIN")
    _put_session(ctx, attrs)
    attrs.put("gen_ai.operation.name", "invoke_workflow")
    attrs.put("gen_ai.workflow.name", name)
    payload = as_mapping(packet.get("payload"))
    put_io(attrs, "input", payload.get("input"))
    put_io(attrs, "output", payload.get("output"))
    span = SpanRecord(
        trace_id=ctx.trace_id,
        span_id=span_id,
        parent_span_id=b"",
        name=f"invoke_workflow {name}",
        kind=SpanKind.INTERNAL,
        start_time_unix_nano=ctx.request_start,
        end_time_unix_nano=max(ctx.request_end, ctx.request_start),
    )
    _request_attributes(ctx, attrs, span, None)
    span.attributes = _finish(ctx, attrs)
    return span


def _attributes(ctx: _Context) -> AttributeSet:
    return AttributeSet(ctx.options.max_value_chars, ctx.options.max_items)


def _finish(ctx: _Context, attrs: AttributeSet) -> dict[str, Any]:
    ctx.truncated += attrs.truncated
    return attrs.finish()


# -- one step ----------------------------------------------------------------------


def _step_span(
    ctx: _Context, step: Mapping[str, Any], parent_id: bytes, *, is_request: bool
) -> SpanRecord:
    kind = str(step.get("kind") or "custom")
    step_id = str(step["step_id"])
    name = str(step.get("name") or kind)
    start = unix_nano(step.get("start_time"))
    start = ctx.request_start if start is None else start
    end = unix_nano(step.get("end_time"))
    end = ctx.request_end if end is None else end

    attrs = _attributes(ctx)
    attrs.put("openinference.span.kind", OPENINFERENCE_KIND.get(kind, "UNKNOWN"))
    attrs.put("aitel.step.id", step_id)
    attrs.put("aitel.step.kind", kind)
    attrs.put("aitel.step.name", name)
    attrs.put("aitel.step.status", step.get("status"))
    _put_session(ctx, attrs)
    metadata = step.get("metadata")
    if isinstance(metadata, Mapping) and metadata and not is_request:
        attrs.put_json("metadata", dict(metadata))
    tags = [t for t in as_list(step.get("tags")) if isinstance(t, str)]
    if tags and not is_request:
        attrs.put("tag.tags", tags)

    span_name = name
    if kind in ("llm", "chat_model"):
        span_name = put_llm(attrs, step, name, genai_messages=ctx.options.genai_messages)
    elif kind == "retriever":
        span_name = put_retriever(attrs, step, name)
    elif kind == "reranker":
        put_reranker(attrs, step)
    elif kind == "tool":
        span_name = put_tool(attrs, step, name)
    elif kind == "embedding":
        span_name = put_embedding(attrs, step, name)
    elif kind == "agent":
        attrs.put("agent.name", name)
        attrs.put("gen_ai.operation.name", "invoke_agent")
        attrs.put("gen_ai.agent.name", name)
        span_name = f"invoke_agent {name}"
    elif is_request:
        attrs.put("gen_ai.operation.name", "invoke_workflow")
        attrs.put("gen_ai.workflow.name", name)
        span_name = f"invoke_workflow {name}"
    put_io(attrs, "input", step.get("input"), keep=True)
    put_io(attrs, "output", step.get("output"), keep=True)

    span = SpanRecord(
        trace_id=ctx.trace_id,
        span_id=ctx.span_ids[step_id],
        parent_span_id=parent_id,
        name=span_name,
        kind=SpanKind.CLIENT if kind in _CLIENT_KINDS else SpanKind.INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=max(end, start),
    )
    span.events.extend(_events(ctx, step))
    _link_requesting_step(ctx, step, span)
    if is_request:
        _request_attributes(ctx, attrs, span, step)
    else:
        error = step.get("error")
        if isinstance(error, Mapping):
            _put_error(attrs, span, error, span.end_time_unix_nano)
        elif step.get("status") == "FAILURE":
            _put_error(attrs, span, _UNKNOWN_ERROR, span.end_time_unix_nano)
        elif step.get("status") == "SUCCESS":
            span.status_code = StatusCode.OK
    span.attributes = _finish(ctx, attrs)
    return span


def _put_session(ctx: _Context, attrs: AttributeSet) -> None:
    metadata = as_mapping(ctx.packet.get("pipeline_metadata"))
    session = metadata.get("session_id")
    attrs.put("session.id", session)
    attrs.put("gen_ai.conversation.id", session)
    attrs.put("user.id", metadata.get("user_id"))


def _events(ctx: _Context, step: Mapping[str, Any]) -> list[SpanEvent]:
    events = []
    for event in as_list(step.get("events")):
        if not isinstance(event, Mapping):
            continue
        attrs = _attributes(ctx)
        if event.get("data") is not None:
            attrs.put_json("aitel.event.data", event["data"])
        at = unix_nano(event.get("time"))
        events.append(
            SpanEvent(
                str(event.get("name") or "event"),
                ctx.request_start if at is None else at,
                _finish(ctx, attrs),
            )
        )
    return events


def _link_requesting_step(ctx: _Context, step: Mapping[str, Any], span: SpanRecord) -> None:
    """A tool span links to the model span whose tool call it answers."""
    tool = as_mapping(step.get("tool"))
    requested_by = tool.get("requested_by_step_id")
    if requested_by is not None and str(requested_by) in ctx.span_ids:
        link = SpanLink(
            ctx.trace_id, ctx.span_ids[str(requested_by)], {"aitel.link": "tool_call_requested_by"}
        )
        span.links.append(link)


def _put_error(attrs: AttributeSet, span: SpanRecord, error: Mapping[str, Any], at: int) -> None:
    error_type = str(error.get("type") or "Error")
    message = str(error.get("message") or "")
    span.status_code = StatusCode.ERROR
    span.status_message = attrs.text(f"{error_type}: {message}" if message else error_type)
    attrs.put("error.type", error_type)
    event = AttributeSet(attrs.max_value_chars, attrs.max_items)
    event.put("exception.type", error_type)
    event.put("exception.message", message)
    event.put("exception.stacktrace", error.get("traceback"))
    span.events.append(SpanEvent("exception", at, event.finish()))
    attrs.truncated += event.truncated


# -- the request -------------------------------------------------------------------


def _request_attributes(
    ctx: _Context, attrs: AttributeSet, span: SpanRecord, step: Mapping[str, Any] | None
) -> None:
    packet = ctx.packet
    meta = as_mapping(packet.get("pipeline_metadata"))
    attrs.put("aitel.packet_id", packet.get("packet_id"))
    attrs.put("aitel.request_id", packet.get("request_id"))
    attrs.put("aitel.schema_version", packet.get("schema_version"))
    attrs.put("aitel.status", packet.get("status"))
    for key in (
        "ab_variant",
        "model_version",
        "preprocessing_version",
        "app_version",
        "environment",
        "model_name",
        "model_provider",
        "function_name",
    ):
        attrs.put(f"aitel.{key}", meta.get(key))

    metadata = dict(as_mapping(step.get("metadata")) if step is not None else {})
    metadata.update(as_mapping(meta.get("metadata")))
    if metadata:
        attrs.put_json("metadata", metadata)
    tags = [t for t in as_list(meta.get("tags")) if isinstance(t, str)]
    if step is not None:
        tags += [t for t in as_list(step.get("tags")) if isinstance(t, str) and t not in tags]
    if tags:
        attrs.put("tag.tags", tags)

    perf = as_mapping(packet.get("performance"))
    attrs.put("aitel.latency_ms", as_number(perf.get("latency_ms")))
    attrs.put("aitel.time_to_first_token_ms", as_number(perf.get("time_to_first_token_ms")))
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        attrs.put(f"aitel.usage.{key}", as_int(perf.get(key)))
    attrs.put("aitel.usage.complete", as_bool(perf.get("token_usage_complete")))
    attrs.put("aitel.cost_usd", as_number(perf.get("cost_usd")))
    attrs.put("aitel.cost_complete", as_bool(perf.get("cost_complete")))
    for key in ("llm_calls", "tool_calls", "retries"):
        attrs.put(f"aitel.{key}", as_int(perf.get(key)))

    processing = as_mapping(packet.get("processing"))
    attrs.put("aitel.processing.truncated_values", as_int(processing.get("truncated_values")))
    redactions = as_mapping(processing.get("redactions"))
    if redactions:
        attrs.put_json("aitel.processing.redactions", dict(redactions))
    attrs.put("aitel.processing.sample_rate", as_number(processing.get("sample_rate")))

    error = packet.get("error")
    if not isinstance(error, Mapping) and step is not None:
        error = step.get("error")
    if not isinstance(error, Mapping) and packet.get("status") == "FAILURE":
        error = {"type": "Error", "message": packet.get("error_message") or "request failed"}
    if not isinstance(error, Mapping):
        if packet.get("status") == "SUCCESS":
            span.status_code = StatusCode.OK
        return
    _put_error(attrs, span, error, span.end_time_unix_nano)
    origin = error.get("step_id")
    if origin is not None:
        attrs.put("aitel.error.step_id", str(origin))
        attrs.put("aitel.error.step_name", error.get("step_name"))
        attrs.put("aitel.error.step_kind", error.get("step_kind"))
