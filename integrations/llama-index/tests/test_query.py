"""Query engines: one packet per query, with retrieval, templating, the model call and embeddings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aitel.pricing import PricingTable

pytestmark = pytest.mark.usefixtures("instrumentation")

QUESTION = "What is the capital of France?"


def _nodes(index: Any) -> dict[str, Any]:
    return {n.node_id: n for n in index.docstore.docs.values()}


def _check_rag_packet(packet: dict[str, Any], index: Any, llm: Any, answer: str) -> None:
    steps = packet["steps"]
    root = steps[0]
    assert packet["status"] == "SUCCESS"
    assert packet["payload"] == {"input": QUESTION, "output": answer}
    assert packet["producer"]["integration"] == "llama_index"
    assert root["parent_id"] is None
    assert root["kind"] == "chain"
    assert root["name"].startswith("RetrieverQueryEngine.")
    assert packet["pipeline_metadata"]["function_name"] == root["name"]

    by_name = {s["name"].split(".")[-1]: s for s in steps}
    assert [s["kind"] for s in steps] == [
        "chain",
        "retriever",
        "embedding",
        "chain",
        "chain",
        "llm",
    ]
    retrieve = steps[1]
    embed = steps[2]
    synthesize = steps[3]
    templating = steps[4]
    model = steps[5]
    assert retrieve["parent_id"] == root["step_id"]
    assert embed["parent_id"] == retrieve["step_id"]
    assert synthesize["parent_id"] == root["step_id"]
    assert templating["parent_id"] == synthesize["step_id"]
    assert model["parent_id"] == synthesize["step_id"]
    assert templating["name"] == "templating"
    assert "asynthesize" in by_name or "synthesize" in by_name

    # retrieval: the query and every node with id, score, source and text
    nodes = _nodes(index)
    assert retrieve["input"] == QUESTION
    assert retrieve["retrieval"]["query"] == QUESTION
    documents = retrieve["retrieval"]["documents"]
    assert len(documents) == 2
    for doc in documents:
        node = nodes[doc["id"]]
        assert doc["content"] == node.text
        assert doc["source"] == node.metadata["source"]
        assert doc["metadata"] == node.metadata
        assert isinstance(doc["score"], float)
    assert {d["source"] for d in documents} == {"france.txt", "germany.txt"}
    assert synthesize["metadata"]["source_node_ids"] == [d["id"] for d in documents]
    assert synthesize["input"] == QUESTION
    assert synthesize["output"] == answer

    # embeddings of the query
    assert embed["input"] == [QUESTION]
    assert embed["embedding"] == {"model_name": None, "input_count": 1, "dimensions": 8}

    # templating: template and variables in, the constructed prompt out
    assert "{context_str}" in templating["input"]["template"]
    assert templating["input"]["template_vars"]["query_str"] == QUESTION
    prompt = templating["output"]
    assert isinstance(prompt, str)
    assert QUESTION in prompt
    assert "Paris is the capital of France." in prompt

    # the model call: what it saw, what it said, what it cost
    assert llm.calls == [prompt]
    info = model["llm"]
    assert model["input"] == prompt
    assert info["prompts"] == [prompt]
    assert model["output"] == answer
    assert info["model_name"] == "gpt-4o-mini-2024-07-18"
    assert info["finish_reason"] == "stop"
    assert info["usage"]["prompt_tokens"] == 11
    assert info["usage"]["completion_tokens"] == 3
    assert info["usage"]["total_tokens"] == 14
    price = PricingTable.default().price_for("gpt-4o-mini-2024-07-18")
    assert price is not None
    assert info["cost_usd"] == pytest.approx(price.cost(11, 3, None, None))

    performance = packet["performance"]
    assert performance["llm_calls"] == 1
    assert performance["prompt_tokens"] == 11
    assert performance["completion_tokens"] == 3
    assert performance["total_tokens"] == 14
    assert performance["token_usage_complete"] is True
    assert performance["cost_usd"] == pytest.approx(info["cost_usd"])
    assert performance["tool_calls"] == 0
    assert all(s["status"] == "SUCCESS" for s in steps)


def test_sync_query_makes_one_complete_packet(index, llm, packets) -> None:
    """A query is one packet: retrieval, embedding, synthesis, templating and one model call."""
    response = index.as_query_engine(llm=llm, similarity_top_k=2).query(QUESTION)
    found = packets()
    assert len(found) == 1
    _check_rag_packet(found[0], index, llm, str(response))
    assert found[0]["steps"][5]["llm"]["streamed"] is False
    assert found[0]["steps"][5]["llm"]["time_to_first_token_ms"] is None


def test_async_query_makes_the_same_packet(index, llm, packets) -> None:
    """aquery records the same steps, and its nested acomplete -> complete is one model call."""

    async def run() -> Any:
        return await index.as_query_engine(llm=llm, similarity_top_k=2).aquery(QUESTION)

    response = asyncio.run(run())
    found = packets()
    assert len(found) == 1
    _check_rag_packet(found[0], index, llm, str(response))
    assert found[0]["steps"][0]["name"] == "RetrieverQueryEngine.aquery"
    assert found[0]["steps"][5]["name"] == "ScriptedLLM.acomplete"


def test_streamed_query_ends_when_the_stream_is_drained(index, llm, packets) -> None:
    """The packet of a streamed query waits for the stream; the model call is inside it."""
    response = index.as_query_engine(llm=llm, similarity_top_k=2, streaming=True).query(QUESTION)
    assert packets() == []  # QueryEndEvent has fired, the model has not run yet
    tokens = list(response.response_gen)
    assert tokens == ["Par", "is", "."]
    found = packets()
    assert len(found) == 1
    packet = found[0]
    _check_rag_packet(packet, index, llm, "Paris.")
    model = packet["steps"][5]
    assert model["name"] == "ScriptedLLM.stream_complete"
    assert model["llm"]["streamed"] is True
    assert model["llm"]["chunks"] == 3
    ttft = model["llm"]["time_to_first_token_ms"]
    assert ttft is not None
    assert 0 <= ttft <= model["duration_ms"]
    # the query returned before the model ran: it and the synthesis end with the stream
    root = packet["steps"][0]
    assert root["end_time"] >= model["end_time"]
    assert packet["steps"][3]["end_time"] >= model["end_time"]
    assert packet["end_time"] == root["end_time"]
    assert packet["performance"]["time_to_first_token_ms"] is not None
    assert packet["performance"]["time_to_first_token_ms"] <= packet["performance"]["latency_ms"]


def test_async_streamed_query_ends_when_the_stream_is_drained(index, llm, packets) -> None:
    """aquery(streaming=True): the packet is complete only after the async stream is drained."""
    engine = index.as_query_engine(llm=llm, similarity_top_k=2, streaming=True)

    async def run() -> list[str]:
        response = await engine.aquery(QUESTION)
        assert packets() == []
        return [token async for token in response.async_response_gen()]

    assert asyncio.run(run()) == ["Par", "is", "."]
    found = packets()
    assert len(found) == 1
    _check_rag_packet(found[0], index, llm, "Paris.")
    assert found[0]["steps"][5]["llm"]["chunks"] == 3


def test_get_response_drains_the_stream_too(index, llm, packets) -> None:
    """StreamingResponse.get_response() consumes the wrapped stream and ends the packet."""
    response = index.as_query_engine(llm=llm, streaming=True).query(QUESTION)
    assert str(response.get_response()) == "Paris."
    found = packets()
    assert len(found) == 1
    assert found[0]["payload"]["output"] == "Paris."


def test_only_meaningful_spans_become_steps(index, llm, packets) -> None:
    """Internal spans (_query, _retrieve, get_response, text splitting) are not steps."""
    index.as_query_engine(llm=llm).query(QUESTION)
    names = [s["name"] for s in packets()[0]["steps"]]
    assert len(names) == 6
    for internal in ("_query", "_retrieve", "get_response", "split_text", "predict"):
        assert not any(n.endswith(f".{internal}") for n in names), names


def test_a_retriever_alone_is_a_packet(index, packets) -> None:
    """A retriever called directly is its own request."""
    nodes = index.as_retriever(similarity_top_k=1).retrieve(QUESTION)
    packet = packets()[0]
    assert [s["kind"] for s in packet["steps"]] == ["retriever", "embedding"]
    docs = packet["steps"][0]["retrieval"]["documents"]
    assert [d["id"] for d in docs] == [nodes[0].node.node_id]
    assert docs[0]["score"] == pytest.approx(nodes[0].score)
    assert packet["performance"]["llm_calls"] == 0


def test_reranker_is_a_step(index, llm, packets) -> None:
    """A reranker reporting ReRank events is a reranker step with nodes in and out."""
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
    from llama_index.core.postprocessor.types import BaseNodePostprocessor

    dispatcher = get_dispatcher("tests.reranker")

    class KeepFrance(BaseNodePostprocessor):
        def _postprocess_nodes(self, nodes: Any, query_bundle: Any = None) -> Any:
            dispatcher.event(
                ReRankStartEvent(query=query_bundle, nodes=nodes, top_n=1, model_name="keep-france")
            )
            kept = [n for n in nodes if "France" in n.node.get_content()]
            for n in kept:
                n.score = 0.99
            dispatcher.event(ReRankEndEvent(nodes=kept))
            return kept

    engine = index.as_query_engine(llm=llm, similarity_top_k=2, node_postprocessors=[KeepFrance()])
    engine.query(QUESTION)
    (packet,) = packets()
    (rerank,) = [s for s in packet["steps"] if s["kind"] == "reranker"]
    assert rerank["input"]["query"] == QUESTION
    assert rerank["input"]["top_n"] == 1
    assert rerank["input"]["model_name"] == "keep-france"
    assert len(rerank["input"]["nodes"]) == 2
    assert rerank["retrieval"]["query"] == QUESTION
    assert [d["content"] for d in rerank["retrieval"]["documents"]] == [
        "Paris is the capital of France."
    ]
    assert rerank["retrieval"]["documents"][0]["score"] == 0.99
    assert rerank["parent_id"] == packet["steps"][0]["step_id"]
