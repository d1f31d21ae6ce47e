"""Streaming, async and concurrent runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes import FailingModel, StreamingUsageModel, answer, usage
from langchain_aitel import AITelHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from aitel.testing import PacketCapture

PROMPT = ChatPromptTemplate.from_messages([("human", "{q}")])


def test_streaming_records_first_token_chunks_and_final_usage(aitel_packets: PacketCapture) -> None:
    """Time to first token from the first chunk; usage from the final usage chunk."""
    model = StreamingUsageModel(
        messages=iter([AIMessage("the quick brown fox")]), final_usage=usage(12, 4)
    )
    from langchain_core.callbacks import BaseCallbackHandler

    class CountTokens(BaseCallbackHandler):
        count = 0

        def on_llm_new_token(self, token, **kwargs):
            CountTokens.count += 1

    chain = PROMPT | model | StrOutputParser()
    chunks = list(
        chain.stream({"q": "say it"}, config={"callbacks": [AITelHandler(), CountTokens()]})
    )
    assert "".join(chunks) == "the quick brown fox"
    packet = aitel_packets.one()
    (llm_step,) = aitel_packets.steps(packet, "chat_model")
    llm = llm_step["llm"]
    assert llm["streamed"] is True
    assert llm["chunks"] == CountTokens.count >= 7  # every on_llm_new_token LangChain sent
    assert 0 <= llm["time_to_first_token_ms"] <= llm_step["duration_ms"]
    assert llm["usage"]["prompt_tokens"] == 12 and llm["usage"]["completion_tokens"] == 4
    assert llm["model_name"] == "gpt-4o-2024-08-06"
    assert llm_step["output"] == "the quick brown fox"
    perf = packet["performance"]
    assert perf["time_to_first_token_ms"] is not None
    assert perf["time_to_first_token_ms"] <= perf["latency_ms"]
    assert perf["total_tokens"] == 16
    assert packet["payload"]["output"] == "the quick brown fox"


def test_streamed_tokens_are_not_kept_individually(aitel_packets: PacketCapture) -> None:
    """Per-token data is not stored, so a secret split across tokens cannot leak through it."""
    model = StreamingUsageModel(
        messages=iter([AIMessage("key sk-proj- abc123def456ghi789jkl012mno345")]),
        final_usage=usage(1, 1),
    )
    list(model.stream("q", config={"callbacks": [AITelHandler()]}))
    packet = aitel_packets.one()
    step = packet["steps"][0]
    assert step["events"] == []
    assert packet["model_internals"] is None


async def test_async_invoke(aitel_packets: PacketCapture) -> None:
    """ainvoke produces the same packet shape as invoke."""
    model = GenericFakeChatModel(messages=iter([answer("pong")]))
    out = await (PROMPT | model | StrOutputParser()).ainvoke(
        {"q": "ping"}, config={"callbacks": [AITelHandler()]}
    )
    assert out == "pong"
    packet = aitel_packets.one()
    assert [s["kind"] for s in packet["steps"]] == ["chain", "chain", "chat_model", "chain"]
    assert packet["payload"] == {"input": {"q": "ping"}, "output": "pong"}


async def test_astream(aitel_packets: PacketCapture) -> None:
    """astream is recorded with time to first token."""
    model = StreamingUsageModel(messages=iter([AIMessage("a b c")]), final_usage=usage(3, 3))
    parts = [
        c
        async for c in (PROMPT | model).astream({"q": "x"}, config={"callbacks": [AITelHandler()]})
    ]
    assert parts
    llm = aitel_packets.steps(aitel_packets.one(), "chat_model")[0]["llm"]
    assert llm["streamed"] and llm["usage"]["total_tokens"] == 6


def _stream_inputs(packet: dict) -> tuple[object, dict[str, object]]:
    """The packet's input and each chain step's input, by step name."""
    return packet["payload"]["input"], {
        s["name"]: s["input"] for s in packet["steps"] if s["kind"] == "chain"
    }


@pytest.mark.parametrize("mode", ["stream", "astream", "astream_events"])
def test_streamed_request_records_its_real_input(aitel_packets: PacketCapture, mode: str) -> None:
    """A streamed run starts with a placeholder input; the real one comes with its end."""
    model = GenericFakeChatModel(messages=iter([AIMessage("one two")]))
    chain = PROMPT | model | StrOutputParser()
    config = {"callbacks": [AITelHandler()]}
    if mode == "stream":
        assert "".join(chain.stream({"q": "hi"}, config=config)) == "one two"
    else:

        async def consume() -> None:
            if mode == "astream":
                _ = [c async for c in chain.astream({"q": "hi"}, config=config)]
            else:
                _ = [e async for e in chain.astream_events({"q": "hi"}, config=config)]

        asyncio.run(consume())
    packet = aitel_packets.one()
    request_input, step_inputs = _stream_inputs(packet)
    assert request_input == {"q": "hi"}
    assert step_inputs["RunnableSequence"] == {"q": "hi"}
    # the parser got the model's streamed message, added up
    parser_input = step_inputs["StrOutputParser"]
    assert isinstance(parser_input, dict) and parser_input["content"] == "one two"
    assert packet["payload"]["output"] == "one two"


def test_failed_stream_records_its_real_input(aitel_packets: PacketCapture) -> None:
    """A stream that fails still records what it was given."""
    chain = PROMPT | FailingModel(messages=iter([])) | StrOutputParser()
    with pytest.raises(ConnectionError, match="upstream overloaded"):
        list(chain.stream({"q": "hi"}, config={"callbacks": [AITelHandler()]}))
    packet = aitel_packets.one()
    assert packet["status"] == "FAILURE"
    assert packet["payload"]["input"] == {"q": "hi"}


async def test_hundred_concurrent_ainvokes_give_hundred_unmixed_packets(
    aitel_packets: PacketCapture,
) -> None:
    """100 concurrent requests: 100 packets, each with its own input, output and steps."""

    async def echo(x: dict) -> str:
        await asyncio.sleep(0)
        return f"answer-{x['i']}"

    inner = RunnableLambda(echo).with_config(run_name="echo")

    def make_chain(i: int):
        model = GenericFakeChatModel(messages=iter([answer(f"model-{i}")]))
        return (
            RunnableLambda(lambda x: {"i": x["i"]})
            | inner
            | (lambda s: [("human", s)])
            | model
            | StrOutputParser()
        ).with_config(run_name=f"req-{i}")

    handler = AITelHandler()
    results = await asyncio.gather(
        *[
            make_chain(i).ainvoke(
                {"i": i}, config={"callbacks": [handler], "metadata": {"request_id": f"req-{i}"}}
            )
            for i in range(100)
        ]
    )
    assert results == [f"model-{i}" for i in range(100)]
    packets = aitel_packets.packets()
    assert len(packets) == 100
    for packet in packets:
        i = int(packet["request_id"].split("-")[1])
        assert packet["pipeline_metadata"]["function_name"] == f"req-{i}"
        assert packet["payload"] == {"input": {"i": i}, "output": f"model-{i}"}
        names = [s["name"] for s in packet["steps"]]
        assert names.count("echo") == 1 and len(names) == 6
        echo_step = next(s for s in packet["steps"] if s["name"] == "echo")
        assert echo_step["output"] == f"answer-{i}"
        llm = next(s for s in packet["steps"] if s["kind"] == "chat_model")
        assert llm["llm"]["messages"] == [{"role": "user", "content": f"answer-{i}"}]


def test_threads_share_one_handler(aitel_packets: PacketCapture) -> None:
    """Eight threads invoking through one handler give separate packets."""
    handler = AITelHandler()
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for j in range(25):
                chain = RunnableLambda(lambda x: x + 1).with_config(run_name=f"t{t}")
                assert chain.invoke(j, config={"callbacks": [handler]}) == j + 1
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    packets = aitel_packets.packets()
    assert len(packets) == 200
    assert all(p["payload"]["output"] == p["payload"]["input"] + 1 for p in packets)
    assert aitel_packets.tracer.builder.open_traces() == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_nested_chains_nest(aitel_packets: PacketCapture, mode: str) -> None:
    """A chain invoked inside another chain's step is a child step of the same packet."""
    inner = (
        RunnableLambda(lambda x: x * 2).with_config(run_name="double")
        | RunnableLambda(lambda x: x + 1).with_config(run_name="inc")
    ).with_config(run_name="inner")

    def outer_fn(x, config):
        return inner.invoke(x, config) * 10

    outer = RunnableLambda(outer_fn).with_config(run_name="outer")
    config = {"callbacks": [AITelHandler()]}
    result = outer.invoke(3, config) if mode == "sync" else await outer.ainvoke(3, config)
    assert result == 70
    packet = aitel_packets.one()
    by_name = {s["name"]: s for s in packet["steps"]}
    assert by_name["outer"]["parent_id"] is None
    assert by_name["inner"]["parent_id"] == by_name["outer"]["step_id"]
    assert by_name["double"]["parent_id"] == by_name["inner"]["step_id"]
    assert by_name["inc"]["output"] == 7


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_left_early_still_records_its_inner_runs(
    aitel_packets: PacketCapture, mode: str
) -> None:
    """LangChain ends the root of a stream its consumer left first, and the inner runs
    right after (as their generators close): the packet waits for them."""
    model = GenericFakeChatModel(messages=iter([AIMessage("one two three four")]))
    chain = PROMPT | model | StrOutputParser()
    config = {"callbacks": [AITelHandler()]}
    if mode == "stream":
        for index, _ in enumerate(chain.stream({"q": "hi"}, config=config)):
            if index == 1:
                break
    else:

        async def consume() -> None:
            async for index, _ in _aenumerate(chain.astream({"q": "hi"}, config=config)):
                if index == 1:
                    break

        asyncio.run(consume())
    packet = aitel_packets.one()
    assert packet["status"] == "SUCCESS"
    assert [s["status"] for s in packet["steps"]] == ["SUCCESS"] * 4
    assert aitel_packets.tracer.builder.stats.late_events == 0


async def _aenumerate(items: AsyncIterator[Any]) -> AsyncIterator[tuple[int, Any]]:
    index = 0
    async for item in items:
        yield index, item
        index += 1
