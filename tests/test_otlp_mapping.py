"""The packet -> OpenTelemetry trace mapping (pure functions)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aitel.otlp import (
    MappingOptions,
    SpanKind,
    SpanRecord,
    StatusCode,
    packet_to_trace,
    request_span_id,
    span_id_for,
    trace_id_for,
    unix_nano,
)


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


def by_step(spans: list[SpanRecord]) -> dict[str, SpanRecord]:
    return {str(s.attributes["aitel.step.id"]): s for s in spans if "aitel.step.id" in s.attributes}


def model_root(output: Any, llm: Any, **extra: Any) -> dict[str, Any]:
    """A request that is one chat model call."""
    return P.step(P.ROOT, "chat_model", "m", parent=None, output=output, llm=llm, **extra)


@pytest.fixture
def rag() -> dict[str, SpanRecord]:
    return by_step(packet_to_trace(P.rag_packet()).spans)


# -- shape ----------------------------------------------------------------------------


def test_one_trace_per_packet_with_the_packets_trace_id() -> None:
    """Every span carries the packet's trace id."""
    trace = packet_to_trace(P.rag_packet())
    assert {s.trace_id for s in trace.spans} == {TRACE}
    assert len(trace.spans) == 5


def test_root_step_is_the_request_span() -> None:
    """The packet's root step becomes the parentless request span, listed first."""
    trace = packet_to_trace(P.rag_packet())
    root = trace.root
    assert root.parent_span_id == b""
    assert root.span_id == span_id_for(TRACE, P.ROOT)
    assert root.attributes["aitel.step.id"] == P.ROOT
    assert root.attributes["aitel.packet_id"] == "00000000-0000-7000-8000-0000000000aa"
    assert [s for s in trace.spans if s.is_root] == [root]


def test_span_ids_are_derived_from_step_ids() -> None:
    """A span id is the first 8 bytes of BLAKE2b(trace id + step id): same packet, same ids."""
    expected = hashlib.blake2b(TRACE + P.LLM.encode(), digest_size=8).digest()
    assert span_id_for(TRACE, P.LLM) == expected
    first = [s.span_id for s in packet_to_trace(P.rag_packet()).spans]
    second = [s.span_id for s in packet_to_trace(P.rag_packet()).spans]
    assert first == second
    assert len(set(first)) == len(first)


def test_parent_links_follow_parent_ids(rag: dict[str, SpanRecord]) -> None:
    """Each step's parent_id becomes its span's parent span id."""
    root_id = rag[P.ROOT].span_id
    for step_id in (P.RETRIEVER, P.LLM, P.TOOL, P.LLM2):
        assert rag[step_id].parent_span_id == root_id


def test_times_are_the_steps_real_times_in_nanoseconds(rag: dict[str, SpanRecord]) -> None:
    """Start and end come from the step timestamps, exactly, in Unix nanoseconds."""
    llm = rag[P.LLM]
    assert llm.start_time_unix_nano == P.BASE_NS + 100_000_000
    assert llm.end_time_unix_nano == P.BASE_NS + 500_000_000
    assert rag[P.ROOT].start_time_unix_nano == P.BASE_NS


def test_unix_nano_accepts_z_offsets_and_datetimes() -> None:
    """Timestamps parse with Z, with offsets, without microseconds, and as datetimes."""
    from datetime import datetime, timezone

    assert unix_nano("1970-01-01T00:00:01.000001Z") == 1_000_001_000
    assert unix_nano("1970-01-01T01:00:01+01:00") == 1_000_000_000
    assert unix_nano(datetime(1970, 1, 1, 0, 0, 2, tzinfo=timezone.utc)) == 2_000_000_000
    assert unix_nano("not a time") is None
    assert unix_nano(None) is None


