"""trace() / step() and @observe: packets for code outside the frameworks."""

from __future__ import annotations

import asyncio

import pytest

import aitel
from aitel.assembly import build_packet
from aitel.builder import PacketBuilder, TraceRecord
from aitel.jsonable import Limits
from aitel.pricing import PricingTable
from aitel.testing import PacketCapture


def test_context_manager_rag_pipeline(aitel_packets: PacketCapture) -> None:
    """The seed's hand-built RAG service, instrumented with trace() and step()."""
    with aitel.trace(
        "rag-query", input={"query": "why is the sky blue?"}, ab_variant="B", session_id="s1"
    ) as t:
        with t.step("vector_search", kind="retriever", input="why is the sky blue?") as s:
            s.set_retrieval(
                query="why is the sky blue?",
                documents=[
                    {
                        "id": "doc1",
                        "score": 0.9,
                        "source": "physics",
                        "content": "Rayleigh scattering.",
                    },
                    {"id": "doc2", "text": "AI observability."},
                ],
            )
        with t.step("llm_generation", kind="llm") as s:
            s.set_llm(
                model_name="gpt-4o-mini",
                prompts=["Context: ..."],
                prompt_tokens=100,
                completion_tokens=20,
                finish_reason="stop",
            )
            s.token()
            s.set_output("Because of Rayleigh scattering.")
        t.set_output("Because of Rayleigh scattering.")
    packet = aitel_packets.one()
    assert packet["request_id"] == t.request_id
    assert packet["status"] == "SUCCESS"
    assert packet["pipeline_metadata"]["function_name"] == "rag-query"
    assert packet["pipeline_metadata"]["ab_variant"] == "B"
    assert packet["pipeline_metadata"]["session_id"] == "s1"
    assert packet["pipeline_metadata"]["model_name"] == "gpt-4o-mini"
    assert packet["payload"] == {
        "input": {"query": "why is the sky blue?"},
        "output": "Because of Rayleigh scattering.",
    }
    root, search, gen = packet["steps"]
    assert search["parent_id"] == gen["parent_id"] == root["step_id"]
    assert search["retrieval"]["documents"] == [
        {"id": "doc1", "score": 0.9, "source": "physics", "content": "Rayleigh scattering."},
        {"id": "doc2", "content": "AI observability."},
    ]
    assert gen["llm"]["usage"]["total_tokens"] == 120
    assert gen["llm"]["cost_usd"] == pytest.approx((100 * 0.15 + 20 * 0.6) / 1e6)
    assert gen["llm"]["streamed"] is True and gen["llm"]["time_to_first_token_ms"] >= 0
    assert packet["performance"]["llm_calls"] == 1


def test_exception_in_step_fails_request_and_reraises(aitel_packets: PacketCapture) -> None:
    with (
        pytest.raises(ValueError, match="Simulated API failure"),
        aitel.trace("job") as t,
        t.step("call", kind="llm"),
    ):
        raise ValueError("Simulated API failure")
    packet = aitel_packets.one()
    assert packet["status"] == "FAILURE"
    assert packet["error_message"] == "Simulated API failure"
    assert packet["error"]["step_name"] == "call" and packet["error"]["step_kind"] == "llm"


def test_observe_like_the_seed_decorator(aitel_packets: PacketCapture) -> None:
    """The seed's log_ai_context example: success and failure, exception re-raised."""

    @aitel.observe(model_name="example-text-generator-v1.2")
    def generate_text(prompt: str, max_tokens: int):
        if "fail" in prompt:
            raise ValueError("Simulated API failure")
        out = f"This is a simulated response to the prompt: '{prompt}'"
        return {"output": out, "tokens_used": len(out.split())}

    assert generate_text(prompt="Tell me a joke.", max_tokens=50)["tokens_used"] == 12
    with pytest.raises(ValueError, match="Simulated API failure"):
        generate_text(prompt="Please fail now.", max_tokens=50)
    ok, failed = aitel_packets.packets()
    assert ok["status"] == "SUCCESS"
    assert ok["pipeline_metadata"]["function_name"].endswith("generate_text")
    assert ok["pipeline_metadata"]["model_name"] == "example-text-generator-v1.2"
    assert ok["payload"]["input"] == {"prompt": "Tell me a joke.", "max_tokens": 50}
    assert ok["payload"]["output"]["tokens_used"] == 12
    assert ok["performance"]["latency_ms"] >= 0
    assert failed["status"] == "FAILURE" and failed["error_message"] == "Simulated API failure"


