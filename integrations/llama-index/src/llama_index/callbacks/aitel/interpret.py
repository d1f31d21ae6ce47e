"""Read LlamaIndex objects into packet fields, on the export worker.

Where the data is (llama-index-core 0.14):

* model call: the start event (``messages`` or ``prompt``, ``additional_kwargs``,
  ``model_dict``) and the response (``ChatResponse`` / ``CompletionResponse``):
  text, ``raw`` (provider response: model, usage, finish reason),
  ``additional_kwargs`` (token counts some integrations copy there),
  ``logprobs`` (one list of candidates per generated token) and, for chat,
  tool calls as ``ToolCallBlock`` blocks or ``additional_kwargs["tool_calls"]``;
* retrieval: ``NodeWithScore`` (node id, score, metadata, text);
* agents: ``ToolCall`` / ``ToolCallResult`` workflow events, ``AgentOutput``
  (tool calls with ids, also for ReAct agents whose model returns text).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    LogProb,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    PydanticResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle
from llama_index.core.tools.types import ToolOutput
from workflows.events import Event as WorkflowEvent
from workflows.events import StopEvent

from aitel.assembly import AssemblyContext
from aitel.builder import RunRecord, TraceRecord
from aitel.jsonable import register_encoder, safe_str

from .streams import AsyncTokenStream, StreamedText, TokenStream

_SOURCE_KEYS = ("source", "file_path", "file_name", "url", "filename", "title")
_MODEL_KEYS = ("model", "model_name", "model_id", "deployment_name")
_UNKNOWN_MODELS = frozenset({"", "unknown"})
_PARAM_SKIP = frozenset({"class_name", "callback_manager", "system_prompt", "tools"})


# -- converters (also registered as encoders) ------------------------------------


def _role(message: ChatMessage) -> str:
    role = message.role
    return str(getattr(role, "value", role))


def tool_call_to_dict(call: Any) -> dict[str, Any] | None:
    """A requested tool call in the packet's shape, from any of LlamaIndex's shapes."""
    if isinstance(call, ToolCallBlock):
        return {
            "id": call.tool_call_id,
            "name": call.tool_name,
            "arguments": _args(call.tool_kwargs),
        }
    if isinstance(call, ToolSelection):
        return {"id": call.tool_id, "name": call.tool_name, "arguments": _args(call.tool_kwargs)}
    function = _get(call, "function")
    if function is not None:  # OpenAI's shape
        return {
            "id": _get(call, "id"),
            "name": safe_str(_get(function, "name") or ""),
            "arguments": _args(_get(function, "arguments")),
        }
    name = _get(call, "name") or _get(call, "tool_name")
    if name is None:
        return None
    return {
        "id": _get(call, "id") or _get(call, "tool_call_id") or _get(call, "tool_id"),
        "name": safe_str(name),
        "arguments": _args(_get(call, "args") or _get(call, "arguments") or _get(call, "input")),
    }


def message_tool_calls(message: ChatMessage) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    seen: set[Any] = set()
    candidates: list[Any] = [b for b in message.blocks if isinstance(b, ToolCallBlock)]
    extra = message.additional_kwargs.get("tool_calls")
    if isinstance(extra, Sequence) and not isinstance(extra, str):
        candidates.extend(extra)
    for candidate in candidates:
        call = tool_call_to_dict(candidate)
        if call is None:
            continue
        key = call["id"] or (call["name"], safe_str(call["arguments"]))
        if key in seen:
            continue
        seen.add(key)
        calls.append(call)
    return calls


def _content(message: ChatMessage) -> Any:
    blocks = message.blocks
    if all(isinstance(b, TextBlock | ToolCallBlock) for b in blocks):
        return message.content
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ToolCallBlock):
            continue
        else:
            part: dict[str, Any] = {"type": str(getattr(block, "block_type", "block"))}
            for key in ("url", "path", "image_mimetype", "audio_mimetype", "title", "content"):
                value = getattr(block, key, None)
                if isinstance(value, str) and value:
                    part[key] = value
            parts.append(part)
    return parts


def message_to_dict(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": _role(message), "content": _content(message)}
    extra = message.additional_kwargs
    name = extra.get("name")
    if isinstance(name, str) and name:
        out["name"] = name
    tool_call_id = extra.get("tool_call_id")
    if tool_call_id is not None:
        out["tool_call_id"] = safe_str(tool_call_id)
    calls = message_tool_calls(message)
    if calls:
        out["tool_calls"] = calls
    return out


def node_to_document(item: NodeWithScore | BaseNode) -> dict[str, Any]:
    node = item.node if isinstance(item, NodeWithScore) else item
    score = item.score if isinstance(item, NodeWithScore) else None
    metadata = dict(node.metadata or {})
    source = next((metadata[k] for k in _SOURCE_KEYS if metadata.get(k)), None)
    if source is None:
        source = node.ref_doc_id
    try:
        content: Any = node.get_content(metadata_mode=MetadataMode.NONE)
    except Exception:
        content = getattr(node, "text", None)
    return {
        "id": node.node_id,
        "score": float(score) if isinstance(score, int | float) else None,
        "source": None if source is None else safe_str(source),
        "content": content,
        "metadata": metadata,
    }


def query_text(value: Any) -> Any:
    if isinstance(value, QueryBundle):
        return value.query_str
    return value


def response_value(value: Any) -> Any:
    """The answer a query, synthesizer or chat engine returned."""
    if isinstance(value, Response):
        return value.response
    if isinstance(value, StreamingResponse | AsyncStreamingResponse):
        if value.response_txt is not None:
            return value.response_txt
        gen = value.response_gen
        if isinstance(gen, TokenStream | AsyncTokenStream):
            return gen.output.text
        return None
    if isinstance(value, PydanticResponse):
        return value.response
    if isinstance(value, StreamedText):
        return value.text
    if isinstance(value, ChatResponse):
        return value.message.content
    if isinstance(value, CompletionResponse):
        return value.text
    if isinstance(value, ToolOutput):
        return value.content
    if isinstance(value, StopEvent):
        return response_value(value.result)
    if type(value).__name__ == "AgentOutput":
        return getattr(value, "response", None) and value.response.content
    response = getattr(value, "response", None)  # AgentChatResponse and friends
    if isinstance(response, str):
        return response
    return value


def event_to_dict(event: Any) -> Any:
    """A workflow event's fields (declared and dynamic), without pydantic's deep dump."""
    if type(event) is StopEvent:
        return event.result
    out: dict[str, Any] = {}
    fields = getattr(type(event), "model_fields", {})
    for name, info in fields.items():
        if getattr(info, "exclude", False):
            continue
        out[name] = getattr(event, name, None)
    data = getattr(event, "_data", None)
    if isinstance(data, Mapping):
        out.update(data)
    return out


def _logprob(lp: LogProb) -> dict[str, Any]:
    return {"token": lp.token, "logprob": lp.logprob}


register_encoder(ChatMessage, message_to_dict)
register_encoder(ChatResponse, lambda r: message_to_dict(r.message))
register_encoder(CompletionResponse, lambda r: r.text)
register_encoder(NodeWithScore, node_to_document)
register_encoder(BaseNode, node_to_document)
register_encoder(QueryBundle, lambda q: q.query_str)
register_encoder(Response, response_value)
register_encoder(StreamingResponse, response_value)
register_encoder(AsyncStreamingResponse, response_value)
register_encoder(PydanticResponse, response_value)
register_encoder(StreamedText, lambda s: s.text)
register_encoder(ToolOutput, lambda t: t.content)
register_encoder(LogProb, _logprob)
register_encoder(ToolCallBlock, tool_call_to_dict)
register_encoder(ToolSelection, tool_call_to_dict)
register_encoder(WorkflowEvent, event_to_dict)


# -- small readers -------------------------------------------------------------------


def _get(source: Any, key: str) -> Any:
    if source is None:
        return None
    if isinstance(source, Mapping):
        return source.get(key)
    try:
        return getattr(source, key, None)
    except Exception:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _first_int(source: Any, keys: Sequence[str]) -> int | None:
    for key in keys:
        value = _int(_get(source, key))
        if value is not None:
            return value
    return None


def _first_str(source: Any, keys: Sequence[str]) -> str | None:
    for key in keys:
        value = _get(source, key)
        if isinstance(value, str) and value:
            return value
    return None


def _args(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def usage_from(response: Any) -> dict[str, Any] | None:
    """Token counts of a model response; None when the provider reported none."""
    raw = _get(response, "raw")
    sources = [
        _get(raw, "usage"),
        _get(raw, "usage_metadata"),
        raw,
        _get(response, "additional_kwargs"),
    ]
    for source in sources:
        if source is None:
            continue
        usage = _usage(source)
        if usage is not None:
            return usage
    return None


def _usage(source: Any) -> dict[str, Any] | None:
    prompt = _first_int(
        source, ("prompt_tokens", "input_tokens", "prompt_token_count", "prompt_eval_count")
    )
    completion = _first_int(
        source,
        ("completion_tokens", "output_tokens", "candidates_token_count", "eval_count"),
    )
    total = _first_int(source, ("total_tokens", "total_token_count"))
    if prompt is None and completion is None and total is None:
        return None
    cached = _first_int(_get(source, "prompt_tokens_details"), ("cached_tokens",))
    if cached is None:
        cached = _first_int(source, ("cache_read_input_tokens", "cached_content_token_count"))
    if cached is None:
        cached = _first_int(_get(source, "input_token_details"), ("cache_read",))
    reasoning = _first_int(_get(source, "completion_tokens_details"), ("reasoning_tokens",))
    if reasoning is None:
        reasoning = _first_int(_get(source, "output_token_details"), ("reasoning",))
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "cached_prompt_tokens": cached,
        "cache_creation_tokens": _first_int(source, ("cache_creation_input_tokens",)),
        "reasoning_tokens": reasoning,
    }
    return usage


def finish_reason_from(response: Any) -> str | None:
    raw = _get(response, "raw")
    choices = _get(raw, "choices")
    if isinstance(choices, Sequence) and not isinstance(choices, str) and choices:
        reason = _get(choices[0], "finish_reason")
        if isinstance(reason, str) and reason:
            return reason
    candidates = _get(raw, "candidates")  # Gemini
    if isinstance(candidates, Sequence) and not isinstance(candidates, str) and candidates:
        reason = _get(candidates[0], "finish_reason")
        if reason is not None:
            return safe_str(getattr(reason, "name", reason))
    return _first_str(raw, ("finish_reason", "stop_reason", "done_reason")) or _first_str(
        _get(response, "additional_kwargs"), ("finish_reason", "stop_reason", "done_reason")
    )


def logprob_tokens(response: Any) -> list[dict[str, Any]] | None:
    """``[[LogProb, ...], ...]`` (candidates per generated token) -> packet tokens.

    The first candidate of each position is taken as the generated token, as
    LlamaIndex's provider integrations list it first.
    """
    positions = _get(response, "logprobs")
    if not isinstance(positions, Sequence) or not positions:
        return None
    tokens: list[dict[str, Any]] = []
    for position in positions:
        candidates = [position] if isinstance(position, LogProb) else position
        if not isinstance(candidates, Sequence) or not candidates:
            continue
        first = candidates[0]
        tokens.append(
            {
                "token": safe_str(_get(first, "token") or ""),
                "logprob": _get(first, "logprob"),
                "bytes": list(_get(first, "bytes") or []) or None,
                "top_logprobs": [
                    {"token": safe_str(_get(c, "token") or ""), "logprob": _get(c, "logprob")}
                    for c in candidates
                ],
            }
        )
    return tokens or None


def _provider(instance: Any) -> str | None:
    module = type(instance).__module__ if instance is not None else ""
    prefix = "llama_index.llms."
    if module.startswith(prefix):
        return module[len(prefix) :].split(".", 1)[0].replace("_", "-")
    prefix = "llama_index.embeddings."
    if module.startswith(prefix):
        return module[len(prefix) :].split(".", 1)[0].replace("_", "-")
    return None


def _instance_model(instance: Any, model_dict: Any) -> str | None:
    """The model an LLM object names when its start event said "unknown"."""
    if not (isinstance(model_dict, Mapping) and "model_name" in model_dict):
        # the event's model_dict is the LLM's metadata unless a subclass overrode it
        try:
            metadata = instance.metadata  # built anew on each access
        except Exception:
            metadata = None
        name = _get(metadata, "model_name")
        if isinstance(name, str) and name not in _UNKNOWN_MODELS:
            return name
    name = _model_attribute(instance)
    return name if name not in _UNKNOWN_MODELS else None


_class_attributes: dict[type, frozenset[str]] = {}


def _model_attribute(instance: Any) -> str | None:
    """The first model-naming attribute of ``instance``, without asking for missing ones.

    A pydantic model answers a missing attribute through ``__getattr__`` and an
    exception, slowly. Instance fields are read from ``__dict__``; properties
    and other class attributes (found once per class) are asked for.
    """
    fields = getattr(instance, "__dict__", None)
    if not isinstance(fields, dict):
        fields = {}
    cls = type(instance)
    on_class = _class_attributes.get(cls)
    if on_class is None:
        on_class = _class_attributes[cls] = frozenset(k for base in cls.__mro__ for k in vars(base))
    for key in _MODEL_KEYS:
        if key in fields:
            value = fields[key]
        elif key in on_class:
            value = _get(instance, key)
        else:
            continue
        if isinstance(value, str) and value:
            return value
    return None


def _params(model_dict: Any, kwargs: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for source in (model_dict, kwargs):
        if not isinstance(source, Mapping):
            continue
        for key, value in source.items():
            if key in _PARAM_SKIP or not isinstance(key, str):
                continue
            cls = type(value)
            if value is None or cls is str or cls is int or cls is float or cls is bool:
                params[key] = value
            elif isinstance(value, str | int | float):  # enums (a role), int and str subclasses
                params[key] = _plain_scalar(value)
    tools = kwargs.get("tools") if isinstance(kwargs, Mapping) else None
    if isinstance(tools, Sequence) and tools:
        names = []
        for tool in tools:
            metadata = getattr(tool, "metadata", None)
            name = getattr(metadata, "name", None) or _get(_get(tool, "function"), "name")
            if name:
                names.append(safe_str(name))
        params["tools"] = names
    return params


def _plain_scalar(value: str | int | float) -> str | int | float:
    """An enum's value, or a subclass's plain ``str``/``int``/``float``."""
    plain: Any = value.value if isinstance(value, Enum) else value
    if isinstance(plain, str):
        return str(plain)
    if isinstance(plain, bool | int):
        return int(plain) if not isinstance(plain, bool) else bool(plain)
    if isinstance(plain, float):
        return float(plain)
    return safe_str(plain)


def _requested_calls(agent_output: Any) -> list[Any]:
    """The tool calls an ``AgentOutput`` asks for.

    The agent later appends the results of the run's earlier calls
    (``ToolCallResult``) to the same list; those are not requests.
    """
    calls = _get(agent_output, "tool_calls")
    if not isinstance(calls, Sequence):
        return []
    return [c for c in calls if isinstance(c, ToolSelection)]


# -- the interpreter -------------------------------------------------------------------


class _TraceIndex:
    """Records of one trace by id and their children (built once per packet)."""

    __slots__ = ("by_id", "children", "trace")

    def __init__(self, trace: TraceRecord) -> None:
        self.trace = trace
        self.by_id: dict[Any, RunRecord] = {}
        self.children: dict[Any, list[RunRecord]] = {}
        for record in trace.records:
            self.by_id[record.run_id] = record
            if record.parent_id is not None:
                self.children.setdefault(record.parent_id, []).append(record)


class LlamaIndexInterpreter:
    """Fills each step from the objects the handler recorded."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _index(self, trace: TraceRecord) -> _TraceIndex:
        index: _TraceIndex | None = getattr(self._local, "index", None)
        if index is None or index.trace is not trace:
            index = _TraceIndex(trace)
            self._local.index = index
        return index

    def fill_step(self, record: RunRecord, step: dict[str, Any], context: Any) -> None:
        ctx: AssemblyContext = context
        attrs = record.attrs or {}
        op = attrs.get("op")
        if op == "llm":
            self._llm(record, step, ctx, attrs)
        elif op == "retrieve":
            self._retrieve(record, step, ctx)
        elif op == "synthesize":
            self._synthesize(record, step, ctx, attrs)
        elif op == "templating":
            self._templating(record, step, ctx)
        elif op == "embedding":
            self._embedding(record, step, ctx, attrs)
        elif op == "rerank":
            self._rerank(record, step, ctx)
        elif op == "tool_call":
            self._tool_call(record, step, ctx)
        elif op == "tool":
            self._tool(record, step, ctx)
        elif op in ("query", "chat_engine"):
            step["input"] = ctx.jsonable(query_text(record.inputs))
            step["output"] = ctx.jsonable(response_value(record.outputs))
        elif op == "workflow":
            self._workflow(record, step, ctx)
        elif op == "agent_step":
            self._agent_step(record, step, ctx)
        elif op == "model_call":
            arguments = dict(record.inputs) if isinstance(record.inputs, Mapping) else {}
            arguments.pop("self", None)
            step["input"] = ctx.jsonable(arguments)
            step["output"] = ctx.jsonable(response_value(record.outputs))
        else:
            step["input"] = ctx.jsonable(record.inputs)
            step["output"] = ctx.jsonable(response_value(record.outputs))
        if attrs.get("stream_closed_early"):
            step["metadata"]["stream_closed_early"] = True

    # -- per operation -------------------------------------------------------------

    def _llm(
        self,
        record: RunRecord,
        step: dict[str, Any],
        ctx: AssemblyContext,
        attrs: Mapping[str, Any],
    ) -> None:
        start = record.inputs
        response = record.outputs
        instance = attrs.get("instance")
        model_dict = _get(start, "model_dict")
        kwargs = _get(start, "additional_kwargs")
        model = _first_str(_get(response, "raw"), ("model",)) or _first_str(model_dict, _MODEL_KEYS)
        llm: dict[str, Any] = {
            "model_name": model
            if model not in _UNKNOWN_MODELS
            else _instance_model(instance, model_dict),
            "provider": _provider(instance),
            "invocation_params": ctx.jsonable(_params(model_dict, kwargs)),
            "usage": usage_from(response),
            "finish_reason": finish_reason_from(response),
            "tool_calls": [],
        }
        messages = _get(start, "messages")
        if isinstance(messages, Sequence) and record.kind == "chat_model":
            llm["messages"] = [
                ctx.jsonable(message_to_dict(m) if isinstance(m, ChatMessage) else m)
                for m in messages
            ]
            step["input"] = llm["messages"]
        else:
            prompt = _get(start, "prompt")
            llm["prompts"] = [prompt if isinstance(prompt, str) else safe_str(prompt)]
            step["input"] = prompt if isinstance(prompt, str) else ctx.jsonable(prompt)
        if isinstance(response, ChatResponse):
            text = attrs.get("output_text", response.message.content)
            step["output"] = ctx.jsonable(text)
            llm["tool_calls"] = ctx.jsonable(message_tool_calls(response.message))
        elif isinstance(response, CompletionResponse):
            step["output"] = ctx.jsonable(response.text)
        else:
            step["output"] = ctx.jsonable(response)
        self._agent_tool_calls(record, llm, ctx)
        if ctx.options.capture_logprobs:
            llm["logprobs_tokens"] = logprob_tokens(response)
        step["llm"] = llm

    def _agent_tool_calls(
        self, record: RunRecord, llm: dict[str, Any], ctx: AssemblyContext
    ) -> None:
        """Tool calls the agent parsed from this model turn (ReAct text, ids made by the agent)."""
        if record.parent_id is None:
            return
        index = self._index(ctx.trace)
        parent = index.by_id.get(record.parent_id)
        if parent is None or (parent.attrs or {}).get("op") != "agent_step":
            return
        siblings = [
            r for r in index.children.get(parent.run_id, ()) if (r.attrs or {}).get("op") == "llm"
        ]
        if not siblings or siblings[-1] is not record:
            return
        known = {c.get("id") for c in llm["tool_calls"] if isinstance(c, dict)}
        for call in _requested_calls(parent.outputs):
            converted = tool_call_to_dict(call)
            if converted is not None and converted["id"] not in known:
                llm["tool_calls"].append(ctx.jsonable(converted))

    def _retrieve(self, record: RunRecord, step: dict[str, Any], ctx: AssemblyContext) -> None:
        query = query_text(record.inputs)
        nodes = record.outputs if isinstance(record.outputs, Sequence) else []
        documents = [
            ctx.jsonable(node_to_document(n))
            if isinstance(n, NodeWithScore | BaseNode)
            else {"content": safe_str(n)}
            for n in nodes
        ]
        step["input"] = ctx.jsonable(query)
        step["retrieval"] = {
            "query": query if isinstance(query, str) else safe_str(query),
            "documents": documents,
        }

    def _synthesize(
        self,
        record: RunRecord,
        step: dict[str, Any],
        ctx: AssemblyContext,
        attrs: Mapping[str, Any],
    ) -> None:
        step["input"] = ctx.jsonable(query_text(record.inputs))
        step["output"] = ctx.jsonable(response_value(record.outputs))
        nodes = attrs.get("nodes")
        if isinstance(nodes, Sequence):
            step["metadata"]["source_node_ids"] = [
                n.node.node_id for n in nodes if isinstance(n, NodeWithScore)
            ]

    def _templating(self, record: RunRecord, step: dict[str, Any], ctx: AssemblyContext) -> None:
        event = record.inputs
        template = _get(event, "template")
        args = _get(event, "template_args")
        variables: dict[str, Any] = {}
        text: Any = None
        if template is not None:
            try:
                text = template.get_template()
            except Exception:
                text = safe_str(template)
            names = getattr(template, "template_vars", None) or ()
            defaults = getattr(template, "kwargs", None) or {}
            merged = {**defaults, **(args if isinstance(args, Mapping) else {})}
            variables = {k: v for k, v in merged.items() if not names or k in names}
        step["input"] = ctx.jsonable({"template": text, "template_vars": variables})
        output = record.outputs
        if isinstance(output, Sequence) and not isinstance(output, str):
            step["output"] = [
                ctx.jsonable(message_to_dict(m) if isinstance(m, ChatMessage) else m)
                for m in output
            ]
        else:
            step["output"] = ctx.jsonable(output)

    def _embedding(
        self,
        record: RunRecord,
        step: dict[str, Any],
        ctx: AssemblyContext,
        attrs: Mapping[str, Any],
    ) -> None:
        model_dict = _get(record.inputs, "model_dict")
        end = record.outputs
        chunks = _get(end, "chunks")
        vectors = _get(end, "embeddings")
        dimensions = None
        if isinstance(vectors, Sequence) and vectors and isinstance(vectors[0], Sequence):
            dimensions = len(vectors[0])
        model = _first_str(model_dict, _MODEL_KEYS)
        if model is None:
            model = _first_str(attrs.get("instance"), _MODEL_KEYS)
        step["input"] = ctx.jsonable(chunks)
        step["embedding"] = {
            "model_name": model if model not in _UNKNOWN_MODELS else None,
            "input_count": len(chunks) if isinstance(chunks, Sequence) else None,
            "dimensions": dimensions,
        }

    def _rerank(self, record: RunRecord, step: dict[str, Any], ctx: AssemblyContext) -> None:
        start = record.inputs
        query = query_text(_get(start, "query"))
        before = _get(start, "nodes") or []
        after = _get(record.outputs, "nodes")
        if after is None and isinstance(record.outputs, Sequence):
            after = record.outputs
        step["input"] = ctx.jsonable(
            {
                "query": query,
                "top_n": _get(start, "top_n"),
                "model_name": _get(start, "model_name"),
                "nodes": [node_to_document(n) for n in before if isinstance(n, NodeWithScore)],
            }
        )
        step["retrieval"] = {
            "query": None if query is None else safe_str(query),
            "documents": [
                ctx.jsonable(node_to_document(n))
                for n in (after or [])
                if isinstance(n, NodeWithScore)
            ],
        }

    def _tool_call(self, record: RunRecord, step: dict[str, Any], ctx: AssemblyContext) -> None:
        call = record.inputs
        result = record.outputs
        step["input"] = ctx.jsonable(_get(call, "tool_kwargs"))
        output = _get(result, "tool_output")
        step["output"] = ctx.jsonable(response_value(output) if output is not None else None)
        tool_id = _get(call, "tool_id")
        step["tool"] = {
            "name": safe_str(_get(call, "tool_name") or record.name),
            "tool_call_id": None if tool_id is None else safe_str(tool_id),
        }
        if _get(result, "return_direct"):
            step["metadata"]["return_direct"] = True

    def _tool(self, record: RunRecord, step: dict[str, Any], ctx: AssemblyContext) -> None:
        arguments = dict(record.inputs) if isinstance(record.inputs, Mapping) else {}
        arguments.pop("self", None)
        args = arguments.pop("args", ())
        kwargs = arguments.pop("kwargs", None)
        value: Any = dict(kwargs) if isinstance(kwargs, Mapping) else {}
        value.update(arguments)
        if args:
            value = (
                {"args": list(args), **value}
                if value
                else (args[0] if len(args) == 1 else list(args))
            )
        step["input"] = ctx.jsonable(value)
        step["output"] = ctx.jsonable(response_value(record.outputs))
        step["tool"] = {"name": record.name, "tool_call_id": None}

    def _workflow(self, record: RunRecord, step: dict[str, Any], ctx: AssemblyContext) -> None:
        start = record.inputs
        user_msg = _get(start, "user_msg")
        if user_msg is None and isinstance(start, WorkflowEvent):
            user_msg = start.get("user_msg")
        if user_msg is not None:
            step["input"] = ctx.jsonable(
                user_msg.content if isinstance(user_msg, ChatMessage) else user_msg
            )
        else:
            step["input"] = ctx.jsonable(start)
        step["output"] = ctx.jsonable(response_value(record.outputs))

    def _agent_step(self, record: RunRecord, step: dict[str, Any], ctx: AssemblyContext) -> None:
        setup = record.inputs
        step["input"] = ctx.jsonable(_get(setup, "input"))
        output = record.outputs
        if type(output).__name__ == "AgentOutput":
            response = _get(output, "response")
            step["output"] = ctx.jsonable(
                {
                    "response": response.content if isinstance(response, ChatMessage) else response,
                    "tool_calls": [tool_call_to_dict(c) for c in _requested_calls(output)],
                }
            )
        else:
            step["output"] = ctx.jsonable(output)
        agent = _get(setup, "current_agent_name")
        if agent is not None:
            step["metadata"]["agent_name"] = safe_str(agent)


INTERPRETER = LlamaIndexInterpreter()