def test_packet_without_steps_gets_a_synthetic_request_span() -> None:
    """No steps: one request span built from the packet itself."""
    packet = P.packet([])
    trace = packet_to_trace(packet)
    assert len(trace.spans) == 1
    root = trace.root
    assert root.span_id == request_span_id(TRACE)
    assert root.name == "invoke_workflow RagChain"
    assert root.attributes["openinference.span.kind"] == "CHAIN"
    assert root.attributes["input.value"] == '{"question":"What is the capital of France?"}'
    assert root.attributes["output.value"] == "Paris."
    assert root.attributes["session.id"] == "session-7"


def test_several_parentless_steps_hang_under_a_synthetic_request_span() -> None:
    """Two roots (or parents outside the packet) are children of one request span."""
    steps = [
        P.step(P.RETRIEVER, "retriever", "R", parent=None),
        P.step(
            P.TOOL,
            "tool",
            "t",
            parent="not-in-this-packet",
            tool={"name": "t", "tool_call_id": None, "requested_by_step_id": None},
        ),
    ]
    trace = packet_to_trace(P.packet(steps))
    request = trace.root
    assert request.span_id == request_span_id(TRACE)
    assert [s.parent_span_id for s in trace.spans[1:]] == [request.span_id, request.span_id]


def test_parent_cycles_do_not_orphan_steps() -> None:
    """Steps whose parents loop become children of the request span, not a detached island."""
    a, b = "a-step", "b-step"
    steps = [
        P.step(P.ROOT, "chain", "root", parent=None),
        P.step(a, "chain", "a", parent=b),
        P.step(b, "chain", "b", parent=a),
    ]
    trace = packet_to_trace(P.packet(steps))
    ids = {s.span_id for s in trace.spans}
    assert all(s.parent_span_id in ids for s in trace.spans if not s.is_root)
    assert sum(1 for s in trace.spans if s.is_root) == 1


def test_invalid_trace_id_is_replaced_deterministically() -> None:
    """A missing or malformed trace_id falls back to a hash of the request id."""
    packet = P.rag_packet()
    packet["trace_id"] = "zz" * 16
    first = trace_id_for(packet)
    assert len(first) == 16 and first == trace_id_for(packet)
    packet["trace_id"] = "0" * 32
    assert any(trace_id_for(packet))


def test_scope_names_the_integration() -> None:
    """The instrumentation scope is aitel.<integration> with the integration's version."""
    trace = packet_to_trace(P.rag_packet())
    assert (trace.scope.name, trace.scope.version) == ("aitel.langchain", "0.1.0")
    bare = P.rag_packet()
    bare["producer"] = {"sdk": "aitel", "sdk_version": "9.9"}
    assert packet_to_trace(bare).scope.name == "aitel"


# -- kinds and names ------------------------------------------------------------------


def test_span_kinds_and_names(rag: dict[str, SpanRecord]) -> None:
    """OpenInference kinds, OTel span kinds and gen_ai-style names per step kind."""
    summary = {
        step_id: (s.attributes["openinference.span.kind"], s.kind, s.name)
        for step_id, s in rag.items()
    }
    assert summary == {
        P.ROOT: ("CHAIN", SpanKind.INTERNAL, "invoke_workflow RagChain"),
        P.RETRIEVER: ("RETRIEVER", SpanKind.INTERNAL, "retrieval WikiRetriever"),
        P.LLM: ("LLM", SpanKind.CLIENT, "chat gpt-4o-mini-2024-07-18"),
        P.TOOL: ("TOOL", SpanKind.INTERNAL, "execute_tool lookup"),
        P.LLM2: ("LLM", SpanKind.CLIENT, "chat gpt-4o-mini-2024-07-18"),
    }
    assert rag[P.ROOT].attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert rag[P.RETRIEVER].attributes["gen_ai.operation.name"] == "retrieval"
    assert rag[P.LLM].attributes["gen_ai.operation.name"] == "chat"
    assert rag[P.TOOL].attributes["gen_ai.operation.name"] == "execute_tool"