def test_observe_nests_inside_a_trace(aitel_packets: PacketCapture) -> None:
    @aitel.observe(kind="tool")
    def add(a: int, b: int) -> int:
        return a + b

    @aitel.observe
    def pipeline(x: int) -> int:
        return add(x, 1) * 2

    assert pipeline(3) == 8
    packet = aitel_packets.one()
    outer, inner = packet["steps"]
    assert inner["parent_id"] == outer["step_id"] and inner["kind"] == "tool"
    assert inner["input"] == {"a": 3, "b": 1} and inner["output"] == 4
    assert packet["payload"] == {"input": 3, "output": 8}


async def test_observe_async_functions_concurrently(aitel_packets: PacketCapture) -> None:
    @aitel.observe
    async def answer(q: str) -> str:
        await asyncio.sleep(0)
        return q.upper()

    results = await asyncio.gather(*[answer(f"q{i}") for i in range(50)])
    assert results == [f"Q{i}" for i in range(50)]
    packets = aitel_packets.packets()
    assert sorted(p["payload"]["output"] for p in packets) == sorted(results)
    assert all(p["payload"]["output"] == p["payload"]["input"].upper() for p in packets)


def test_observe_generator_ends_when_exhausted(aitel_packets: PacketCapture) -> None:
    @aitel.observe
    def tokens(n: int):
        yield from range(n)

    gen = tokens(3)
    assert aitel_packets.tracer.builder.open_traces() == 0  # nothing until iterated
    assert list(gen) == [0, 1, 2]
    packet = aitel_packets.one()
    assert packet["payload"] == {"input": 3, "output": [0, 1, 2]}


def test_observe_generator_error(aitel_packets: PacketCapture) -> None:
    @aitel.observe
    def broken():
        yield 1
        raise RuntimeError("stream broke")

    with pytest.raises(RuntimeError):
        list(broken())
    packet = aitel_packets.one()
    assert packet["status"] == "FAILURE" and packet["payload"]["output"] == [1]


async def test_observe_async_generator(aitel_packets: PacketCapture) -> None:
    @aitel.observe
    async def stream(n: int):
        for i in range(n):
            yield i

    assert [i async for i in stream(2)] == [0, 1]
    assert aitel_packets.one()["payload"]["output"] == [0, 1]


def test_observed_generator_behaves_like_the_undecorated_one(
    aitel_packets: PacketCapture,
) -> None:
    """send(), throw(), close() and the return value reach the function unchanged."""

    def accumulate():
        total = 0
        while (value := (yield total)) is not None:
            total += value
        return f"total {total}"

    def recovers():
        try:
            yield 1
        except ValueError:
            yield "handled"

    for fn, traced in (
        (accumulate, aitel.observe(accumulate)),
        (recovers, aitel.observe(recovers)),
    ):
        plain, gen = fn(), traced()
        assert next(gen) == next(plain)
        if fn is accumulate:
            assert gen.send(2) == plain.send(2) == 2
            assert gen.send(5) == plain.send(5) == 7
            with pytest.raises(StopIteration) as traced_stop:
                gen.send(None)
            with pytest.raises(StopIteration) as plain_stop:
                plain.send(None)
            assert traced_stop.value.value == plain_stop.value.value == "total 7"
        else:
            assert gen.throw(ValueError()) == plain.throw(ValueError()) == "handled"
            gen.close()

    def delegate():
        return (yield from aitel.observe(accumulate)())

    outer = delegate()
    next(outer)
    outer.send(3)
    with pytest.raises(StopIteration) as stop:
        outer.send(None)
    assert stop.value.value == "total 3"

    assert len(aitel_packets.packets()) == 3
    recovered = next(p for p in aitel_packets.packets() if p["payload"]["output"] == [1, "handled"])
    assert recovered["status"] == "SUCCESS"  # closed by the caller: not a failure
    sums = sorted(
        (p["payload"]["output"] for p in aitel_packets.packets() if p is not recovered), key=len
    )
    assert sums == [[0, 3, "total 3"], [0, 2, 7, "total 7"]]


def test_observed_generator_that_does_not_handle_a_thrown_error_fails(
    aitel_packets: PacketCapture,
) -> None:
    @aitel.observe
    def numbers():
        yield 1
        yield 2

    gen = numbers()
    next(gen)
    with pytest.raises(KeyError):
        gen.throw(KeyError("stop"))
    packet = aitel_packets.one()
    assert packet["status"] == "FAILURE" and packet["error"]["type"] == "KeyError"


