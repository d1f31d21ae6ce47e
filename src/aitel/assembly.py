"""Turn a finished :class:`~aitel.builder.TraceRecord` into a packet dict.

This runs on the export worker, never on the application's thread. The
framework's :class:`~aitel.builder.Interpreter` fills each step's input,
output and kind-specific sections from the recorded objects; this module
adds what is common to all frameworks: ids, times, statuses, errors, cost,
totals and pipeline metadata.
"""

from __future__ import annotations

import math
import re
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from ._ids import new_id, new_trace_id, trace_id_from_uuid
from ._version import __version__
from .builder import RunRecord, TraceOptions, TraceRecord
from .jsonable import DEFAULT_LIMITS, Converter, Limits, safe_str, truncate_text
from .pricing import PricingTable
from .redaction.keys import is_credential_key
from .schema import (
    LLM_KINDS,
    SCHEMA_VERSION,
    EmbeddingData,
    LLMData,
    RetrievalData,
    ToolData,
)

SESSION_KEYS = ("session_id", "thread_id", "conversation_id", "langfuse_session_id", "session")
USER_KEYS = ("user_id", "langfuse_user_id", "userId", "user")
REQUEST_ID_KEYS = ("request_id", "aitel_request_id", "x_request_id")
VARIANT_KEYS = ("ab_variant", "variant", "experiment_variant")
MAX_TRACEBACK_CHARS = 20_000
_HEX32 = re.compile(r"[0-9a-f]{32}")


@dataclass(slots=True)
class AssemblyContext:
    """Shared state while assembling one packet."""

    trace: TraceRecord
    pricing: PricingTable
    limits: Limits = DEFAULT_LIMITS
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    jsonable: Converter = field(init=False)
    """JSON-safe data within the limits; cuts are counted for the packet."""
    clock_offset_ns: int = field(init=False)
    """Add to a perf-counter reading to get Unix nanoseconds."""

    def __post_init__(self) -> None:
        self.jsonable = Converter(self.limits)
        self.clock_offset_ns = self.trace.wall_start_ns - self.trace.perf_start_ns

    @property
    def options(self) -> TraceOptions:
        return self.trace.options

    @property
    def truncated(self) -> int:
        """How many values were cut to fit the limits so far."""
        return self.jsonable.cut


class NeutralInterpreter:
    """Reads steps recorded through aitel's own API (``trace``, ``observe``).

    Kind-specific data arrives already neutral in ``record.attrs`` under the
    keys ``llm``, ``retrieval``, ``tool`` and ``embedding``.
    """

    def fill_step(self, record: RunRecord, step: dict[str, Any], context: Any) -> None:
        ctx: AssemblyContext = context
        step["input"] = ctx.jsonable(record.inputs)
        step["output"] = ctx.jsonable(record.outputs)
        attrs = record.attrs or {}
        for section in ("llm", "retrieval", "tool", "embedding"):
            value = attrs.get(section)
            if isinstance(value, Mapping):
                step[section] = ctx.jsonable(dict(value))
        tool = step.get("tool")
        if isinstance(tool, dict) and "name" not in tool:
            tool["name"] = record.name
        for section, model in _SECTION_MODELS.items():
            if isinstance(step.get(section), dict):
                _check_section(step, section, model)


NEUTRAL = NeutralInterpreter()

_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "llm": LLMData,
    "retrieval": RetrievalData,
    "tool": ToolData,
    "embedding": EmbeddingData,
}
_INVALID_NOTE = "aitel.invalid_fields"


def _check_section(step: dict[str, Any], section: str, model: type[BaseModel]) -> None:
    """Keep what the schema accepts of a section the application described (``set_llm``...).

    Values are coerced the schema's way (``"12"`` tokens become 12); a field
    the schema refuses is left out, and named under the step's metadata
    ``aitel.invalid_fields``, rather than failing the whole packet.
    """
    value = step[section]
    dropped: list[str] = []
    for _ in range(3):
        try:
            checked = model.model_validate(value)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                dropped.append(_drop(value, error["loc"], section))
            continue
        step[section] = checked.model_dump(mode="json", exclude_unset=True)
        break
    else:
        del step[section]
        dropped.append(section)
    if dropped:
        metadata = step.get("metadata")
        if not isinstance(metadata, dict):
            metadata = step["metadata"] = {}
        metadata[_INVALID_NOTE] = sorted(set(dropped))