@pytest.mark.parametrize(
    ("kind", "section", "oi_kind", "name", "operation"),
    [
        ("agent", {}, "AGENT", "invoke_agent planner", "invoke_agent"),
        (
            "embedding",
            {
                "embedding": {
                    "model_name": "text-embedding-3-small",
                    "input_count": 3,
                    "dimensions": 1536,
                }
            },
            "EMBEDDING",
            "embeddings text-embedding-3-small",
            "embeddings",
        ),
        (
            "reranker",
            {
                "retrieval": {
                    "query": "q",
                    "documents": [{"id": "d", "score": 0.5, "content": "c", "metadata": {}}],
                }
            },
            "RERANKER",
            "planner",
            None,
        ),
        ("custom", {}, "CHAIN", "planner", None),
        ("chain", {}, "CHAIN", "planner", None),
    ],
)
def test_other_step_kinds(
    kind: str, section: dict[str, Any], oi_kind: str, name: str, operation: str | None
) -> None:
    """Agents, embeddings, rerankers and custom steps map to their OpenInference kinds."""
    steps = [
        P.step(P.ROOT, "chain", "root", parent=None),
        P.step(P.TOOL, kind, "planner", **section),
    ]
    span = by_step(packet_to_trace(P.packet(steps)).spans)[P.TOOL]
    assert span.attributes["openinference.span.kind"] == oi_kind
    assert span.name == name
    assert span.attributes.get("gen_ai.operation.name") == operation


def test_embedding_attributes() -> None:
    """Embedding steps carry the model in both vocabularies and the dimension count."""
    steps = [
        P.step(
            P.ROOT,
            "embedding",
            "embed",
            parent=None,
            embedding={"model_name": "m", "input_count": 3, "dimensions": 8},
        )
    ]
    attrs = packet_to_trace(P.packet(steps)).root.attributes
    assert attrs["embedding.model_name"] == "m"
    assert attrs["gen_ai.request.model"] == "m"
    assert attrs["gen_ai.embeddings.dimension.count"] == 8
    assert attrs["aitel.embedding.input_count"] == 3


def test_reranker_documents() -> None:
    """Reranker output documents use the reranker.* namespace."""
    steps = [
        P.step(
            P.ROOT,
            "reranker",
            "rr",
            parent=None,
            retrieval={
                "query": "q",
                "documents": [{"id": "d9", "score": 0.7, "content": "c", "metadata": {}}],
            },
        )
    ]
    attrs = packet_to_trace(P.packet(steps)).root.attributes
    assert attrs["reranker.query"] == "q"
    assert attrs["reranker.output_documents.0.document.id"] == "d9"
    assert attrs["reranker.output_documents.0.document.score"] == 0.7


# -- model calls ----------------------------------------------------------------------


def test_llm_span_carries_both_vocabularies(rag: dict[str, SpanRecord]) -> None:
    """Model, provider, parameters, tokens, cost and timing in OpenInference and gen_ai."""
    a = rag[P.LLM2].attributes
    expected = {
        "llm.model_name": "gpt-4o-mini-2024-07-18",
        "llm.request.model_name": "gpt-4o-mini",
        "llm.response.model_name": "gpt-4o-mini-2024-07-18",
        "llm.provider": "openai",
        "llm.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 256,
        "gen_ai.request.stop_sequences": ["\n\n"],
        "llm.token_count.prompt": 120,
        "llm.token_count.completion": 8,
        "llm.token_count.total": 128,
        "llm.token_count.prompt_details.cache_read": 100,
        "llm.token_count.completion_details.reasoning": 3,
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 8,
        "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.usage.reasoning.output_tokens": 3,
        "llm.cost.total": 0.0000228,
        "aitel.cost_usd": 0.0000228,
        "llm.finish_reason": "stop",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.response.time_to_first_chunk": 0.25,
        "aitel.llm.streamed": True,
        "aitel.llm.chunks": 4,
        "aitel.llm.logprobs.tokens": 4,
        "aitel.llm.logprobs.mean_logprob": -0.25,
        "aitel.llm.logprobs.min_logprob": -1.0,
        "aitel.llm.logprobs.perplexity": 1.284,
        "session.id": "session-7",
        "user.id": "user-9",
        "gen_ai.conversation.id": "session-7",
    }
    assert {k: a.get(k) for k in expected} == expected
    assert "llm.token_count.prompt_details.cache_write" not in a  # unknown is not 0
    params = json.loads(str(a["llm.invocation_parameters"]))
    assert params == {
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_tokens": 256,
        "stop": ["\n\n"],
    }
    assert json.loads(str(a["llm.tools.0.tool.json_schema"]))["function"]["name"] == "lookup"
    assert json.loads(str(a["gen_ai.tool.definitions"]))[0]["type"] == "function"


