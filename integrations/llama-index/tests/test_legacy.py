"""The legacy callback handler: Settings.callback_manager = CallbackManager([AITelCallbackHandler()])."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.callbacks.aitel import AITelCallbackHandler
from llama_index.core import Settings
from llama_index.core.callbacks import CallbackManager

QUESTION = "What is the capital of France?"


@pytest.fixture
def handler(tracer) -> AITelCallbackHandler:
    """Set as LlamaIndex's callback manager (the autouse fixture restores Settings)."""
    handler = AITelCallbackHandler(tracer=tracer, ab_variant="legacy")
    Settings.callback_manager = CallbackManager([handler])
    return handler


@pytest.fixture
def legacy_index(handler, documents, exporter, packets):
    """An index built while the handler is set (its embedding packets are dropped)."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding

    index = VectorStoreIndex.from_documents(documents, embed_model=MockEmbedding(embed_dim=8))
    building = packets()
    assert building and all(p["steps"][0]["kind"] == "embedding" for p in building)
    exporter.clear()
    return index


def _engine(index, llm):
    llm.callback_manager = Settings.callback_manager
    return index.as_query_engine(llm=llm)


def test_legacy_query_is_one_packet(legacy_index, llm, packets) -> None:
    """A query seen through legacy callbacks: retrieval, synthesis, templating, one model call."""
    response = _engine(legacy_index, llm).query(QUESTION)
    (packet,) = packets()
    assert packet["status"] == "SUCCESS"
    assert packet["payload"] == {"input": QUESTION, "output": str(response)}
    assert packet["pipeline_metadata"]["ab_variant"] == "legacy"
    assert packet["producer"]["integration"] == "llama_index"
    kinds = [s["kind"] for s in packet["steps"]]
    assert kinds.count("llm") == 1
    assert "retriever" in kinds
    retrieve = next(s for s in packet["steps"] if s["kind"] == "retriever")
    assert retrieve["retrieval"]["query"] == QUESTION
    assert {d["source"] for d in retrieve["retrieval"]["documents"]} == {
        "france.txt",
        "germany.txt",
    }
    model = next(s for s in packet["steps"] if s["kind"] == "llm")
    assert model["output"] == "Paris."
    assert model["llm"]["usage"]["total_tokens"] == 14
    assert model["llm"]["model_name"] == "gpt-4o-mini-2024-07-18"
    assert QUESTION in model["llm"]["prompts"][0]
    templating = next(s for s in packet["steps"] if s["name"] == "templating")
    assert templating["input"]["template_vars"]["query_str"] == QUESTION
    assert packet["performance"]["llm_calls"] == 1
    assert packet["performance"]["total_tokens"] == 14


def test_legacy_nested_model_callbacks_are_one_call(legacy_index, llm, packets) -> None:
    """acomplete -> complete report two LLM events; the packet has one model call."""

    async def run() -> object:
        return await _engine(legacy_index, llm).aquery(QUESTION)

    asyncio.run(run())
    (packet,) = packets()
    assert [s["kind"] for s in packet["steps"]].count("llm") == 1
    assert packet["performance"]["total_tokens"] == 14


def test_legacy_model_error_fails_the_packet(legacy_index, fakes, packets) -> None:
    """A model error reported through callbacks fails the packet at the model step."""
    llm = fakes.ScriptedLLM(fail_with="model unavailable")
    with pytest.raises(RuntimeError):
        _engine(legacy_index, llm).query(QUESTION)
    (packet,) = packets()
    assert packet["status"] == "FAILURE"
    assert packet["error"]["step_kind"] == "llm"
    assert packet["error"]["message"] == "model unavailable"
