"""Errors in the model, the retriever and retries; the handler never breaks the app."""

from __future__ import annotations

import inspect
import threading
import uuid

import pytest
from fakes import FailingModel, StaticRetriever, answer
from langchain_aitel import AITelHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda

from aitel import InMemoryExporter, Settings, Tracer
from aitel._safety import internal_errors
from aitel.testing import PacketCapture


def test_model_error_gives_failure_packet(aitel_packets: PacketCapture) -> None:
    """A provider error fails the request at the chat_model step."""
    chain = (
        RunnableLambda(lambda q: [("human", q)])
        | FailingModel(messages=iter([]))
        | StrOutputParser()
    ).with_config(run_name="ask")
    with pytest.raises(ConnectionError):
        chain.invoke("hello", config={"callbacks": [AITelHandler()]})
    packet = aitel_packets.one()
    assert packet["status"] == "FAILURE"
    assert packet["error_message"] == "Error code: 503 - upstream overloaded"
    assert packet["error"]["type"] == "ConnectionError"
    assert packet["error"]["step_kind"] == "chat_model"
    (llm_step,) = aitel_packets.steps(packet, "chat_model")
    assert packet["error"]["step_id"] == llm_step["step_id"]
    assert llm_step["status"] == "FAILURE" and llm_step["llm"]["usage"] is None
    assert packet["payload"]["output"] is None
    assert [s["status"] for s in packet["steps"]] == ["FAILURE", "SUCCESS", "FAILURE"]


def test_retriever_error_names_retriever(aitel_packets: PacketCapture) -> None:
    """A retriever timeout is the failing step."""
    chain = (
        StaticRetriever(error="vector store timeout after 30s") | RunnableLambda(len)
    ).with_config(run_name="rag")
    with pytest.raises(TimeoutError):
        chain.invoke("q", config={"callbacks": [AITelHandler()]})
    packet = aitel_packets.one()
    assert packet["error"]["step_kind"] == "retriever"
    assert packet["error"]["step_name"] == "StaticRetriever"
    assert packet["error_message"] == "vector store timeout after 30s"
    retriever = aitel_packets.steps(packet, "retriever")[0]
    assert retriever["retrieval"] == {"query": "q", "documents": []}


def test_with_retry_counts_attempts_and_succeeds(aitel_packets: PacketCapture) -> None:
    """Failed attempts are failed steps; the request succeeds; retries are counted."""
    model = FailingModel(messages=iter([answer("finally")]), failures_before_success=2)
    chain = model.with_retry(stop_after_attempt=3, wait_exponential_jitter=False)
    assert chain.invoke("q", config={"callbacks": [AITelHandler()]}).content == "finally"
    packet = aitel_packets.one()
    assert packet["status"] == "SUCCESS"
    attempts = aitel_packets.steps(packet, "chat_model")
    assert [s["status"] for s in attempts] == ["FAILURE", "FAILURE", "SUCCESS"]
    assert packet["performance"]["retries"] == 2
    assert packet["performance"]["llm_calls"] == 3


def test_on_retry_callback_becomes_event() -> None:
    """LLM-level on_retry is recorded with attempt and error, copied at call time."""

    class State:
        attempt_number = 2

        class outcome:
            failed = True

            @staticmethod
            def exception():
                return TimeoutError("slow")

    memory = InMemoryExporter()
    tracer = Tracer(memory, settings=Settings(redaction=()))
    handler = AITelHandler(tracer=tracer)
    run = uuid.uuid4()
    handler.on_llm_start(None, ["p"], run_id=run, invocation_params={"model": "gpt-4o"})
    handler.on_retry(State(), run_id=run)
    handler.on_llm_end(None, run_id=run)
    tracer.flush()
    step = memory.packets[0]["steps"][0]
    assert step["events"][0]["name"] == "retry"
    assert step["events"][0]["data"] == {"attempt": 2, "error": "TimeoutError: slow"}
    assert memory.packets[0]["performance"]["retries"] == 1
    tracer.shutdown()