def test_llm_messages_in_openinference_and_genai(rag: dict[str, SpanRecord]) -> None:
    """Input and output messages are flattened for OpenInference and JSON for gen_ai."""
    a = rag[P.LLM2].attributes
    assert a["llm.input_messages.0.message.role"] == "system"
    assert a["llm.input_messages.1.message.content"] == "What is the capital of France?"
    assert a["llm.output_messages.0.message.role"] == "assistant"
    assert a["llm.output_messages.0.message.content"] == "Paris."
    assert json.loads(str(a["gen_ai.input.messages"]))[1] == {
        "role": "user",
        "parts": [{"type": "text", "content": "What is the capital of France?"}],
    }
    assert json.loads(str(a["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Paris."}],
            "finish_reason": "stop",
        }
    ]
    assert a["output.value"] == "Paris."
    assert a["input.mime_type"] == "application/json"
    assert json.loads(str(a["input.value"]))["messages"][0]["role"] == "system"


def test_llm_tool_calls_become_output_message_tool_calls(rag: dict[str, SpanRecord]) -> None:
    """A model's tool calls are output-message tool calls (OpenInference) and tool_call parts."""
    a = rag[P.LLM].attributes
    base = "llm.output_messages.0.message.tool_calls.0.tool_call"
    assert a[f"{base}.id"] == "call_1"
    assert a[f"{base}.function.name"] == "lookup"
    assert json.loads(str(a[f"{base}.function.arguments"])) == {"city": "Paris"}
    parts = json.loads(str(a["gen_ai.output.messages"]))[0]["parts"]
    assert parts == [
        {"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": {"city": "Paris"}}
    ]
    assert a["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert json.loads(str(a["output.value"])) == {
        "tool_calls": [{"id": "call_1", "name": "lookup", "arguments": {"city": "Paris"}}]
    }


def test_multipart_and_tool_messages() -> None:
    """Content parts, images, tool results and names survive in both vocabularies."""
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "name": "f", "arguments": '{"a":1}'}],
        },
        {"role": "tool", "content": "42", "tool_call_id": "c1", "name": "f"},
    ]
    steps = [model_root("ok", P.llm_section(messages=messages))]
    a = packet_to_trace(P.packet(steps)).root.attributes
    base = "llm.input_messages"
    assert a[f"{base}.0.message.contents.0.message_content.type"] == "text"
    assert a[f"{base}.0.message.contents.0.message_content.text"] == "look"
    assert a[f"{base}.0.message.contents.1.message_content.type"] == "image"
    assert a[f"{base}.0.message.contents.1.message_content.image.image.url"] == "https://x/y.png"
    assert a[f"{base}.1.message.tool_calls.0.tool_call.function.arguments"] == '{"a":1}'
    assert a[f"{base}.2.message.tool_call_id"] == "c1"
    assert a[f"{base}.2.message.name"] == "f"
    genai = json.loads(str(a["gen_ai.input.messages"]))
    assert genai[0]["parts"][1] == {"type": "uri", "modality": "image", "uri": "https://x/y.png"}
    assert genai[2] == {
        "role": "tool",
        "name": "f",
        "parts": [{"type": "tool_call_response", "id": "c1", "response": "42"}],
    }


