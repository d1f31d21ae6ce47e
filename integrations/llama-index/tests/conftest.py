"""Fixtures: an in-memory tracer, the instrumentation, offline models and a small index.

Every test leaves LlamaIndex's global state as it found it: the root
dispatcher's handlers, ``Settings`` and ``llama_index.core.global_handler``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import llama_index.core
import pytest
from llama_index.callbacks.aitel import AITelInstrumentation, uninstrument
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.types import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    LogProb,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from pydantic import PrivateAttr

import aitel

USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
MODEL = "gpt-4o-mini"
LOGPROBS = [
    [LogProb(token="Paris", logprob=-0.1, bytes=[80, 97]), LogProb(token="Lyon", logprob=-2.5)],
    [LogProb(token=".", logprob=-0.01)],
]


class ScriptedLLM(CustomLLM):
    """An offline completion model that reports what a provider would: model, usage, logprobs."""

    answer: str = "Paris."
    chunks: Sequence[str] = ("Par", "is", ".")
    fail_with: str | None = None
    chat_model: bool = False
    _calls: list[str] = PrivateAttr(default_factory=list)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=MODEL, is_chat_model=self.chat_model)

    @property
    def calls(self) -> list[str]:
        """The prompts this model really received (one entry per model call)."""
        return self._calls

    def _raw(self) -> dict[str, Any]:
        return {
            "model": f"{MODEL}-2024-07-18",
            "usage": dict(USAGE),
            "choices": [{"finish_reason": "stop"}],
        }

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self._calls.append(prompt)
        if self.fail_with:
            raise RuntimeError(self.fail_with)
        return CompletionResponse(text=self.answer, raw=self._raw(), logprobs=LOGPROBS)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        self._calls.append(prompt)
        chunks = list(self.chunks)
        fail_with = self.fail_with

        def gen() -> CompletionResponseGen:
            text = ""
            for index, chunk in enumerate(chunks):
                if fail_with and index == 1:
                    raise RuntimeError(fail_with)
                text += chunk
                last = index == len(chunks) - 1
                yield CompletionResponse(text=text, delta=chunk, raw=self._raw() if last else None)

        return gen()


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def boom(a: int) -> int:
    """A tool that always fails."""
    raise RuntimeError("tool broke")


def tool_then_answer(
    tool_name: str = "multiply",
    kwargs: dict[str, Any] | None = None,
    call_id: str = "call-1",
    answer: str = "The answer is 6.",
) -> Callable[..., ChatMessage]:
    """A scripted function-calling turn: ask for one tool, then answer."""

    def respond(messages: Sequence[ChatMessage], **_: Any) -> ChatMessage:
        if any(m.role == MessageRole.TOOL for m in messages):
            return ChatMessage(role="assistant", content=answer)
        block = ToolCallBlock(
            tool_call_id=call_id, tool_name=tool_name, tool_kwargs=kwargs or {"a": 2, "b": 3}
        )
        return ChatMessage(role="assistant", blocks=[block])

    return respond


def function_llm(respond: Callable[..., ChatMessage]) -> MockFunctionCallingLLM:
    return MockFunctionCallingLLM(response_generator=respond, is_chat_model=True)


# llama-index-workflows lists a workflow's steps with inspect.getmembers, which
# reads every deprecated pydantic attribute of the agent (``__fields__``,
# ``model_computed_fields`` on the instance, ...): warnings from the library,
# not from this package. ReActAgent itself calls a deprecated Context.is_running.
_LIBRARY_WARNINGS = (
    "ignore::pydantic.warnings.PydanticDeprecationWarning",
    "ignore:is_running called from within a step:DeprecationWarning",
)
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            for spec in _LIBRARY_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture(autouse=True)
def clean_llama_index() -> Iterator[None]:
    """Leave the root dispatcher, Settings and the global handler as they were."""
    dispatcher = get_dispatcher()
    span_handlers = list(dispatcher.span_handlers)
    event_handlers = list(dispatcher.event_handlers)
    saved = (Settings._llm, Settings._embed_model, Settings._callback_manager)
    global_handler = llama_index.core.global_handler
    yield
    uninstrument()
    leftover = [
        h
        for h in [*dispatcher.span_handlers, *dispatcher.event_handlers]
        if type(h).__module__.startswith("llama_index.callbacks.aitel")
    ]
    dispatcher.span_handlers = span_handlers
    dispatcher.event_handlers = event_handlers
    Settings._llm, Settings._embed_model, Settings._callback_manager = saved
    llama_index.core.global_handler = global_handler
    assert not leftover, f"a test left aitel handlers on the dispatcher: {leftover}"


@pytest.fixture
def exporter() -> aitel.InMemoryExporter:
    return aitel.InMemoryExporter()


@pytest.fixture
def tracer(exporter: aitel.InMemoryExporter) -> Iterator[aitel.Tracer]:
    tracer = aitel.Tracer(exporter, settings=aitel.Settings(redaction=()))
    yield tracer
    tracer.shutdown(timeout=5.0)


@pytest.fixture
def instrumentation(tracer: aitel.Tracer) -> Iterator[AITelInstrumentation]:
    instrumentation = AITelInstrumentation(tracer=tracer).instrument()
    yield instrumentation
    instrumentation.uninstrument()


@pytest.fixture
def packets(
    tracer: aitel.Tracer, exporter: aitel.InMemoryExporter
) -> Callable[[], list[dict[str, Any]]]:
    """Flush and return every packet so far, each validated against the schema."""

    def collect() -> list[dict[str, Any]]:
        assert tracer.flush(timeout=10.0)
        found = exporter.packets
        for packet in found:
            aitel.ContextPacket.model_validate(packet)
        return found

    return collect


@pytest.fixture(scope="session")
def documents() -> list[Document]:
    return [
        Document(text="Paris is the capital of France.", metadata={"source": "france.txt"}),
        Document(text="Berlin is the capital of Germany.", metadata={"source": "germany.txt"}),
    ]


@pytest.fixture(scope="session")
def index(documents: list[Document]) -> VectorStoreIndex:
    """Session-scoped, so built before any test instruments LlamaIndex (no packets)."""
    return VectorStoreIndex.from_documents(documents, embed_model=MockEmbedding(embed_dim=8))


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture
def fakes() -> Any:
    """The offline models and tools, for tests (conftest is not importable by name)."""

    class Fakes:
        ScriptedLLM = ScriptedLLM
        multiply = staticmethod(multiply)
        boom = staticmethod(boom)
        tool_then_answer = staticmethod(tool_then_answer)
        function_llm = staticmethod(function_llm)
        USAGE = USAGE
        MODEL = MODEL

    return Fakes


def by_kind(packet: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in packet["steps"] if s["kind"] == kind]


@pytest.fixture
def steps_of() -> Callable[[dict[str, Any], str], list[dict[str, Any]]]:
    return by_kind