def _drop(value: dict[str, Any], loc: tuple[str | int, ...], section: str) -> str:
    """Remove the field at ``loc`` (at most two levels down); its dotted path."""
    first = loc[0] if loc else None
    if isinstance(first, str) and first in value:
        inner = value[first]
        second = loc[1] if len(loc) > 1 else None
        if isinstance(inner, dict) and isinstance(second, str) and second in inner:
            del inner[second]
            return f"{section}.{first}.{second}"
        del value[first]
        return f"{section}.{first}"
    return section


_second_prefix: tuple[int, str] = (-1, "")


def iso(ns: int) -> str:
    """Unix nanoseconds as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    global _second_prefix
    seconds, rest = divmod(ns, 1_000_000_000)
    cached_second, prefix = _second_prefix
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_prefix = (seconds, prefix)
    return f"{prefix}.{rest // 1000:06d}Z"


def error_info(error: BaseException | str, record: RunRecord | None) -> dict[str, Any]:
    if isinstance(error, BaseException):
        tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        info: dict[str, Any] = {
            "type": type(error).__name__,
            "message": truncate_text(safe_str(error), 10_000),
            "traceback": truncate_text(tb, MAX_TRACEBACK_CHARS),
        }
    else:
        info = {
            "type": "Error",
            "message": truncate_text(safe_str(error), 10_000),
            "traceback": None,
        }
    if record is not None:
        info["step_id"] = str(record.run_id)
        info["step_name"] = record.name
        info["step_kind"] = record.kind
    return info


def _ms(start_ns: int, end_ns: int | None) -> float | None:
    return None if end_ns is None else round((end_ns - start_ns) / 1e6, 3)


def build_packet(
    trace: TraceRecord, pricing: PricingTable, limits: Limits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """The packet dict for a finished trace."""
    ctx = AssemblyContext(trace, pricing, limits)
    root = trace.root
    assert root is not None
    interpreter = trace.interpreter or NEUTRAL
    last_ns = max(
        (r.end_ns if r.end_ns is not None else r.start_ns for r in trace.records),
        default=root.start_ns,
    )
    root_end = root.end_ns if root.end_ns is not None else last_ns
    # A streamed response can outlive its root call: the request ends with the stream.
    request_end = max(root_end, last_ns) if trace.wait_for_children else root_end

    steps: list[dict[str, Any]] = []
    for record in trace.records:
        step = _step(record, ctx, record.interpreter or interpreter, request_end)
        steps.append(step)
    _link_tool_calls(steps)

    options = trace.options
    root_step = steps[0]
    error = _request_error(trace, steps)
    metadata = _pipeline_metadata(ctx, root, steps)
    packet_id = new_id()
    request_id = options.request_id or metadata.pop("_request_id", None) or packet_id
    metadata.pop("_request_id", None)
    performance = _performance(trace, root, request_end, steps)

    packet: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "packet_id": packet_id,
        "request_id": request_id,
        "trace_id": _trace_id(request_id),
        "timestamp": iso(trace.wall_ns(root.start_ns)),
        "end_time": iso(trace.wall_ns(request_end)),
        "status": "FAILURE" if error is not None else "SUCCESS",
        "error_message": error["message"] if error is not None else None,
        "error": error,
        "pipeline_metadata": metadata,
        "payload": {"input": _payload_input(root_step), "output": _payload_output(root_step)},
        "steps": steps,
        "performance": performance,
        "model_internals": {"logprobs": ctx.logprobs} if ctx.logprobs else None,
        "producer": {
            "sdk": "aitel",
            "sdk_version": __version__,
            "integration": options.integration,
            "integration_version": options.integration_version,
        },
        "processing": None,
    }
    if ctx.truncated:
        packet["processing"] = {
            "redactions": {},
            "truncated_values": ctx.truncated,
            "sample_rate": None,
        }
    return packet


def _payload_input(root_step: dict[str, Any]) -> Any:
    """The request's input; for a bare model call, its prompt."""
    if root_step.get("input") is None and isinstance(root_step.get("llm"), dict):
        llm = root_step["llm"]
        return llm.get("messages") if llm.get("messages") is not None else llm.get("prompts")
    return root_step.get("input")