def test_completion_model_uses_prompts_and_choices() -> None:
    """A completion-style llm step maps to text_completion with prompts and choices."""
    llm = P.llm_section(
        messages=None,
        prompts=["Say hi"],
        invocation_params={"model_name": "davinci"},
        model_name=None,
        provider=None,
    )
    steps = [P.step(P.ROOT, "llm", "OpenAI", parent=None, output="hi", llm=llm)]
    root = packet_to_trace(P.packet(steps)).root
    a = root.attributes
    assert root.name == "text_completion davinci"
    assert a["gen_ai.operation.name"] == "text_completion"
    assert a["llm.prompts.0.prompt.text"] == "Say hi"
    assert a["llm.choices.0.completion.text"] == "hi"
    assert a["input.value"] == "Say hi"
    assert a["llm.model_name"] == "davinci"


def test_unreported_usage_is_absent_not_zero() -> None:
    """No usage: no token attributes at all, and aitel.llm.usage_reported=false."""
    steps = [model_root("x", P.llm_section(usage=None, cost_usd=None))]
    a = packet_to_trace(P.packet(steps)).root.attributes
    assert not [k for k in a if "token_count" in k or "gen_ai.usage" in k]
    assert a["aitel.llm.usage_reported"] is False
    assert "llm.cost.total" not in a


@pytest.mark.parametrize(
    ("provider", "openinference", "genai"),
    [
        ("openai", "openai", "openai"),
        ("anthropic", "anthropic", "anthropic"),
        ("azure_openai", "azure", "azure.ai.openai"),
        ("google_vertexai", "google", "gcp.vertex_ai"),
        ("google_genai", "google", "gcp.gen_ai"),
        ("bedrock", "aws", "aws.bedrock"),
        ("mistralai", "mistralai", "mistral_ai"),
        ("xai", "xai", "x_ai"),
        ("Ollama", "ollama", "ollama"),
    ],
)
def test_provider_names(provider: str, openinference: str, genai: str) -> None:
    """LangChain provider ids map to OpenInference and gen_ai well-known values."""
    steps = [P.step(P.ROOT, "chat_model", "m", parent=None, llm=P.llm_section(provider=provider))]
    a = packet_to_trace(P.packet(steps)).root.attributes
    assert (a["llm.provider"], a["gen_ai.provider.name"]) == (openinference, genai)


# -- retrieval and tools --------------------------------------------------------------


def test_retrieval_documents_with_ids_and_scores(rag: dict[str, SpanRecord]) -> None:
    """Documents keep id, content, score and metadata (source folded in)."""
    a = rag[P.RETRIEVER].attributes
    assert a["retrieval.documents.0.document.id"] == "doc-1"
    assert a["retrieval.documents.0.document.score"] == 0.92
    assert a["retrieval.documents.0.document.content"] == "Paris is the capital of France."
    assert json.loads(str(a["retrieval.documents.0.document.metadata"])) == {
        "lang": "en",
        "source": "wiki/paris",
    }
    assert a["retrieval.documents.1.document.id"] == "doc-2"
    assert "retrieval.documents.1.document.metadata" not in a
    assert a["gen_ai.retrieval.query.text"] == "capital of France"
    assert json.loads(str(a["gen_ai.retrieval.documents"])) == [
        {"id": "doc-1", "score": 0.92},
        {"id": "doc-2", "score": 0.41},
    ]
    assert a["input.value"] == "capital of France"


def test_tool_attributes_and_link_to_requesting_model(rag: dict[str, SpanRecord]) -> None:
    """A tool span names the tool, its call id and arguments, and links to the model span."""
    tool = rag[P.TOOL]
    a = tool.attributes
    assert a["tool.name"] == a["gen_ai.tool.name"] == "lookup"
    assert a["tool.id"] == a["gen_ai.tool.call.id"] == "call_1"
    assert json.loads(str(a["tool.parameters"])) == {"city": "Paris"}
    assert json.loads(str(a["gen_ai.tool.call.arguments"])) == {"city": "Paris"}
    assert a["gen_ai.tool.call.result"] == "capital"
    assert a["aitel.tool.requested_by_step_id"] == P.LLM
    assert [(link.span_id, link.attributes) for link in tool.links] == [
        (rag[P.LLM].span_id, {"aitel.link": "tool_call_requested_by"})
    ]


# -- request-level attributes -----------------------------------------------------------