class ExplodingBuilder:
    """A builder whose every method raises."""

    def __getattr__(self, name):
        raise RuntimeError("boom")


def test_broken_tracer_never_raises_into_the_app() -> None:
    """If recording fails, the user's chain still returns and the error is counted."""

    tracer = Tracer(InMemoryExporter(), settings=Settings(redaction=()))
    tracer.builder = ExplodingBuilder()  # type: ignore[assignment]
    before = internal_errors.total
    chain = RunnableLambda(lambda x: x * 2)
    assert chain.invoke(21, config={"callbacks": [AITelHandler(tracer=tracer)]}) == 42
    assert internal_errors.total >= before + 2
    tracer.shutdown()


def test_every_callback_catches_its_own_errors() -> None:
    """Each ``on_*`` method of the handler is a boundary: it swallows and counts, by name."""

    tracer = Tracer(InMemoryExporter(), settings=Settings(redaction=()))
    tracer.builder = ExplodingBuilder()  # type: ignore[assignment]
    handler = AITelHandler(tracer=tracer)
    names = sorted(n for n in vars(AITelHandler) if n.startswith("on_"))
    assert len(names) >= 17
    for name in names:
        method = getattr(handler, name)
        positional = [
            p
            for p in inspect.signature(method).parameters.values()
            if p.kind is p.POSITIONAL_OR_KEYWORD
        ]
        args = [RuntimeError("app error") if p.name == "error" else "x" for p in positional]
        site = f"AITelHandler.{name}"
        before = internal_errors.by_site.get(site, 0)
        assert method(*args, run_id=uuid.uuid4(), parent_run_id=None) is None
        assert internal_errors.by_site.get(site, 0) == before + 1, name
    tracer.shutdown()


def test_objects_are_serialized_off_the_callers_thread(aitel_packets: PacketCapture) -> None:
    """The hot path keeps references; conversion happens on the export worker."""
    seen: list[str] = []

    class Probe:
        def __repr__(self) -> str:
            seen.append(threading.current_thread().name)
            return "<probe>"

    RunnableLambda(lambda x: Probe()).invoke(Probe(), config={"callbacks": [AITelHandler()]})
    assert seen == []  # nothing converted during the call
    packet = aitel_packets.one()
    assert packet["payload"] == {"input": "<probe>", "output": "<probe>"}
    assert seen and all(name == "aitel-export" for name in seen)


def test_late_child_events_after_root_end_are_ignored() -> None:
    """Events for a finished request do not create a spurious new packet."""
    memory = InMemoryExporter()
    tracer = Tracer(memory, settings=Settings(redaction=()))
    handler = AITelHandler(tracer=tracer)
    root, child = uuid.uuid4(), uuid.uuid4()
    handler.on_chain_start(None, 1, run_id=root, name="root")
    handler.on_chain_end(2, run_id=root)
    handler.on_chain_start(None, 3, run_id=child, parent_run_id=root, name="late")
    handler.on_chain_end(4, run_id=child)
    tracer.flush()
    assert len(memory.packets) == 1
    assert tracer.builder.stats.late_events == 2
    tracer.shutdown()


def test_child_that_never_ends_is_closed_and_marked() -> None:
    """A child with no end event is INCOMPLETE, ending with its root."""
    memory = InMemoryExporter()
    tracer = Tracer(memory, settings=Settings(redaction=()))
    handler = AITelHandler(tracer=tracer)
    root, child = uuid.uuid4(), uuid.uuid4()
    handler.on_chain_start(None, "in", run_id=root, name="root")
    handler.on_tool_start({"name": "slow"}, "x", run_id=child, parent_run_id=root)
    handler.on_chain_end("out", run_id=root)
    tracer.flush()
    (packet,) = memory.packets
    tool = packet["steps"][1]
    assert tool["status"] == "INCOMPLETE"
    assert tool["end_time"] == packet["steps"][0]["end_time"]
    assert packet["status"] == "SUCCESS"
    assert tracer.builder.open_traces() == 0 and not tracer.builder._runs
    tracer.shutdown()
