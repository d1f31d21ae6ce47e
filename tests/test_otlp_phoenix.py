"""End to end: LangChain runs -> aitel packets -> OTLP -> a real Arize Phoenix -> its REST API.

Phoenix is started once per session (see ``conftest_phoenix.py``); the
tests are skipped when it is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_aitel import AITelHandler
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda, RunnablePassthrough
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool

import aitel
from aitel.exporters.base import EncodedPacket, ExportResult
from aitel.exporters.memory import InMemoryExporter
from aitel.exporters.otlp import OtlpExporter
from aitel.otlp import span_id_for


def _load(name: str) -> ModuleType:
    key = f"aitel_tests_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).parent / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


pytest.importorskip("opentelemetry.proto", reason="needs the otlp extra: pip install 'aitel[otlp]'")
phoenix = _load("conftest_phoenix").phoenix  # the session-scoped fixture

pytestmark = pytest.mark.slow

PROJECT = "aitel-otlp-tests"
MODEL = "gpt-4o-mini-2024-07-18"
OI_KIND = {
    "chain": "CHAIN",
    "chat_model": "LLM",
    "llm": "LLM",
    "retriever": "RETRIEVER",
    "tool": "TOOL",
    "agent": "AGENT",
    "embedding": "EMBEDDING",
    "reranker": "RERANKER",
    "custom": "CHAIN",
}


# -- a LangChain RAG chain and a tool-calling agent, offline ----------------------------------


class WikiRetriever(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: Any = None) -> list[Document]:
        return [
            Document(
                id="doc-paris",
                page_content="Paris is the capital of France.",
                metadata={"score": 0.93, "source": "wiki/paris"},
            ),
            Document(
                id="doc-europe",
                page_content="France is in Western Europe.",
                metadata={"score": 0.41},
            ),
        ]


def rag_chain() -> Runnable[str, str]:
    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(
                    "Paris.",
                    usage_metadata={
                        "input_tokens": 52,
                        "output_tokens": 3,
                        "total_tokens": 55,
                        "input_token_details": {"cache_read": 32},
                    },
                    response_metadata={"model_name": MODEL, "finish_reason": "stop"},
                )
            ]
        )
    )
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from the context: {context}"), ("human", "{question}")]
    )

    def join(docs: list[Document]) -> str:
        return "\n".join(d.page_content for d in docs)

    chain = {"context": WikiRetriever() | join, "question": RunnablePassthrough()} | prompt
    return (chain | model | StrOutputParser()).with_config(run_name="rag_chain")


class ScriptedToolModel(BaseChatModel):
    """A chat model that answers from a script of AIMessages (tool calls included)."""

    replies: list[AIMessage]
    position: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-model"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(ls_provider="openai", ls_model_name="gpt-4o", ls_model_type="chat")

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self.replies[min(self.position, len(self.replies) - 1)]
        self.position += 1
        return ChatResult(generations=[ChatGeneration(message=reply)])


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    if city == "Atlantis":
        raise LookupError("no weather station in Atlantis")
    return f"{city}: sunny, 24C"


@tool
def to_fahrenheit(celsius: float) -> float:
    """Convert Celsius to Fahrenheit."""
    return celsius * 9 / 5 + 32


TOOLS: dict[str, BaseTool] = {"get_weather": get_weather, "to_fahrenheit": to_fahrenheit}


def turn(*calls: tuple[str, dict[str, Any], str], text: str = "") -> AIMessage:
    return AIMessage(
        text,
        tool_calls=[{"name": n, "args": a, "id": i, "type": "tool_call"} for n, a, i in calls],
        usage_metadata={"input_tokens": 40, "output_tokens": 12, "total_tokens": 52},
        response_metadata={
            "model_name": "gpt-4o-2024-08-06",
            "finish_reason": "tool_calls" if calls else "stop",
        },
    )


def agent(replies: list[AIMessage]) -> Runnable[str, str]:
    bound = ScriptedToolModel(replies=replies).bind_tools(list(TOOLS.values()))

    def loop(question: str, config: RunnableConfig) -> str:
        messages: list[BaseMessage] = [HumanMessage(question)]
        for _ in range(4):
            reply = bound.invoke(messages, config)
            messages.append(reply)
            if not isinstance(reply, AIMessage) or not reply.tool_calls:
                return str(reply.content)
            for call in reply.tool_calls:
                messages.append(TOOLS[call["name"]].invoke(call, config))
        return "gave up"

    return RunnableLambda(loop).with_config(run_name="weather_agent")


class Tee:
    """Sends to OTLP and keeps the packets, to compare what Phoenix stored with what was sent."""

    def __init__(self, otlp: OtlpExporter) -> None:
        self.otlp = otlp
        self.memory = InMemoryExporter()
        self._lock = threading.Lock()

    def export(self, batch: Sequence[EncodedPacket]) -> ExportResult:
        result = self.otlp.export(batch)
        if result.exported:
            self.memory.export(batch)
        return result

    def force_flush(self, timeout_s: float) -> bool:
        return self.otlp.force_flush(timeout_s)

    def shutdown(self, timeout_s: float) -> None:
        self.otlp.shutdown(timeout_s)


# -- run once, read back once -------------------------------------------------------------


@pytest.fixture(scope="module")
def stored(phoenix: Any) -> Iterator[tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]]:
    """Three requests exported to Phoenix: the packets sent and Phoenix's spans by step id."""
    otlp = OtlpExporter(
        phoenix.otlp_endpoint, project_name=PROJECT, service_name="aitel-tests", env={}
    )
    tee = Tee(otlp)
    tracer = aitel.Tracer(tee, settings=aitel.Settings(redaction=()))
    handler = AITelHandler(
        tracer=tracer, session_id="session-otlp", user_id="user-1", ab_variant="B"
    )
    config: RunnableConfig = {"callbacks": [handler]}

    assert rag_chain().invoke("What is the capital of France?", config) == "Paris."
    answer = agent(
        [
            turn(("get_weather", {"city": "Lisbon"}, "call_w1")),
            turn(("to_fahrenheit", {"celsius": 24}, "call_f1")),
            turn(text="Sunny, 75F in Lisbon."),
        ]
    ).invoke("Weather in Lisbon in F?", config)
    assert answer == "Sunny, 75F in Lisbon."
    with pytest.raises(LookupError):
        agent([turn(("get_weather", {"city": "Atlantis"}, "call_a1"))]).invoke("Atlantis?", config)

    try:
        assert tracer.flush(timeout=60.0), tracer.stats()
        packets = tee.memory.packets
        assert len(packets) == 3, (tracer.stats(), otlp.stats())
        expected = sum(len(p["steps"]) for p in packets)
        spans = phoenix.wait_for_spans(PROJECT, lambda s: len(s) >= expected)
        assert len(spans) == expected
        by_step = {s["attributes"]["aitel.step.id"]: s for s in spans}
        yield packets, by_step
    finally:
        tracer.shutdown(10.0)