def test_request_span_carries_pipeline_metadata_and_totals(rag: dict[str, SpanRecord]) -> None:
    """Session, user, A/B variant, versions, environment, totals and processing notes."""
    a = rag[P.ROOT].attributes
    expected = {
        "session.id": "session-7",
        "user.id": "user-9",
        "gen_ai.conversation.id": "session-7",
        "aitel.request_id": "req-42",
        "aitel.packet_id": "00000000-0000-7000-8000-0000000000aa",
        "aitel.schema_version": "1.0",
        "aitel.status": "SUCCESS",
        "aitel.ab_variant": "B",
        "aitel.model_version": "2024-07-18",
        "aitel.preprocessing_version": "pre-3",
        "aitel.app_version": "1.4.2",
        "aitel.environment": "staging",
        "aitel.model_name": "gpt-4o-mini-2024-07-18",
        "aitel.model_provider": "openai",
        "aitel.latency_ms": 900.0,
        "aitel.time_to_first_token_ms": 780.0,
        "aitel.usage.prompt_tokens": 240,
        "aitel.usage.completion_tokens": 16,
        "aitel.usage.total_tokens": 256,
        "aitel.usage.complete": True,
        "aitel.cost_usd": 0.0000456,
        "aitel.cost_complete": True,
        "aitel.llm_calls": 2,
        "aitel.tool_calls": 1,
        "aitel.retries": 0,
        "aitel.processing.truncated_values": 1,
        "tag.tags": ["prod-like", "rag"],
        "gen_ai.workflow.name": "RagChain",
    }
    assert {k: a.get(k) for k in expected} == expected
    assert json.loads(str(a["aitel.processing.redactions"])) == {"email": 2}
    assert json.loads(str(a["metadata"])) == {"route": "qa", "tenant": "acme"}
    assert not [k for k in a if k.startswith("llm.token_count")]  # no double counting


def test_successful_spans_are_ok(rag: dict[str, SpanRecord]) -> None:
    """Steps that reported success are status OK."""
    assert {s.status_code for s in rag.values()} == {StatusCode.OK}


def test_incomplete_step_is_unset() -> None:
    """A step that never reported its end is UNSET, with its status as an attribute."""
    steps = [
        P.step(P.ROOT, "chain", "r", parent=None),
        P.step(P.TOOL, "chain", "s", status="INCOMPLETE"),
    ]
    span = by_step(packet_to_trace(P.packet(steps)).spans)[P.TOOL]
    assert span.status_code is StatusCode.UNSET
    assert span.attributes["aitel.step.status"] == "INCOMPLETE"


def test_step_metadata_and_tags_stay_on_their_span() -> None:
    """A non-root step's own metadata and tags are on its span only."""
    steps = [
        P.step(P.ROOT, "chain", "r", parent=None),
        P.step(P.TOOL, "chain", "s", tags=["seq:1"], metadata={"k": 1}),
    ]
    span = by_step(packet_to_trace(P.packet(steps)).spans)[P.TOOL]
    assert span.attributes["tag.tags"] == ["seq:1"]
    assert json.loads(str(span.attributes["metadata"])) == {"k": 1}


def test_step_events_become_span_events() -> None:
    """Step events keep their name and time; their data is JSON."""
    event = {"name": "retry", "time": P.at(5), "data": {"attempt": 2}}
    steps = [P.step(P.ROOT, "chain", "r", parent=None, events=[event])]
    root = packet_to_trace(P.packet(steps)).root
    assert [(e.name, e.time_unix_nano, e.attributes) for e in root.events] == [
        ("retry", P.BASE_NS + 5_000_000, {"aitel.event.data": '{"attempt":2}'})
    ]


# -- errors ---------------------------------------------------------------------------


