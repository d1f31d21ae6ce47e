"""Concurrent requests: separate packets, each with its own query, answer and request tags."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from llama_index.callbacks.aitel import instrument_tags
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.tools import FunctionTool

pytestmark = pytest.mark.usefixtures("instrumentation")

N = 50


class EchoLLM:
    """Builds a scripted model whose answer names the question it was asked."""

    @staticmethod
    def make(fakes: Any) -> Any:
        from llama_index.core.base.llms.types import CompletionResponse
        from llama_index.core.llms.callbacks import llm_completion_callback

        class Echo(fakes.ScriptedLLM):  # type: ignore[misc,name-defined]
            @llm_completion_callback()
            def complete(
                self, prompt: str, formatted: bool = False, **kwargs: Any
            ) -> CompletionResponse:
                question = prompt.rsplit("Query: ", 1)[-1].split("\n", 1)[0]
                return CompletionResponse(text=f"answer to {question}", raw=self._raw())

        return Echo()


def test_concurrent_async_queries_make_separate_correct_packets(index, fakes, packets) -> None:
    """50 aquery calls under asyncio.gather: 50 packets, none mixing another request's steps."""
    engine = index.as_query_engine(llm=EchoLLM.make(fakes))

    async def ask(i: int) -> str:
        with instrument_tags(
            {"request_id": f"req-{i}", "session_id": f"s-{i % 5}", "user_id": f"u-{i}"}
        ):
            return str(await engine.aquery(f"question {i}"))

    async def run() -> list[str]:
        return await asyncio.gather(*(ask(i) for i in range(N)))

    answers = asyncio.run(run())
    assert answers == [f"answer to question {i}" for i in range(N)]
    found = packets()
    assert len(found) == N
    by_request = {p["request_id"]: p for p in found}
    assert sorted(by_request) == sorted(f"req-{i}" for i in range(N))
    for i in range(N):
        packet = by_request[f"req-{i}"]
        question = f"question {i}"
        assert packet["status"] == "SUCCESS"
        assert packet["payload"] == {"input": question, "output": f"answer to {question}"}
        assert packet["pipeline_metadata"]["session_id"] == f"s-{i % 5}"
        assert packet["pipeline_metadata"]["user_id"] == f"u-{i}"
        assert [s["kind"] for s in packet["steps"]] == [
            "chain",
            "retriever",
            "embedding",
            "chain",
            "chain",
            "llm",
        ]
        ids = {s["step_id"] for s in packet["steps"]}
        assert all(s["parent_id"] in ids for s in packet["steps"][1:])
        assert packet["steps"][1]["retrieval"]["query"] == question
        assert question in packet["steps"][5]["input"]
        assert packet["steps"][5]["output"] == f"answer to {question}"
        assert packet["performance"]["llm_calls"] == 1
        assert packet["performance"]["total_tokens"] == 14


def test_concurrent_agent_runs_make_separate_correct_packets(fakes, packets) -> None:
    """50 agent runs at once: each packet has its own question, tool call and answer."""

    def respond(messages: Sequence[ChatMessage], **_: Any) -> ChatMessage:
        question = next(m.content for m in messages if m.role == MessageRole.USER) or ""
        n = int(question.split()[-1])
        if any(m.role == MessageRole.TOOL for m in messages):
            result = next(m.content for m in messages if m.role == MessageRole.TOOL)
            return ChatMessage(role="assistant", content=f"{n} times 3 is {result}")
        block = ToolCallBlock(
            tool_call_id=f"call-{n}", tool_name="multiply", tool_kwargs={"a": n, "b": 3}
        )
        return ChatMessage(role="assistant", blocks=[block])

    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(fn=fakes.multiply)], llm=fakes.function_llm(respond)
    )

    async def ask(i: int) -> str:
        with instrument_tags({"request_id": f"agent-{i}"}):
            return str(await agent.run(user_msg=f"multiply {i}"))

    async def run() -> list[str]:
        return await asyncio.gather(*(ask(i) for i in range(N)))

    assert asyncio.run(run()) == [f"{i} times 3 is {i * 3}" for i in range(N)]
    found = packets()
    assert len(found) == N
    by_request = {p["request_id"]: p for p in found}
    for i in range(N):
        packet = by_request[f"agent-{i}"]
        assert packet["payload"] == {"input": f"multiply {i}", "output": f"{i} times 3 is {i * 3}"}
        tools = [s for s in packet["steps"] if s["kind"] == "tool"]
        assert len(tools) == 1
        assert tools[0]["input"] == {"a": i, "b": 3}
        assert tools[0]["output"] == str(i * 3)
        assert tools[0]["tool"]["tool_call_id"] == f"call-{i}"
        requester = next(
            s for s in packet["steps"] if s["step_id"] == tools[0]["tool"]["requested_by_step_id"]
        )
        assert requester["llm"]["tool_calls"][0]["id"] == f"call-{i}"
        assert packet["performance"]["llm_calls"] == 2


def test_queries_from_many_threads(index, fakes, packets) -> None:
    """Queries from 8 threads at once: one correct packet each."""
    engine = index.as_query_engine(llm=EchoLLM.make(fakes))
    results: dict[int, str] = {}
    start = threading.Barrier(8)

    def worker(i: int) -> None:
        start.wait()
        results[i] = str(engine.query(f"thread {i}"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: f"answer to thread {i}" for i in range(8)}
    found = packets()
    assert sorted(p["payload"]["input"] for p in found) == sorted(f"thread {i}" for i in range(8))
    for packet in found:
        assert packet["payload"]["output"] == f"answer to {packet['payload']['input']}"
        assert len(packet["steps"]) == 6