def packet_named(packets: list[dict[str, Any]], name: str, status: str) -> dict[str, Any]:
    return next(
        p
        for p in packets
        if p["pipeline_metadata"]["function_name"] == name and p["status"] == status
    )


def test_phoenix_started(phoenix: Any) -> None:
    """Phoenix became healthy (its start time is printed with -s)."""
    print(f"\nPhoenix healthy after {phoenix.start_seconds:.1f}s at {phoenix.base_url}")
    assert phoenix.process.poll() is None


def test_tree_shape_matches_the_packets(stored: Any) -> None:
    """Every step is a span in its packet's trace, under the span of its parent step."""
    packets, by_step = stored
    for packet in packets:
        trace_id = bytes.fromhex(packet["trace_id"])
        for step in packet["steps"]:
            span = by_step[step["step_id"]]
            assert span["context"]["trace_id"] == packet["trace_id"]
            assert span["context"]["span_id"] == span_id_for(trace_id, step["step_id"]).hex()
            parent = step["parent_id"]
            if parent is None:
                assert not span["parent_id"]
            else:
                assert span["parent_id"] == span_id_for(trace_id, parent).hex()


def test_span_kinds(stored: Any) -> None:
    """Phoenix sees the OpenInference kind of every step."""
    packets, by_step = stored
    for packet in packets:
        for step in packet["steps"]:
            assert by_step[step["step_id"]]["span_kind"] == OI_KIND[step["kind"]], step["name"]
    rag = packet_named(packets, "rag_chain", "SUCCESS")
    assert {"CHAIN", "RETRIEVER", "LLM"} <= {
        by_step[s["step_id"]]["span_kind"] for s in rag["steps"]
    }
    agent_packet = packet_named(packets, "weather_agent", "SUCCESS")
    kinds = [by_step[s["step_id"]]["span_kind"] for s in agent_packet["steps"]]
    assert kinds.count("LLM") == 3 and kinds.count("TOOL") == 2


