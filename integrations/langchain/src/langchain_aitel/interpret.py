"""Read LangChain objects into packet fields, on the export worker.

Where the data is (langchain-core 1.x):

* model name: ``response_metadata["model_name"]`` (or ``"model"``), then the
  ``ls_model_name`` metadata, then the invocation parameters;
* usage: ``AIMessage.usage_metadata`` (with cache and reasoning details),
  then ``LLMResult.llm_output["token_usage"]``; absent means unknown;
* tool calls: ``AIMessage.tool_calls``; logprobs: ``response_metadata`` or
  ``generation_info`` (OpenAI's ``{"content": [...]}`` shape).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue

from aitel.assembly import AssemblyContext
from aitel.builder import RunRecord
from aitel.jsonable import register_encoder, safe_str

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_SCORE_KEYS = ("score", "relevance_score", "similarity_score", "_score", "distance", "_distance")
_SOURCE_KEYS = ("source", "url", "file_path", "path", "title")
_MODEL_PARAM_KEYS = ("model", "model_name", "model_id", "deployment_name")


def message_to_dict(message: BaseMessage) -> dict[str, Any]:
    kind = message.type
    role = _ROLES.get(kind) or getattr(message, "role", None) or kind
    out: dict[str, Any] = {"role": role, "content": message.content}
    if message.name:
        out["name"] = message.name
    if isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
    # a field when present (AI messages); getattr of a missing one is slow on pydantic models
    calls = message.__dict__.get("tool_calls")
    if calls:
        out["tool_calls"] = [_tool_call(c) for c in calls]
    return out


def document_to_dict(doc: Document) -> dict[str, Any]:
    metadata = doc.metadata or {}
    score = next(
        (metadata[k] for k in _SCORE_KEYS if isinstance(metadata.get(k), int | float)), None
    )
    source = next((metadata[k] for k in _SOURCE_KEYS if metadata.get(k)), None)
    doc_id = doc.id or metadata.get("id") or metadata.get("doc_id")
    return {
        "id": None if doc_id is None else safe_str(doc_id),
        "score": None if score is None else float(score),
        "source": None if source is None else safe_str(source),
        "content": doc.page_content,
        "metadata": dict(metadata),
    }


def _tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": call.get("id"), "name": call.get("name") or "", "arguments": call.get("args")}


register_encoder(BaseMessage, message_to_dict)
register_encoder(Document, document_to_dict)
register_encoder(ChatPromptValue, lambda v: [message_to_dict(m) for m in v.messages])
register_encoder(StringPromptValue, lambda v: v.text)
register_encoder(AgentAction, lambda a: {"tool": a.tool, "tool_input": a.tool_input, "log": a.log})
register_encoder(AgentFinish, lambda f: {"return_values": f.return_values, "log": f.log})
register_encoder(LLMResult, lambda r: [[g.text for g in gens] for gens in r.generations])


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part if isinstance(part, str) else part.get("text", "")
            for part in content
            if isinstance(part, str) or (isinstance(part, dict) and part.get("type") == "text")
        ]
        return "".join(parts)
    return None


class LangChainInterpreter:
    def fill_step(self, record: RunRecord, step: dict[str, Any], context: Any) -> None:
        ctx: AssemblyContext = context
        attrs = record.attrs or {}
        kind = record.kind
        if kind in ("chat_model", "llm"):
            self._llm(record, step, ctx, attrs)
        elif kind == "retriever":
            self._retriever(record, step, ctx)
        elif kind == "tool":
            step["input"] = ctx.jsonable(record.inputs)
            step["output"] = ctx.jsonable(_tool_output(record.outputs))
            step["tool"] = {"name": record.name, "tool_call_id": attrs.get("tool_call_id")}
        else:
            step["input"] = ctx.jsonable(record.inputs)
            step["output"] = ctx.jsonable(record.outputs)
            if attrs.get("agent"):
                step["kind"] = "agent"
        if attrs.get("control_flow"):
            step["metadata"]["control_flow"] = attrs["control_flow"]

    def _retriever(self, record: RunRecord, step: dict[str, Any], ctx: AssemblyContext) -> None:
        query = record.inputs if isinstance(record.inputs, str) else safe_str(record.inputs)
        docs = record.outputs if isinstance(record.outputs, Sequence) else []
        documents = [
            ctx.jsonable(document_to_dict(d))
            if isinstance(d, Document)
            else {"content": safe_str(d)}
            for d in docs
        ]
        step["input"] = query
        step["retrieval"] = {"query": query, "documents": documents}

    def _llm(
        self, record: RunRecord, step: dict[str, Any], ctx: AssemblyContext, attrs: dict[str, Any]
    ) -> None:
        params = attrs.get("invocation_params") or {}
        metadata = record.metadata if isinstance(record.metadata, Mapping) else {}
        llm: dict[str, Any] = {
            "model_name": None,
            "provider": metadata.get("ls_provider"),
            "invocation_params": ctx.jsonable(params) if isinstance(params, Mapping) else {},
            "usage": None,
            "finish_reason": None,
            "tool_calls": [],
        }
        if record.kind == "chat_model":
            batch = record.inputs if isinstance(record.inputs, Sequence) else []
            messages = batch[0] if batch and isinstance(batch[0], Sequence) else []
            llm["messages"] = [
                ctx.jsonable(message_to_dict(m) if isinstance(m, BaseMessage) else m)
                for m in messages
            ]
        else:
            prompts = record.inputs if isinstance(record.inputs, Sequence) else []
            llm["prompts"] = [p if isinstance(p, str) else safe_str(p) for p in prompts]

        response = record.outputs
        generation = _first_generation(response)
        response_metadata: Mapping[str, Any] = {}
        generation_info: Mapping[str, Any] = {}
        if generation is not None:
            generation_info = generation.generation_info or {}
            if isinstance(generation, ChatGeneration):
                message = generation.message
                response_metadata = message.response_metadata or {}
                step["output"] = ctx.jsonable(_text(message.content))
                llm["tool_calls"] = [
                    ctx.jsonable(_tool_call(c)) for c in getattr(message, "tool_calls", ())
                ]
                llm["usage"] = _usage_from_message(message)
            else:
                step["output"] = ctx.jsonable(generation.text)
        if llm["usage"] is None and isinstance(response, LLMResult):
            llm["usage"] = _usage_from_llm_output(response.llm_output)

        llm["model_name"] = (
            _first_str(response_metadata, ("model_name", "model"))
            or _first_str(generation_info, ("model_name", "model"))
            or (
                _first_str(response.llm_output, ("model_name", "model"))
                if isinstance(response, LLMResult)
                else None
            )
            or _first_str(metadata, ("ls_model_name",))
            or _first_str(params, _MODEL_PARAM_KEYS)
        )
        llm["finish_reason"] = _first_str(
            response_metadata, ("finish_reason", "stop_reason", "done_reason")
        ) or _first_str(generation_info, ("finish_reason", "stop_reason"))
        if ctx.options.capture_logprobs:
            llm["logprobs_tokens"] = _logprobs(
                response_metadata.get("logprobs") or generation_info.get("logprobs")
            )
        step["llm"] = llm


def _first_generation(response: Any) -> Any:
    if isinstance(response, LLMResult) and response.generations and response.generations[0]:
        return response.generations[0][0]
    return None


def _first_str(source: Any, keys: Sequence[str]) -> str | None:
    if not isinstance(source, Mapping):
        return None
    for key in keys:
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage_from_message(message: BaseMessage) -> dict[str, Any] | None:
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return None
    input_details = usage.get("input_token_details") or {}
    output_details = usage.get("output_token_details") or {}
    return {
        "prompt_tokens": _int(usage.get("input_tokens")),
        "completion_tokens": _int(usage.get("output_tokens")),
        "total_tokens": _int(usage.get("total_tokens")),
        "cached_prompt_tokens": _int(input_details.get("cache_read")),
        "cache_creation_tokens": _int(input_details.get("cache_creation")),
        "reasoning_tokens": _int(output_details.get("reasoning")),
    }


def _usage_from_llm_output(llm_output: Any) -> dict[str, Any] | None:
    if not isinstance(llm_output, Mapping):
        return None
    usage = llm_output.get("token_usage") or llm_output.get("usage")
    if not isinstance(usage, Mapping):
        return None
    prompt = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    total = _int(usage.get("total_tokens"))
    if prompt is None and completion is None and total is None:
        return None
    details = usage.get("prompt_tokens_details") or {}
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "cached_prompt_tokens": _int(details.get("cached_tokens"))
        if isinstance(details, Mapping)
        else None,
    }


def _logprobs(raw: Any) -> list[dict[str, Any]] | None:
    content = raw.get("content") if isinstance(raw, Mapping) else raw
    if not isinstance(content, list):
        return None
    tokens = []
    for item in content:
        if not isinstance(item, Mapping):
            continue
        top = item.get("top_logprobs") or []
        tokens.append(
            {
                "token": safe_str(item.get("token", "")),
                "logprob": item.get("logprob"),
                "bytes": item.get("bytes"),
                "top_logprobs": [
                    {"token": safe_str(t.get("token", "")), "logprob": t.get("logprob")}
                    for t in top
                    if isinstance(t, Mapping)
                ],
            }
        )
    return tokens


def _tool_output(output: Any) -> Any:
    if isinstance(output, ToolMessage):
        if output.artifact is not None:
            return {"content": output.content, "artifact": output.artifact}
        return output.content
    return output


INTERPRETER = LangChainInterpreter()