def test_failing_step_and_root_have_error_status_and_exception_events() -> None:
    """The failing step and the request span are ERROR with an exception event each."""
    spans = by_step(packet_to_trace(P.failed_packet()).spans)
    for step_id in (P.ROOT, P.TOOL):
        span = spans[step_id]
        assert span.status_code is StatusCode.ERROR
        assert span.status_message == "ValueError: no such city"
        assert span.attributes["error.type"] == "ValueError"
        [event] = [e for e in span.events if e.name == "exception"]
        assert event.attributes["exception.type"] == "ValueError"
        assert event.attributes["exception.message"] == "no such city"
        assert "Traceback" in str(event.attributes["exception.stacktrace"])
        assert event.time_unix_nano == span.end_time_unix_nano
    root = spans[P.ROOT].attributes
    assert (root["aitel.error.step_id"], root["aitel.error.step_name"]) == (P.TOOL, "lookup")
    assert root["aitel.status"] == "FAILURE"


def test_failure_without_error_details_still_marks_the_request() -> None:
    """A FAILURE packet without an error object still gets ERROR and an exception event."""
    packet = P.packet([], status="FAILURE", error_message="boom")
    root = packet_to_trace(packet).root
    assert root.status_code is StatusCode.ERROR
    assert root.status_message == "Error: boom"
    assert [e.name for e in root.events] == ["exception"]


# -- limits ---------------------------------------------------------------------------


def test_long_values_are_truncated_with_a_marker_and_counted() -> None:
    """Strings over the limit are cut visibly; the span and the trace count the cuts."""
    steps = [P.step(P.ROOT, "chain", "r", parent=None, input="x" * 500, output="y" * 50)]
    trace = packet_to_trace(P.packet(steps), MappingOptions(max_value_chars=100))
    a = trace.root.attributes
    assert a["input.value"] == "x" * 100 + "…[truncated 400 chars]"
    assert a["output.value"] == "y" * 50
    assert a["aitel.otlp.truncated_values"] == trace.truncated_values >= 1


def test_long_lists_are_cut_and_counted() -> None:
    """Documents beyond max_items are left out and counted, never silently."""
    docs = [{"id": f"d{i}", "score": 1.0, "content": "c", "metadata": {}} for i in range(5)]
    steps = [
        P.step(P.ROOT, "retriever", "r", parent=None, retrieval={"query": "q", "documents": docs})
    ]
    trace = packet_to_trace(P.packet(steps), MappingOptions(max_items=2))
    a = trace.root.attributes
    assert "retrieval.documents.1.document.id" in a
    assert "retrieval.documents.2.document.id" not in a
    assert a["aitel.otlp.omitted_items"] == 3
    assert trace.truncated_values >= 1


def test_genai_messages_can_be_switched_off() -> None:
    """genai_messages=False drops only the duplicate JSON message attributes."""
    trace = packet_to_trace(P.rag_packet(), MappingOptions(genai_messages=False))
    a = by_step(trace.spans)[P.LLM2].attributes
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert a["llm.input_messages.0.message.role"] == "system"


def test_attribute_types_are_otel_types() -> None:
    """Every attribute is a str, bool, int, float or a homogeneous list of them."""
    for packet in (P.rag_packet(), P.failed_packet()):
        for span in packet_to_trace(packet).spans:
            for key, value in span.attributes.items():
                if isinstance(value, list):
                    assert len({type(v) for v in value}) <= 1, key
                else:
                    assert isinstance(value, str | bool | int | float), key


def test_odd_values_never_raise() -> None:
    """Garbage in sections (wrong types, huge ints, non-dicts) maps without raising."""
    steps = [
        model_root(
            {"x": 1},
            {
                "model_name": 5,
                "usage": {"prompt_tokens": "many"},
                "messages": ["hi", 3],
                "invocation_params": {"temperature": "hot", "seed": 2**70},
                "tool_calls": "nope",
            },
            metadata={"big": 2**80},
            tags=[1, "ok"],
            events=["bad"],
        )
    ]
    trace = packet_to_trace(P.packet(steps, pipeline_metadata=None, performance=None))
    a = trace.root.attributes
    assert a["llm.input_messages.0.message.content"] == "hi"
    assert "gen_ai.request.temperature" not in a
    assert a["gen_ai.request.seed"] == str(2**70)
