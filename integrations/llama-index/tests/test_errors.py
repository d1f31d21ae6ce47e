"""Failures: a FAILURE packet whose error names the step where the error arose."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

pytestmark = pytest.mark.usefixtures("instrumentation")


def _failing_step(packet: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in packet["steps"] if s["step_id"] == packet["error"]["step_id"])


def test_model_error_in_a_query(index, fakes, packets) -> None:
    """The model raises: the packet fails and its error points at the model call."""
    llm = fakes.ScriptedLLM(fail_with="model unavailable")
    with pytest.raises(RuntimeError, match="model unavailable"):
        index.as_query_engine(llm=llm).query("Capital?")
    (packet,) = packets()
    assert packet["status"] == "FAILURE"
    assert packet["error_message"] == "model unavailable"
    error = packet["error"]
    assert error["type"] == "RuntimeError"
    assert error["step_kind"] == "llm"
    assert error["step_name"] == "ScriptedLLM.complete"
    step = _failing_step(packet)
    assert step["kind"] == "llm"
    assert step["status"] == "FAILURE"
    assert step["error"]["message"] == "model unavailable"
    assert "model unavailable" in error["traceback"]
    statuses = {s["name"].split(".")[-1]: s["status"] for s in packet["steps"]}
    assert statuses["retrieve"] == "SUCCESS"
    assert statuses["synthesize"] == "FAILURE"
    assert statuses["query"] == "FAILURE"


class _BrokenRetriever(BaseRetriever):
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        raise ConnectionError("vector store down")


def test_retriever_error(llm, packets) -> None:
    """The retriever raises: the error names the retrieval step."""
    from llama_index.core.query_engine import RetrieverQueryEngine

    engine = RetrieverQueryEngine.from_args(_BrokenRetriever(), llm=llm)
    with pytest.raises(ConnectionError):
        engine.query("Capital?")
    (packet,) = packets()
    assert packet["status"] == "FAILURE"
    assert packet["error"]["type"] == "ConnectionError"
    assert packet["error"]["step_kind"] == "retriever"
    assert packet["error"]["step_name"] == "_BrokenRetriever.retrieve"
    assert _failing_step(packet)["kind"] == "retriever"
    assert llm.calls == []
    assert packet["performance"]["llm_calls"] == 0


def test_model_error_mid_stream(index, fakes, packets) -> None:
    """A stream that breaks after its first chunk fails the request at the model call."""
    llm = fakes.ScriptedLLM(fail_with="connection reset")
    response = index.as_query_engine(llm=llm, streaming=True).query("Capital?")
    stream = response.response_gen
    assert next(stream) == "Par"
    with pytest.raises(RuntimeError, match="connection reset"):
        next(stream)
    (packet,) = packets()
    assert packet["status"] == "FAILURE"
    assert packet["error"]["step_kind"] == "llm"
    step = _failing_step(packet)
    assert step["name"] == "ScriptedLLM.stream_complete"
    assert step["llm"]["chunks"] == 1
    assert step["llm"]["time_to_first_token_ms"] is not None


def test_model_error_in_an_agent(fakes, packets) -> None:
    """The agent's model raises: the error names the chat model step."""

    def respond(messages: Any, **_: Any) -> ChatMessage:
        raise ValueError("rate limited")

    agent = FunctionAgent(tools=[], llm=fakes.function_llm(respond))

    async def run() -> Any:
        return await agent.run(user_msg="hi")

    with pytest.raises(ValueError, match="rate limited"):
        asyncio.run(run())
    (packet,) = packets()
    assert packet["status"] == "FAILURE"
    assert packet["error"]["step_kind"] == "chat_model"
    assert packet["error"]["step_name"] == "MockFunctionCallingLLM.astream_chat"
    assert packet["error"]["message"] == "rate limited"
    assert packet["steps"][0]["status"] == "FAILURE"


def test_a_bug_in_telemetry_never_reaches_the_application(
    index, llm, instrumentation, monkeypatch
) -> None:
    """If the translation itself raises, LlamaIndex still answers."""
    translator = instrumentation.span_handler._translator

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(translator, "span_enter", explode)
    monkeypatch.setattr(translator, "handle", explode)
    assert str(index.as_query_engine(llm=llm).query("Capital?")) == "Paris."
