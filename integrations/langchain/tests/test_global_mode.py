"""Global mode: every LangChain run traced without ``callbacks=``, never twice."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fakes import answer
from langchain_aitel import AITelHandler, auto
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

import aitel
from aitel.config import environment_table
from aitel.testing import PacketCapture

# the module (``aitel.instrument`` the attribute may be the function)
instrumentation = importlib.import_module("aitel.instrument")
PROMPT = ChatPromptTemplate.from_messages([("human", "{q}")])
HAS_LLAMA_INDEX = importlib.util.find_spec("llama_index.callbacks.aitel") is not None


def chain(text: str = "pong"):
    model = GenericFakeChatModel(messages=iter([answer(text)]))
    return (PROMPT | model | StrOutputParser()).with_config(run_name="qa")


@pytest.fixture(autouse=True)
def _global_mode_off() -> Iterator[None]:
    instrumentation.uninstrument()
    yield
    instrumentation.uninstrument()


def test_instrument_traces_runs_without_callbacks(aitel_packets: PacketCapture) -> None:
    handler = auto.instrument(ab_variant="G", app_version="3.1")
    assert auto.global_handler() is handler
    assert chain().invoke({"q": "ping"}) == "pong"
    packet = aitel_packets.one()
    assert [s["name"] for s in packet["steps"]] == [
        "qa",
        "ChatPromptTemplate",
        "GenericFakeChatModel",
        "StrOutputParser",
    ]
    assert packet["payload"] == {"input": {"q": "ping"}, "output": "pong"}
    assert packet["pipeline_metadata"]["ab_variant"] == "G"
    assert packet["pipeline_metadata"]["app_version"] == "3.1"
    assert packet["producer"]["integration"] == "langchain"
    llm = aitel_packets.steps(packet, "chat_model")[0]["llm"]
    assert llm["usage"]["total_tokens"] == 28
    assert llm["model_name"] == "gpt-4o-mini-2024-07-18"

    auto.uninstrument()
    assert auto.global_handler() is None
    chain().invoke({"q": "ping"})
    assert len(aitel_packets.packets()) == 1


def test_explicit_handler_is_not_doubled(aitel_packets: PacketCapture) -> None:
    """A run given its own AITelHandler keeps it alone: one packet, its options."""
    auto.instrument(ab_variant="global")
    out = chain().invoke({"q": "x"}, config={"callbacks": [AITelHandler(ab_variant="explicit")]})
    assert out == "pong"
    packet = aitel_packets.one()
    assert packet["pipeline_metadata"]["ab_variant"] == "explicit"
    assert len(packet["steps"]) == 4
    assert len({s["step_id"] for s in packet["steps"]}) == 4


def test_nested_explicit_handler_inside_global_run(aitel_packets: PacketCapture) -> None:
    """A call given its own handler inside a globally traced run: one packet, nested once."""
    auto.instrument()
    inner = RunnableLambda(lambda x: x + 1).with_config(run_name="inner")
    inherited = RunnableLambda(lambda x: x - 1).with_config(run_name="inherited")

    def outer(x: int, config) -> int:
        mine = inner.invoke(x, {"callbacks": [AITelHandler(ab_variant="inner")]})
        return inherited.invoke(mine, config) * 10

    assert RunnableLambda(outer).with_config(run_name="outer").invoke(1) == 10
    packet = aitel_packets.one()
    steps = {s["name"]: s for s in packet["steps"]}
    assert [s["name"] for s in packet["steps"]] == ["outer", "inner", "inherited"]
    assert steps["inner"]["parent_id"] == steps["outer"]["step_id"]
    assert steps["inherited"]["parent_id"] == steps["outer"]["step_id"]
    assert packet["pipeline_metadata"]["ab_variant"] is None  # the request's, not the inner's


def test_reaches_threads_and_tasks_that_existed_before(aitel_packets: PacketCapture) -> None:
    """The switch is process-wide, not a context variable: older threads and loops see it."""
    go = threading.Event()
    done: list[str] = []

    def worker() -> None:
        go.wait(10)
        done.append(chain("from thread").invoke({"q": "t"}))

    thread = threading.Thread(target=worker)
    thread.start()

    async def main() -> str:
        started = asyncio.Event()
        release = asyncio.Event()

        async def task() -> str:
            started.set()
            await release.wait()
            return await chain("from task").ainvoke({"q": "a"})

        pending = asyncio.create_task(task())
        await started.wait()
        auto.instrument()  # after the task and the thread were created
        go.set()
        release.set()
        return await pending

    assert asyncio.run(main()) == "from task"
    thread.join(10)
    assert done == ["from thread"]
    outputs = sorted(p["payload"]["output"] for p in aitel_packets.packets())
    assert outputs == ["from task", "from thread"]


def test_instrument_again_replaces_the_options(aitel_packets: PacketCapture) -> None:
    auto.instrument(ab_variant="A")
    chain().invoke({"q": "1"})
    given = AITelHandler(ab_variant="B")
    assert auto.instrument(given) is given
    chain().invoke({"q": "2"})
    first, second = aitel_packets.packets()
    assert first["pipeline_metadata"]["ab_variant"] == "A"
    assert second["pipeline_metadata"]["ab_variant"] == "B"
    with pytest.raises(TypeError):
        auto.instrument(given, ab_variant="C")


def test_langgraph_agent_traced_globally_once(aitel_packets: PacketCapture) -> None:
    """A LangGraph agent run without callbacks: one complete packet; with one as well."""
    pytest.importorskip(
        "langgraph", reason="needs the dev install (README: make test), which has langgraph"
    )
    from test_langgraph import QUESTION, check_agent_packet, make_agent, two_tools_then_answer

    auto.instrument()
    make_agent(*two_tools_then_answer()).invoke(QUESTION)
    check_agent_packet(aitel_packets.one(), streamed=False)
    aitel_packets.clear()
    make_agent(*two_tools_then_answer()).invoke(QUESTION, {"callbacks": [AITelHandler()]})
    check_agent_packet(aitel_packets.one(), streamed=False)


def test_global_runs_inside_an_aitel_trace_are_its_steps(aitel_packets: PacketCapture) -> None:
    auto.instrument()
    with aitel.trace("request", input={"q": "ping"}) as request:
        request.set_output(chain().invoke({"q": "ping"}))
    packet = aitel_packets.one()
    root, qa = packet["steps"][:2]
    assert root["name"] == "request" and qa["name"] == "qa"
    assert qa["parent_id"] == root["step_id"]
    assert packet["payload"] == {"input": {"q": "ping"}, "output": "pong"}


# -- aitel.instrument(): every framework at once --------------------------------------


def test_aitel_instrument_turns_on_every_installed_framework(
    aitel_packets: PacketCapture,
) -> None:
    expected = ["langchain", "llama_index"] if HAS_LLAMA_INDEX else ["langchain"]
    assert instrumentation.instrument(environment="staging") == expected
    assert instrumentation.instrumented() == expected
    chain().invoke({"q": "ping"})
    assert aitel_packets.one()["pipeline_metadata"]["environment"] == "staging"
    instrumentation.uninstrument()
    assert instrumentation.instrumented() == []


def test_aitel_instrument_one_framework(monkeypatch: pytest.MonkeyPatch) -> None:
    assert instrumentation.instrument(llama_index=False) == ["langchain"]
    assert instrumentation.instrumented() == ["langchain"]
    assert instrumentation.instrument(langchain=False, llama_index=False) == []
    real_installed = instrumentation._installed
    monkeypatch.setattr(
        instrumentation, "_installed", lambda name: name != "llama_index" and real_installed(name)
    )
    monkeypatch.delitem(sys.modules, "llama_index.callbacks.aitel", raising=False)
    assert instrumentation.instrument() == ["langchain"]
    with pytest.raises(ImportError, match="llama-index-callbacks-aitel"):
        instrumentation.instrument(llama_index=True)


@pytest.mark.skipif(not HAS_LLAMA_INDEX, reason="the LlamaIndex integration is not installed")
def test_aitel_instrument_traces_llama_index(aitel_packets: PacketCapture) -> None:
    from llama_index.core.llms import MockLLM

    instrumentation.instrument(ab_variant="li")
    MockLLM(max_tokens=3).complete("hello there")
    packet = aitel_packets.one()
    assert packet["producer"]["integration"] == "llama_index"
    assert packet["pipeline_metadata"]["ab_variant"] == "li"
    instrumentation.uninstrument()
    MockLLM(max_tokens=3).complete("hello again")
    assert len(aitel_packets.packets()) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("on", True), ("false", False), ("", False), ("maybe", False)],
)
def test_tracing_requested_reads_aitel_tracing(value: str, expected: bool) -> None:
    assert instrumentation.tracing_requested({"AITEL_TRACING": value}) is expected


def test_instrument_from_env(aitel_packets: PacketCapture) -> None:
    assert auto.instrument_from_env({"AITEL_TRACING": "false"}) is None
    handler = auto.instrument_from_env({"AITEL_TRACING": "true"})
    assert handler is not None and auto.global_handler() is handler
    # an explicit instrument() is never replaced by the variable
    mine = auto.instrument(ab_variant="mine")
    assert auto.instrument_from_env({"AITEL_TRACING": "true"}) is mine
    # at ``import aitel`` an integration being imported is left to do it itself
    auto.uninstrument()
    assert instrumentation.instrument_from_env({"AITEL_TRACING": "true"}) == (
        ["llama_index"]
        if HAS_LLAMA_INDEX and "llama_index.callbacks.aitel" not in sys.modules
        else []
    )


def _run(script: str, tmp_path: Path, **env: str) -> list[dict]:
    directory = tmp_path / "packets"
    environ = {**os.environ, "AITEL_DIR": str(directory), "AITEL_EXPORTER": "jsonl", **env}
    tests = str(Path(__file__).parent)
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {tests!r})\n" + script],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    files = sorted(directory.glob("*.jsonl"))
    return [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]


SCRIPT = textwrap.dedent(
    """
    import langchain_aitel  # AITEL_TRACING is read here
    from langchain_core.runnables import RunnableLambda

    import aitel

    RunnableLambda(lambda x: x * 2).with_config(run_name="double").invoke(21)
    aitel.flush()
    """
)


def test_aitel_tracing_env_traces_the_whole_process(tmp_path: Path) -> None:
    packets = _run(SCRIPT, tmp_path, AITEL_TRACING="true", AITEL_APP_VERSION="7.0")
    (packet,) = packets
    assert packet["pipeline_metadata"]["function_name"] == "double"
    assert packet["payload"] == {"input": 21, "output": 42}
    assert packet["pipeline_metadata"]["app_version"] == "7.0"


def test_without_aitel_tracing_nothing_is_traced(tmp_path: Path) -> None:
    assert _run(SCRIPT, tmp_path, AITEL_TRACING="false") == []


def test_every_setting_has_an_environment_variable() -> None:
    variables = {row[0] for row in environment_table()}
    assert {
        "AITEL_EXPORTER",
        "AITEL_ENDPOINT",
        "AITEL_TOKEN",
        "AITEL_DIR",
        "AITEL_SAMPLE_RATE",
        "AITEL_KEEP_SLOWER_THAN_MS",
        "AITEL_REDACTION",
        "AITEL_ENVIRONMENT",
        "AITEL_APP_VERSION",
        "AITEL_TRACING",
    } <= variables