def test_model_name_and_token_counts(stored: Any) -> None:
    """The model span of the RAG chain has the model name and the token counts."""
    packets, by_step = stored
    rag = packet_named(packets, "rag_chain", "SUCCESS")
    [llm_step] = [s for s in rag["steps"] if s["kind"] == "chat_model"]
    span = by_step[llm_step["step_id"]]
    a = span["attributes"]
    assert span["name"] == f"chat {MODEL}"
    assert a["llm.model_name"] == MODEL
    assert (
        a["llm.token_count.prompt"],
        a["llm.token_count.completion"],
        a["llm.token_count.total"],
    ) == (52, 3, 55)
    assert a["llm.token_count.prompt_details.cache_read"] == 32
    assert a["gen_ai.usage.input_tokens"] == 52
    assert a["llm.input_messages.1.message.content"] == "What is the capital of France?"
    assert a["llm.output_messages.0.message.content"] == "Paris."
    root = by_step[rag["steps"][0]["step_id"]]["attributes"]
    assert (root["session.id"], root["user.id"], root["aitel.ab_variant"]) == (
        "session-otlp",
        "user-1",
        "B",
    )


def test_retrieval_documents_with_ids_and_scores(stored: Any) -> None:
    """Phoenix stores the retrieved documents' ids, scores and contents."""
    packets, by_step = stored
    rag = packet_named(packets, "rag_chain", "SUCCESS")
    [retriever] = [s for s in rag["steps"] if s["kind"] == "retriever"]
    a = by_step[retriever["step_id"]]["attributes"]
    docs = [
        (a[f"retrieval.documents.{i}.document.id"], a[f"retrieval.documents.{i}.document.score"])
        for i in range(2)
    ]
    assert docs == [("doc-paris", 0.93), ("doc-europe", 0.41)]
    assert a["retrieval.documents.0.document.content"] == "Paris is the capital of France."


def test_tool_spans(stored: Any) -> None:
    """Tool spans carry the tool name and the model's tool call id; model spans the provider."""
    packets, by_step = stored
    agent_packet = packet_named(packets, "weather_agent", "SUCCESS")
    tools = [by_step[s["step_id"]] for s in agent_packet["steps"] if s["kind"] == "tool"]
    assert [
        (t["name"], t["attributes"]["tool.name"], t["attributes"]["tool.id"]) for t in tools
    ] == [
        ("execute_tool get_weather", "get_weather", "call_w1"),
        ("execute_tool to_fahrenheit", "to_fahrenheit", "call_f1"),
    ]
    models = [by_step[s["step_id"]] for s in agent_packet["steps"] if s["kind"] == "chat_model"]
    first = models[0]["attributes"]
    assert first["llm.provider"] == "openai"
    assert first["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == (
        "get_weather"
    )


def test_failing_run_has_error_status(stored: Any) -> None:
    """The failing tool and the request span are ERROR with the exception recorded."""
    packets, by_step = stored
    failed = packet_named(packets, "weather_agent", "FAILURE")
    root = by_step[failed["steps"][0]["step_id"]]
    [tool_step] = [s for s in failed["steps"] if s["kind"] == "tool"]
    tool_span = by_step[tool_step["step_id"]]
    for span in (root, tool_span):
        assert span["status_code"] == "ERROR"
        assert "no weather station in Atlantis" in span["status_message"]
        [event] = [e for e in span["events"] if e["name"] == "exception"]
        assert event["attributes"]["exception.type"] == "LookupError"
    ok = packet_named(packets, "rag_chain", "SUCCESS")
    assert by_step[ok["steps"][0]["step_id"]]["status_code"] == "OK"
