"""Offline LangChain pieces for the tests: LangChain's own fakes, minimally extended."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

DOCS = [
    Document(
        id="doc-1",
        page_content="Paris is the capital of France.",
        metadata={"source": "atlas.pdf", "score": 0.92},
    ),
    Document(
        id="doc-2",
        page_content="France is in Europe.",
        metadata={"source": "wiki/France", "score": 0.71},
    ),
]


def usage(prompt: int, completion: int, **details: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "input_tokens": prompt,
        "output_tokens": completion,
        "total_tokens": prompt + completion,
    }
    data.update(details)
    return data


def answer(
    text: str,
    prompt: int = 20,
    completion: int = 8,
    model: str = "gpt-4o-mini-2024-07-18",
    **kw: Any,
) -> AIMessage:
    return AIMessage(
        content=text,
        usage_metadata=usage(prompt, completion),  # type: ignore[arg-type]
        response_metadata={"model_name": model, "finish_reason": "stop", **kw},
    )


class ToolCallingFakeModel(GenericFakeChatModel):
    """GenericFakeChatModel that accepts bind_tools (LangChain's fakes raise)."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


class StreamingUsageModel(GenericFakeChatModel):
    """Streams word by word and ends with a usage chunk, like OpenAI with include_usage."""

    final_usage: dict[str, Any]
    model: str = "gpt-4o-2024-08-06"

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from super()._stream(messages, stop, run_manager, **kwargs)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=self.final_usage,  # type: ignore[arg-type]
                response_metadata={"model_name": self.model, "finish_reason": "stop"},
                chunk_position="last",
            )
        )


class FailingModel(GenericFakeChatModel):
    """Raises on every call, like a provider outage."""

    error: str = "Error code: 503 - upstream overloaded"
    failures_before_success: int = 1_000_000
    calls: int = 0

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls += 1
        if self.calls <= self.failures_before_success:
            raise ConnectionError(self.error)
        return super()._generate(messages, stop, run_manager, **kwargs)


class StaticRetriever(BaseRetriever):
    docs: list[Document] = DOCS
    error: str | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.error:
            raise TimeoutError(self.error)
        return list(self.docs)
