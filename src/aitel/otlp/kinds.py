"""The kind-specific attributes of a span: model calls, retrieval, tools, embeddings.

Each ``put_*`` function writes one step section (``llm``, ``retrieval``,
``tool``, ``embedding``) in both vocabularies and returns the span's
GenAI-style name where it has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._attributes import (
    AttributeSet,
    as_bool,
    as_int,
    as_list,
    as_mapping,
    as_number,
    as_str,
    as_text,
    put_io,
    to_json,
)
from .messages import genai_message_list, put_openinference_messages

_GENAI_PROVIDER = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "google": "gcp.gen_ai",
    "google_genai": "gcp.gen_ai",
    "google_vertexai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "aws": "aws.bedrock",
    "cohere": "cohere",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "ibm": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
}
_OPENINFERENCE_PROVIDER = {
    "azure_openai": "azure",
    "azure_ai": "azure",
    "google_genai": "google",
    "google_vertexai": "google",
    "vertexai": "google",
    "gemini": "google",
    "bedrock": "aws",
    "amazon_bedrock": "aws",
    "mistral": "mistralai",
    "x_ai": "xai",
}
_OPENINFERENCE_SYSTEM = {
    "openai": "openai",
    "azure_openai": "openai",
    "anthropic": "anthropic",
    "cohere": "cohere",
    "mistralai": "mistralai",
    "mistral": "mistralai",
    "google_vertexai": "vertexai",
    "vertexai": "vertexai",
}

_MAX_TOKENS_KEYS = (
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "max_tokens_to_sample",
    "num_predict",
)
_REQUEST_PARAMS: tuple[tuple[tuple[str, ...], str, type], ...] = (
    (("temperature",), "gen_ai.request.temperature", float),
    (("top_p",), "gen_ai.request.top_p", float),
    (("top_k",), "gen_ai.request.top_k", float),
    (_MAX_TOKENS_KEYS, "gen_ai.request.max_tokens", int),
    (("frequency_penalty",), "gen_ai.request.frequency_penalty", float),
    (("presence_penalty",), "gen_ai.request.presence_penalty", float),
    (("seed",), "gen_ai.request.seed", int),
    (("n",), "gen_ai.request.choice.count", int),
)
_MODEL_PARAM_KEYS = ("model", "model_name", "model_id", "deployment_name")


def put_llm(
    attrs: AttributeSet, step: Mapping[str, Any], name: str, *, genai_messages: bool
) -> str:
    """A model call: model, provider, parameters, messages, usage, cost, timing."""
    llm = as_mapping(step.get("llm"))
    params = as_mapping(llm.get("invocation_params"))
    model = as_str(llm.get("model_name"))
    requested = next((v for k in _MODEL_PARAM_KEYS if (v := as_str(params.get(k)))), None)
    messages = as_list(llm.get("messages"))
    prompts = as_list(llm.get("prompts"))
    chat = step.get("kind") == "chat_model" or bool(messages) or not prompts
    operation = "chat" if chat else "text_completion"

    attrs.put("llm.model_name", model or requested)
    attrs.put("llm.request.model_name", requested)
    attrs.put("llm.response.model_name", model)
    attrs.put("gen_ai.operation.name", operation)
    attrs.put("gen_ai.request.model", requested or model)
    attrs.put("gen_ai.response.model", model)
    _put_provider(attrs, as_str(llm.get("provider")))

    tools = [t for t in as_list(params.get("tools")) if isinstance(t, Mapping)]
    invocation = {k: v for k, v in params.items() if k != "tools"}
    if invocation:
        attrs.put_json("llm.invocation_parameters", invocation)
    for i, definition in attrs.items(tools):
        attrs.put_json(f"llm.tools.{i}.tool.json_schema", dict(definition))
    if tools:
        attrs.put_json("gen_ai.tool.definitions", tools[: attrs.max_items])
    for keys, key, kind in _REQUEST_PARAMS:
        value = next((params[k] for k in keys if params.get(k) is not None), None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs.put(key, kind(value))
    stop = params.get("stop") or params.get("stop_sequences")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, list) and stop and all(isinstance(s, str) for s in stop):
        attrs.put("gen_ai.request.stop_sequences", stop)
    if isinstance(params.get("stream"), bool):
        attrs.put("gen_ai.request.stream", params["stream"])

    tool_calls = [c for c in as_list(llm.get("tool_calls")) if isinstance(c, Mapping)]
    output = step.get("output")
    if chat:
        put_openinference_messages(attrs, "llm.input_messages", messages)
        output_message: dict[str, Any] = {"role": "assistant"}
        if output is not None:
            output_message["content"] = as_text(output)
        if tool_calls:
            output_message["tool_calls"] = tool_calls
        if len(output_message) > 1:
            put_openinference_messages(attrs, "llm.output_messages", [output_message])
        genai_in: Sequence[Any] = messages
    else:
        for i, prompt in attrs.items(prompts):
            attrs.put(f"llm.prompts.{i}.prompt.text", as_text(prompt))
        if output is not None:
            attrs.put("llm.choices.0.completion.text", as_text(output))
        output_message = {"role": "assistant", "content": output}
        genai_in = [{"role": "user", "content": p} for p in prompts]
    finish_reason = as_str(llm.get("finish_reason"))
    if step.get("input") is None and chat and messages:
        put_io(attrs, "input", {"messages": messages})
    elif step.get("input") is None and prompts:
        put_io(attrs, "input", prompts[0] if len(prompts) == 1 else prompts)
    if output is None and tool_calls:
        put_io(attrs, "output", {"tool_calls": tool_calls})
    if genai_messages:
        rendered, omitted = genai_message_list(genai_in, attrs.max_items)
        if omitted:
            attrs.omitted += omitted
            attrs.truncated += 1
        if rendered:
            attrs.put_json("gen_ai.input.messages", rendered)
        if output is not None or tool_calls:
            message, _ = genai_message_list([output_message], 1)
            if finish_reason:
                message[0]["finish_reason"] = finish_reason
            attrs.put_json("gen_ai.output.messages", message)

    attrs.put("llm.finish_reason", finish_reason)
    if finish_reason:
        attrs.put("gen_ai.response.finish_reasons", [finish_reason])
    _put_usage(attrs, llm.get("usage"))
    cost = as_number(llm.get("cost_usd"))
    attrs.put("llm.cost.total", cost)
    attrs.put("aitel.cost_usd", cost)
    ttft = as_number(llm.get("time_to_first_token_ms"))
    if ttft is not None:
        attrs.put("gen_ai.response.time_to_first_chunk", ttft / 1000.0)
    attrs.put("aitel.llm.streamed", as_bool(llm.get("streamed")))
    attrs.put("aitel.llm.chunks", as_int(llm.get("chunks")))
    logprobs = as_mapping(llm.get("logprobs"))
    for key in ("tokens", "mean_logprob", "min_logprob", "perplexity"):
        value = logprobs.get(key)
        number = as_int(value) if key == "tokens" else as_number(value)
        attrs.put(f"aitel.llm.logprobs.{key}", number)
    return f"{operation} {model or requested or name}"


def _put_provider(attrs: AttributeSet, provider: str | None) -> None:
    if not provider:
        return
    key = provider.strip().lower().replace("-", "_")
    attrs.put("llm.provider", _OPENINFERENCE_PROVIDER.get(key, key))
    attrs.put("llm.system", _OPENINFERENCE_SYSTEM.get(key))
    attrs.put("gen_ai.provider.name", _GENAI_PROVIDER.get(key, key))


def _put_usage(attrs: AttributeSet, usage: Any) -> None:
    if not isinstance(usage, Mapping):
        attrs.put("aitel.llm.usage_reported", False)
        return
    prompt = as_int(usage.get("prompt_tokens"))
    completion = as_int(usage.get("completion_tokens"))
    cache_read = as_int(usage.get("cached_prompt_tokens"))
    cache_write = as_int(usage.get("cache_creation_tokens"))
    reasoning = as_int(usage.get("reasoning_tokens"))
    attrs.put("llm.token_count.prompt", prompt)
    attrs.put("llm.token_count.completion", completion)
    attrs.put("llm.token_count.total", as_int(usage.get("total_tokens")))
    attrs.put("llm.token_count.prompt_details.cache_read", cache_read)
    attrs.put("llm.token_count.prompt_details.cache_write", cache_write)
    attrs.put("llm.token_count.completion_details.reasoning", reasoning)
    attrs.put("gen_ai.usage.input_tokens", prompt)
    attrs.put("gen_ai.usage.output_tokens", completion)
    attrs.put("gen_ai.usage.cache_read.input_tokens", cache_read)
    attrs.put("gen_ai.usage.cache_creation.input_tokens", cache_write)
    attrs.put("gen_ai.usage.reasoning.output_tokens", reasoning)


def _put_documents(attrs: AttributeSet, prefix: str, documents: Sequence[Any]) -> None:
    for i, doc in attrs.items(documents):
        base = f"{prefix}.{i}.document"
        if not isinstance(doc, Mapping):
            attrs.put(f"{base}.content", doc if isinstance(doc, str) else to_json(doc))
            continue
        attrs.put(f"{base}.id", None if doc.get("id") is None else str(doc["id"]))
        attrs.put(f"{base}.content", doc.get("content"))
        attrs.put(f"{base}.score", as_number(doc.get("score")))
        metadata = dict(as_mapping(doc.get("metadata")))
        if doc.get("source") is not None:
            metadata.setdefault("source", doc["source"])
        if metadata:
            attrs.put_json(f"{base}.metadata", metadata)


def put_retriever(attrs: AttributeSet, step: Mapping[str, Any], name: str) -> str:
    """Retrieved documents with ids, scores and metadata; the query."""
    retrieval = as_mapping(step.get("retrieval"))
    documents = as_list(retrieval.get("documents"))
    query = retrieval.get("query")
    _put_documents(attrs, "retrieval.documents", documents)
    attrs.put("gen_ai.operation.name", "retrieval")
    attrs.put("gen_ai.data_source.id", name)
    attrs.put("gen_ai.retrieval.query.text", query if isinstance(query, str) else None)
    summary = [
        {"id": d.get("id"), "score": d.get("score")}
        for d in documents[: attrs.max_items]
        if isinstance(d, Mapping)
    ]
    if summary:
        attrs.put_json("gen_ai.retrieval.documents", summary)
    if step.get("input") is None:
        put_io(attrs, "input", query)
    if step.get("output") is None and documents:
        put_io(attrs, "output", documents[: attrs.max_items])
    return f"retrieval {name}"


def put_reranker(attrs: AttributeSet, step: Mapping[str, Any]) -> None:
    """The reranker's query and output documents."""
    retrieval = as_mapping(step.get("retrieval"))
    query = retrieval.get("query")
    attrs.put("reranker.query", query if isinstance(query, str) else None)
    _put_documents(attrs, "reranker.output_documents", as_list(retrieval.get("documents")))


