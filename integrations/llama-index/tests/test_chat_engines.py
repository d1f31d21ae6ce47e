"""Chat engines: one packet per turn, streamed answers included.

``stream_chat`` returns before the model has answered: LlamaIndex drains
the model's stream into the response on a thread of its own (a task for
``astream_chat``). The turn's packet must wait for that, and hold the model
call made meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.memory import ChatMemoryBuffer
from pydantic import PrivateAttr

pytestmark = pytest.mark.usefixtures("instrumentation")

MODES = ["simple", "context", "condense_plus_context"]


@pytest.fixture(autouse=True)
def main_thread_loop() -> Iterator[None]:
    """The event loop LlamaIndex's sync code asks for (to count tokens), closed afterwards."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


def _engine(index: Any, mode: str, llm: Any) -> Any:
    # a memory in a list: the default one opens aiosqlite connections it never closes
    memory = ChatMemoryBuffer.from_defaults()
    return index.as_chat_engine(chat_mode=mode, llm=llm, memory=memory)


def _gated_llm(fakes: Any, fail_with: str | None = None) -> Any:
    """A scripted model whose stream starts only once the test opens its gate."""

    class GatedLLM(fakes.ScriptedLLM):  # type: ignore[misc, name-defined]
        _gate: threading.Event = PrivateAttr(default_factory=threading.Event)

        @llm_completion_callback()
        def stream_complete(
            self, prompt: str, formatted: bool = False, **kwargs: Any
        ) -> CompletionResponseGen:
            gate, chunks, fail = self._gate, list(self.chunks), self.fail_with

            def gen() -> CompletionResponseGen:
                assert gate.wait(10.0)
                text = ""
                for index, chunk in enumerate(chunks):
                    if fail and index == 1:
                        raise RuntimeError(fail)
                    text += chunk
                    yield CompletionResponse(text=text, delta=chunk)

            return gen()

    return GatedLLM(fail_with=fail_with)


def _check_turn(packet: dict[str, Any], mode: str) -> None:
    steps = packet["steps"]
    assert packet["status"] == "SUCCESS"
    assert packet["payload"]["output"] == "Paris."
    assert steps[0]["kind"] == "chain" and steps[0]["name"].endswith(".stream_chat")
    assert all(s["status"] == "SUCCESS" for s in steps), [(s["name"], s["status"]) for s in steps]
    (model,) = [s for s in steps if s["kind"] in ("llm", "chat_model")]
    assert model["output"] == "Paris."
    assert model["llm"]["chunks"] == 3 and model["llm"]["time_to_first_token_ms"] is not None
    assert packet["performance"]["llm_calls"] == 1
    if mode != "simple":
        assert any(s["kind"] == "retriever" for s in steps)


@pytest.mark.parametrize("mode", MODES)
def test_streamed_turn_waits_for_the_answer(index, fakes, packets, mode: str) -> None:
    """The model answers after stream_chat returned: still one packet, with the model call."""
    llm = _gated_llm(fakes)
    response = _engine(index, mode, llm).stream_chat("Capital?")
    assert packets() == []  # the turn is not over yet
    llm._gate.set()
    assert "".join(response.response_gen) == "Paris."
    (packet,) = packets()
    _check_turn(packet, mode)


@pytest.mark.parametrize("mode", MODES)
def test_streamed_turn_answered_at_once(index, fakes, packets, mode: str) -> None:
    """Whichever ends first, the writer or stream_chat, each turn is one complete packet."""
    for _ in range(5):
        engine = _engine(index, mode, fakes.ScriptedLLM())
        assert "".join(engine.stream_chat("Capital?").response_gen) == "Paris."
    found = packets()
    assert len(found) == 5
    for packet in found:
        _check_turn(packet, mode)


@pytest.mark.parametrize("mode", ["simple", "context"])
def test_async_streamed_turn_is_one_packet(index, fakes, packets, mode: str) -> None:
    async def turn() -> str:
        engine = _engine(index, mode, fakes.ScriptedLLM())
        response = await engine.astream_chat("Capital?")
        return "".join([token async for token in response.async_response_gen()])

    assert asyncio.run(turn()) == "Paris."
    (packet,) = packets()
    assert packet["steps"][0]["name"].endswith(".astream_chat")
    assert all(s["status"] == "SUCCESS" for s in packet["steps"])
    assert packet["performance"]["llm_calls"] == 1
    assert packet["payload"]["output"] == "Paris."


# LlamaIndex's writer thread re-raises the model's error after handing it to the reader
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_streamed_turn_that_fails_is_a_failed_packet(index, fakes, packets) -> None:
    llm = _gated_llm(fakes, fail_with="connection reset")
    response = _engine(index, "simple", llm).stream_chat("Capital?")
    llm._gate.set()
    with pytest.raises(RuntimeError, match="connection reset"):
        "".join(response.response_gen)
    (packet,) = packets()
    assert packet["status"] == "FAILURE"
    assert packet["error"]["message"] == "connection reset"
    assert packet["steps"][0]["status"] == "FAILURE"