async def test_observed_async_generator_behaves_like_the_undecorated_one(
    aitel_packets: PacketCapture,
) -> None:
    """asend(), athrow() and aclose() reach the function unchanged."""

    async def echo():
        received = []
        try:
            while True:
                value = yield len(received)
                received.append(value)
        except ValueError:
            yield f"handled after {received}"

    plain, gen = echo(), aitel.observe(echo)()
    assert await gen.asend(None) == await plain.asend(None) == 0
    assert await gen.asend("hello") == await plain.asend("hello") == 1
    assert await gen.athrow(ValueError()) == await plain.athrow(ValueError())
    await gen.aclose()
    await plain.aclose()
    packet = aitel_packets.one()
    assert packet["status"] == "SUCCESS"
    assert packet["payload"]["output"] == [0, 1, "handled after ['hello']"]


async def test_async_with_trace(aitel_packets: PacketCapture) -> None:
    async with aitel.trace("async-job", request_id="req-123") as t:
        async with t.step("work", kind="tool") as s:
            s.set_tool(tool_call_id="c1")
            s.set_output({"ok": True})
    packet = aitel_packets.one()
    assert packet["request_id"] == "req-123"
    assert packet["steps"][1]["tool"] == {
        "name": "work",
        "tool_call_id": "c1",
        "requested_by_step_id": None,
    }


def test_events_and_metadata_on_steps(aitel_packets: PacketCapture) -> None:
    with aitel.trace("x", metadata={"tenant": "acme"}, tags=["beta"]) as t:
        t.event("cache_miss", {"key": "k1"})
        t.set_metadata(region="eu")
    packet = aitel_packets.one()
    assert packet["steps"][0]["events"][0]["name"] == "cache_miss"
    assert packet["pipeline_metadata"]["metadata"] == {"tenant": "acme", "region": "eu"}
    assert packet["pipeline_metadata"]["tags"] == ["beta"]


def test_a_cut_in_the_request_metadata_is_counted_on_the_packet() -> None:
    done: list[TraceRecord] = []
    builder = PacketBuilder(done.append)
    builder.start("r", None, "chain", "x", metadata={"note": "n" * 200})
    builder.end("r")
    packet = build_packet(done[0], PricingTable({}), Limits(max_string_chars=50))
    note = packet["pipeline_metadata"]["metadata"]["note"]
    assert note == "n" * 50 + "…[truncated 150 chars]"
    assert packet["steps"][0]["metadata"]["note"] == note  # the root step's own copy
    assert packet["processing"]["truncated_values"] == 2


def test_span_methods_never_raise_into_the_application(aitel_packets: PacketCapture) -> None:
    """A document whose attribute raises, or arguments of the wrong shape, are reported."""
    from aitel._safety import internal_errors

    class Document:
        id = "doc-1"

        @property
        def content(self) -> str:
            raise ZeroDivisionError

    before = internal_errors.total
    with aitel.trace("rag") as t, t.step("search", kind="retriever") as s:
        s.set_retrieval(query="q", documents=[Document()])
        s.set_llm(messages=42)  # type: ignore[arg-type]
        t.set_output("done")
    assert internal_errors.total == before + 1  # set_llm's, counted
    packet = aitel_packets.one()
    assert packet["status"] == "SUCCESS" and packet["payload"]["output"] == "done"
    (step,) = aitel_packets.steps(packet, "retriever")
    (doc,) = step["retrieval"]["documents"]
    assert doc["id"] == "doc-1" and doc["content"] == "<unreadable: ZeroDivisionError>"


def test_values_of_the_wrong_type_are_coerced_or_left_out_never_the_packet(
    aitel_packets: PacketCapture,
) -> None:
    """What the schema would refuse is fixed or dropped (and named); the packet stays valid."""
    with aitel.trace("req", kind="pipeline", request_id=123) as t:  # type: ignore[arg-type]
        with t.step("search", kind="retriever") as s:
            s.set_retrieval(query=42, documents=[{"id": 7, "source": 3, "score": "0.5"}])  # type: ignore[arg-type]
        with t.step("model", kind="chat_model") as s:
            s.set_llm(
                model_name="m",
                messages=[1],  # type: ignore[list-item]
                prompt_tokens="12",  # type: ignore[arg-type]
                completion_tokens="many",  # type: ignore[arg-type]
            )
    packet = aitel_packets.one()  # validated against the schema by the capture
    assert packet["request_id"] == "123"
    root, search, model = packet["steps"]
    assert root["kind"] == "custom"
    assert search["retrieval"] == {
        "query": "42",
        "documents": [{"id": "7", "source": "3", "score": 0.5}],
    }
    llm = model["llm"]
    assert llm["model_name"] == "m" and "messages" not in llm
    assert llm["usage"]["prompt_tokens"] == 12 and "completion_tokens" not in llm["usage"]
    assert model["metadata"]["aitel.invalid_fields"] == [
        "llm.messages",
        "llm.usage.completion_tokens",
    ]
    assert packet["performance"]["prompt_tokens"] == 12