def put_tool(attrs: AttributeSet, step: Mapping[str, Any], name: str) -> str:
    """Tool name, call id, arguments and result."""
    tool = as_mapping(step.get("tool"))
    tool_name = as_str(tool.get("name")) or name
    call_id = tool.get("tool_call_id")
    arguments = step.get("input")
    attrs.put("tool.name", tool_name)
    attrs.put("tool.id", None if call_id is None else str(call_id))
    attrs.put("gen_ai.operation.name", "execute_tool")
    attrs.put("gen_ai.tool.name", tool_name)
    attrs.put("gen_ai.tool.type", "function")
    attrs.put("gen_ai.tool.call.id", None if call_id is None else str(call_id))
    if arguments is not None:
        attrs.put_json("tool.parameters", arguments)
        attrs.put_json("gen_ai.tool.call.arguments", arguments)
    if step.get("output") is not None:
        attrs.put_json("gen_ai.tool.call.result", step["output"])
    requested_by = tool.get("requested_by_step_id")
    if requested_by is not None:
        attrs.put("aitel.tool.requested_by_step_id", str(requested_by))
    return f"execute_tool {tool_name}"


def put_embedding(attrs: AttributeSet, step: Mapping[str, Any], name: str) -> str:
    """Embedding model and dimensions."""
    embedding = as_mapping(step.get("embedding"))
    model = as_str(embedding.get("model_name"))
    attrs.put("embedding.model_name", model)
    attrs.put("gen_ai.operation.name", "embeddings")
    attrs.put("gen_ai.request.model", model)
    attrs.put("gen_ai.embeddings.dimension.count", as_int(embedding.get("dimensions")))
    attrs.put("aitel.embedding.input_count", as_int(embedding.get("input_count")))
    return f"embeddings {model or name}"