def _payload_output(root_step: dict[str, Any]) -> Any:
    """The request's output; for a bare retrieval, the documents it found.

    A retriever step keeps its documents under ``retrieval`` only (not twice).
    """
    output = root_step.get("output")
    if output is None and isinstance(root_step.get("retrieval"), dict):
        return root_step["retrieval"].get("documents")
    return output


def _trace_id(request_id: str) -> str:
    candidate = trace_id_from_uuid(request_id)
    if _HEX32.fullmatch(candidate):
        return candidate
    return new_trace_id()


def _step(
    record: RunRecord, ctx: AssemblyContext, interpreter: Any, request_end: int
) -> dict[str, Any]:
    offset = ctx.clock_offset_ns
    end_ns = record.end_ns if record.end_ns is not None else request_end
    if record.error is not None:
        status = "FAILURE"
    elif record.end_ns is None:
        status = "INCOMPLETE"
    else:
        status = "SUCCESS"
    events = record.events
    step: dict[str, Any] = {
        "step_id": str(record.run_id),
        "parent_id": None if record.parent_id is None else str(record.parent_id),
        "kind": record.kind,
        "name": record.name,
        "start_time": iso(record.start_ns + offset),
        "end_time": iso(end_ns + offset),
        "duration_ms": _ms(record.start_ns, end_ns),
        "status": status,
        "error": None if record.error is None else error_info(record.error, None),
        "input": None,
        "output": None,
        "tags": _tags(record.tags),
        "metadata": _metadata(record, ctx),
        "llm": None,
        "retrieval": None,
        "tool": None,
        "embedding": None,
        "events": [
            {"name": name, "time": iso(at + offset), "data": ctx.jsonable(data)}
            for name, at, data in events
        ]
        if events
        else [],
    }
    try:
        interpreter.fill_step(record, step, ctx)
    except Exception as exc:  # a converter bug must not lose the packet
        step["metadata"]["aitel.interpretation_error"] = f"{type(exc).__name__}: {exc}"
    if record.kind in LLM_KINDS:
        _finish_llm_step(record, step, ctx)
    return step


def _finish_llm_step(record: RunRecord, step: dict[str, Any], ctx: AssemblyContext) -> None:
    llm = step.get("llm")
    if not isinstance(llm, dict):
        llm = {}
        step["llm"] = llm
    llm.setdefault("model_name", None)
    llm.setdefault("tool_calls", [])
    params = llm.get("invocation_params")
    llm["invocation_params"] = _without_credentials(params) if isinstance(params, dict) else {}
    if record.first_token_ns is not None:
        llm["time_to_first_token_ms"] = _ms(record.start_ns, record.first_token_ns)
        llm["streamed"] = True
        llm["chunks"] = record.chunks
    else:
        llm.setdefault("time_to_first_token_ms", None)
        llm.setdefault("streamed", False)
    usage = llm.get("usage")
    if not isinstance(usage, dict) or all(v is None for v in usage.values()):
        llm["usage"] = None
        usage = None
    elif usage.get("total_tokens") is None:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if prompt is not None and completion is not None:
            usage["total_tokens"] = prompt + completion
    model = llm.get("model_name") or ctx.options.model_name
    price = ctx.pricing.price_for(model) if model else None
    if llm.get("cost_usd") is None:
        llm["cost_usd"] = (
            price.cost(
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
                usage.get("cached_prompt_tokens"),
                usage.get("cache_creation_tokens"),
            )
            if price is not None and usage is not None
            else None
        )
    if llm.get("provider") is None and price is not None:
        llm["provider"] = price.provider
    tokens = llm.pop("logprobs_tokens", None)
    if isinstance(tokens, list) and tokens:
        llm["logprobs"] = logprob_summary(tokens)
        if ctx.options.capture_logprobs:
            ctx.logprobs.append(
                {"step_id": step["step_id"], "model_name": llm.get("model_name"), "tokens": tokens}
            )
    else:
        llm.setdefault("logprobs", None)


def logprob_summary(tokens: list[dict[str, Any]]) -> dict[str, Any]:
    values = [t["logprob"] for t in tokens if isinstance(t.get("logprob"), int | float)]
    if not values:
        return {
            "tokens": len(tokens),
            "mean_logprob": None,
            "min_logprob": None,
            "perplexity": None,
        }
    mean = sum(values) / len(values)
    return {
        "tokens": len(tokens),
        "mean_logprob": round(mean, 6),
        "min_logprob": round(min(values), 6),
        "perplexity": round(math.exp(-mean), 6) if mean > -700 else None,
    }


def _without_credentials(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if not (isinstance(k, str) and is_credential_key(k))}


def _link_tool_calls(steps: list[dict[str, Any]]) -> None:
    requested: dict[str, str] = {}
    for step in steps:
        llm = step.get("llm")
        if isinstance(llm, dict):
            for call in llm.get("tool_calls") or ():
                call_id = call.get("id") if isinstance(call, dict) else None
                if call_id:
                    requested[str(call_id)] = step["step_id"]
    for step in steps:
        tool = step.get("tool")
        if isinstance(tool, dict) and tool.get("requested_by_step_id") is None:
            call_id = tool.get("tool_call_id")
            tool["requested_by_step_id"] = requested.get(str(call_id)) if call_id else None


def _request_error(trace: TraceRecord, steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    root = trace.root
    assert root is not None
    if root.error is None:
        if trace.abandoned is None:
            return None
        return {
            "type": "IncompleteRequest",
            "message": f"request abandoned: {trace.abandoned}",
            "traceback": None,
            "step_id": str(root.run_id),
            "step_name": root.name,
            "step_kind": root.kind,
        }
    origin = _failure_origin(trace)
    info = error_info(root.error, origin)
    if origin is not None and origin.error is not root.error and origin.error is not None:
        # The root failed with a different exception than its origin (wrapped):
        # keep the root's message, point at where it started.
        info["message"] = truncate_text(safe_str(root.error), 10_000)
    return info


def _failure_origin(trace: TraceRecord) -> RunRecord | None:
    """The failed run where the request's error arose: the earliest to fail."""
    root = trace.root
    failed = [r for r in trace.records if r.error is not None and r.end_ns is not None]
    if not failed:
        return root
    same = [r for r in failed if root is not None and r.error is root.error]
    candidates = same or failed
    return min(candidates, key=lambda r: (r.end_ns or 0, -r.start_ns))


def _performance(
    trace: TraceRecord, root: RunRecord, request_end: int, steps: list[dict[str, Any]]
) -> dict[str, Any]:
    prompt = completion = total = None
    complete = True
    llm_calls = tool_calls = retries = priced = 0
    cost = 0.0
    for step in steps:
        kind = step["kind"]
        if kind == "tool":
            tool_calls += 1
        llm = step.get("llm")
        if kind in LLM_KINDS and isinstance(llm, dict):
            llm_calls += 1
            usage = llm.get("usage")
            if isinstance(usage, dict):
                value = usage.get("prompt_tokens")
                if isinstance(value, int):
                    prompt = value + (prompt or 0)
                value = usage.get("completion_tokens")
                if isinstance(value, int):
                    completion = value + (completion or 0)
                value = usage.get("total_tokens")
                if isinstance(value, int):
                    total = value + (total or 0)
            elif usage is None:
                complete = False
            step_cost = llm.get("cost_usd")
            if isinstance(step_cost, int | float):
                cost += step_cost
                priced += 1
        events = step.get("events")
        if events:
            retries += sum(1 for e in events if e.get("name") == "retry")
        tags = step.get("tags")
        if tags and any(t.startswith("retry:attempt:") for t in tags):
            retries += 1
    first_tokens = [r.first_token_ns for r in trace.records if r.first_token_ns is not None]
    return {
        "latency_ms": _ms(root.start_ns, request_end) or 0.0,
        "time_to_first_token_ms": _ms(root.start_ns, min(first_tokens)) if first_tokens else None,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "token_usage_complete": complete,
        "cost_usd": round(cost, 10) if priced else None,
        "cost_complete": priced == llm_calls,
        "llm_calls": llm_calls,
        "tool_calls": tool_calls,
        "retries": retries,
    }


def _tags(tags: Any) -> list[str]:
    if not tags:
        return []
    if isinstance(tags, str):
        return [tags]
    if isinstance(tags, Iterable):
        return [t if isinstance(t, str) else safe_str(t) for t in tags]
    return [safe_str(tags)]


_FRAMEWORK_NOISE = ("ls_", "lc_")


def _metadata(record: RunRecord, ctx: AssemblyContext) -> dict[str, Any]:
    """A step's own metadata: what it inherited from the root is shown once, on the root."""
    metadata = record.metadata
    if not metadata or not isinstance(metadata, Mapping):
        return {} if not metadata else {"value": ctx.jsonable(metadata)}
    root = ctx.trace.root
    inherited = root.metadata if root is not None and root is not record else None
    if not isinstance(inherited, Mapping):
        inherited = {}
    own = {
        k: v
        for k, v in metadata.items()
        if not (isinstance(k, str) and k.startswith(_FRAMEWORK_NOISE))
        and not (k in inherited and inherited[k] is v)
    }
    if not own:
        return {}
    value = ctx.jsonable(own)
    return value if isinstance(value, dict) else {"value": value}


def _pipeline_metadata(
    ctx: AssemblyContext, root: RunRecord, steps: list[dict[str, Any]]
) -> dict[str, Any]:
    options = ctx.trace.options
    root_meta = root.metadata if isinstance(root.metadata, Mapping) else {}
    merged: dict[str, Any] = {**options.metadata, **root_meta}

    def pick(explicit: str | None, keys: Iterable[str]) -> str | None:
        if explicit:
            return explicit
        for key in keys:
            value = merged.get(key)
            if value is not None and value != "":
                return safe_str(value)
        return None

    first_llm = next(
        (s["llm"] for s in steps if s["kind"] in LLM_KINDS and isinstance(s.get("llm"), dict)),
        None,
    )
    model_name = options.model_name or pick(None, ("model_name", "ls_model_name"))
    if model_name is None and first_llm is not None:
        model_name = first_llm.get("model_name")
    provider = options.model_provider or pick(None, ("model_provider", "ls_provider"))
    if provider is None and first_llm is not None:
        provider = first_llm.get("provider")
    tags = list(dict.fromkeys([*options.tags, *_tags(root.tags)]))
    free = {k: v for k, v in merged.items() if not (isinstance(k, str) and k.startswith("ls_"))}
    result: dict[str, Any] = {
        "model_name": model_name,
        "model_version": pick(options.model_version, ("model_version",)),
        "model_provider": provider,
        "function_name": root.name,
        "ab_variant": pick(options.ab_variant, VARIANT_KEYS),
        "preprocessing_version": pick(options.preprocessing_version, ("preprocessing_version",)),
        "app_version": pick(options.app_version, ("app_version",)),
        "environment": pick(options.environment, ("environment", "env")),
        "session_id": pick(options.session_id, SESSION_KEYS),
        "user_id": pick(options.user_id, USER_KEYS),
        "tags": tags,
        "metadata": ctx.jsonable(free),
        "_request_id": pick(None, REQUEST_ID_KEYS),
    }
    return result
