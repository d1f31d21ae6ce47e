"""A RAG chain (retriever -> prompt -> chat model -> parser) gives one complete packet."""

from __future__ import annotations

import gc
import uuid

import pytest
from fakes import DOCS, StaticRetriever, answer
from langchain_aitel import AITelHandler
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from aitel.testing import PacketCapture

PROMPT = ChatPromptTemplate.from_messages(
    [("system", "Context:\n{context}"), ("human", "{question}")]
)


def rag_chain(model: GenericFakeChatModel, retriever: StaticRetriever):
    def fmt(docs):
        return "\n".join(d.page_content for d in docs)

    return (
        RunnablePassthrough.assign(context=(lambda x: x["question"]) | retriever | fmt)
        | PROMPT
        | model
        | StrOutputParser()
    ).with_config(run_name="rag")


def test_rag_packet_field_by_field(aitel_packets: PacketCapture) -> None:
    """Every part of a RAG request lands in the packet where the schema says."""
    model = GenericFakeChatModel(messages=iter([answer("Paris.", prompt=31, completion=2)]))
    handler = AITelHandler(
        ab_variant="B",
        model_version="2024-07",
        app_version="3.1.0",
        environment="staging",
        preprocessing_version="chunker-v2",
        tags=["rag"],
        metadata={"team": "search"},
    )
    out = rag_chain(model, StaticRetriever()).invoke(
        {"question": "What is the capital of France?"},
        config={
            "callbacks": [handler],
            "metadata": {"session_id": "s-42", "user_id": "u-7"},
            "tags": ["web"],
        },
    )
    assert out == "Paris."
    packet = aitel_packets.one()

    assert packet["schema_version"] == "1.0"
    assert uuid.UUID(packet["packet_id"]).version == 7
    assert packet["request_id"] == packet["packet_id"]
    assert len(packet["trace_id"]) == 32
    assert packet["timestamp"].endswith("Z") and packet["end_time"] >= packet["timestamp"]
    assert packet["status"] == "SUCCESS"
    assert packet["error_message"] is None and packet["error"] is None

    meta = packet["pipeline_metadata"]
    assert meta["model_name"] == "gpt-4o-mini-2024-07-18"
    assert meta["model_version"] == "2024-07"
    assert meta["ab_variant"] == "B"
    assert meta["app_version"] == "3.1.0"
    assert meta["environment"] == "staging"
    assert meta["preprocessing_version"] == "chunker-v2"
    assert meta["function_name"] == "rag"
    assert meta["session_id"] == "s-42"
    assert meta["user_id"] == "u-7"
    assert meta["tags"] == ["rag", "web"]
    assert meta["metadata"] == {"team": "search", "session_id": "s-42", "user_id": "u-7"}

    assert packet["payload"] == {
        "input": {"question": "What is the capital of France?"},
        "output": "Paris.",
    }

    steps = {s["name"]: s for s in packet["steps"]}
    root = packet["steps"][0]
    assert root["name"] == "rag" and root["parent_id"] is None and root["kind"] == "chain"
    ids = {s["step_id"] for s in packet["steps"]}
    assert all(s["parent_id"] in ids for s in packet["steps"][1:])
    assert all(s["status"] == "SUCCESS" and s["duration_ms"] >= 0 for s in packet["steps"])

    retriever = steps["StaticRetriever"]
    assert retriever["kind"] == "retriever"
    assert retriever["input"] == "What is the capital of France?"
    assert retriever["retrieval"] == {
        "query": "What is the capital of France?",
        "documents": [
            {
                "id": "doc-1",
                "score": 0.92,
                "source": "atlas.pdf",
                "content": DOCS[0].page_content,
                "metadata": {"source": "atlas.pdf", "score": 0.92},
            },
            {
                "id": "doc-2",
                "score": 0.71,
                "source": "wiki/France",
                "content": DOCS[1].page_content,
                "metadata": {"source": "wiki/France", "score": 0.71},
            },
        ],
    }

    llm_step = steps["GenericFakeChatModel"]
    assert llm_step["kind"] == "chat_model"
    assert llm_step["output"] == "Paris."
    llm = llm_step["llm"]
    assert llm["messages"] == [
        {
            "role": "system",
            "content": "Context:\nParis is the capital of France.\nFrance is in Europe.",
        },
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert llm["model_name"] == "gpt-4o-mini-2024-07-18"
    assert llm["provider"] == "genericfakechatmodel"
    assert llm["usage"] == {
        "prompt_tokens": 31,
        "completion_tokens": 2,
        "total_tokens": 33,
        "cached_prompt_tokens": None,
        "cache_creation_tokens": None,
        "reasoning_tokens": None,
    }
    assert llm["cost_usd"] == pytest.approx((31 * 0.15 + 2 * 0.6) / 1e6)
    assert llm["finish_reason"] == "stop"
    assert llm["streamed"] is False and llm["time_to_first_token_ms"] is None
    assert llm["tool_calls"] == []

    perf = packet["performance"]
    assert perf["latency_ms"] == root["duration_ms"]
    assert (
        perf["prompt_tokens"] == 31
        and perf["completion_tokens"] == 2
        and perf["total_tokens"] == 33
    )
    assert perf["cost_usd"] == pytest.approx(llm["cost_usd"])
    assert perf["token_usage_complete"] is True and perf["cost_complete"] is True
    assert perf["llm_calls"] == 1 and perf["tool_calls"] == 0 and perf["retries"] == 0
    assert packet["model_internals"] is None
    assert packet["producer"]["integration"] == "langchain"


def test_usage_not_reported_is_unknown_not_zero(aitel_packets: PacketCapture) -> None:
    """A model that reports no usage gives null tokens and null cost, never 0."""
    from langchain_core.messages import AIMessage

    model = GenericFakeChatModel(
        messages=iter([AIMessage("ok", response_metadata={"model_name": "gpt-4o"})])
    )
    model.invoke("hi", config={"callbacks": [AITelHandler()]})
    packet = aitel_packets.one()
    llm = packet["steps"][0]["llm"]
    assert llm["usage"] is None and llm["cost_usd"] is None
    perf = packet["performance"]
    assert (
        perf["prompt_tokens"] is None and perf["total_tokens"] is None and perf["cost_usd"] is None
    )
    assert perf["token_usage_complete"] is False


def test_unknown_model_has_no_cost(aitel_packets: PacketCapture) -> None:
    """Usage is kept but an unpriced model costs null."""
    model = GenericFakeChatModel(messages=iter([answer("ok", model="my-private-model-7b")]))
    model.invoke("hi", config={"callbacks": [AITelHandler()]})
    packet = aitel_packets.one()
    assert packet["steps"][0]["llm"]["usage"]["total_tokens"] == 28
    assert packet["performance"]["cost_usd"] is None
    assert packet["performance"]["cost_complete"] is False


def test_model_name_falls_back_to_ls_model_name_then_params(aitel_packets: PacketCapture) -> None:
    """Without response_metadata the name comes from ls_model_name, then invocation params."""
    from langchain_core.messages import AIMessage

    class Named(GenericFakeChatModel):
        model_name: str = "claude-3-5-sonnet-20241022"

        def _get_ls_params(self, stop=None, **kwargs):
            params = super()._get_ls_params(stop=stop, **kwargs)
            params["ls_model_name"] = self.model_name
            return params

    Named(messages=iter([AIMessage("a")])).invoke("q", config={"callbacks": [AITelHandler()]})
    packet = aitel_packets.one()
    assert packet["steps"][0]["llm"]["model_name"] == "claude-3-5-sonnet-20241022"
    assert packet["pipeline_metadata"]["model_name"] == "claude-3-5-sonnet-20241022"


def test_cache_and_reasoning_details_are_kept(aitel_packets: PacketCapture) -> None:
    """Cached prompt tokens are priced at the cached rate."""
    from langchain_core.messages import AIMessage

    msg = AIMessage(
        "ok",
        usage_metadata={
            "input_tokens": 1000,
            "output_tokens": 100,
            "total_tokens": 1100,
            "input_token_details": {"cache_read": 600},
            "output_token_details": {"reasoning": 40},
        },
        response_metadata={"model_name": "gpt-4o"},
    )
    GenericFakeChatModel(messages=iter([msg])).invoke("q", config={"callbacks": [AITelHandler()]})
    llm = aitel_packets.one()["steps"][0]["llm"]
    assert llm["usage"]["cached_prompt_tokens"] == 600
    assert llm["usage"]["reasoning_tokens"] == 40
    assert llm["cost_usd"] == pytest.approx((400 * 2.5 + 600 * 1.25 + 100 * 10.0) / 1e6)


def test_logprobs_captured_only_when_enabled(aitel_packets: PacketCapture) -> None:
    """capture_logprobs=True puts token logprobs in model_internals and a summary on the step."""
    logprobs = {
        "content": [
            {
                "token": "Par",
                "logprob": -0.1,
                "bytes": [80, 97, 114],
                "top_logprobs": [{"token": "Par", "logprob": -0.1}],
            },
            {"token": "is", "logprob": -0.3, "bytes": [105, 115], "top_logprobs": []},
        ]
    }
    for enabled in (False, True):
        msg = answer("Paris", logprobs=logprobs)
        GenericFakeChatModel(messages=iter([msg])).invoke(
            "q", config={"callbacks": [AITelHandler(capture_logprobs=enabled)]}
        )
    off, on = aitel_packets.packets()
    assert off["model_internals"] is None and off["steps"][0]["llm"]["logprobs"] is None
    step = on["steps"][0]
    assert step["llm"]["logprobs"] == {
        "tokens": 2,
        "mean_logprob": -0.2,
        "min_logprob": -0.3,
        "perplexity": pytest.approx(1.221403),
    }
    assert on["model_internals"]["logprobs"] == [
        {
            "step_id": step["step_id"],
            "model_name": "gpt-4o-mini-2024-07-18",
            "tokens": [
                {
                    "token": "Par",
                    "logprob": -0.1,
                    "bytes": [80, 97, 114],
                    "top_logprobs": [{"token": "Par", "logprob": -0.1}],
                },
                {"token": "is", "logprob": -0.3, "bytes": [105, 115], "top_logprobs": []},
            ],
        }
    ]


def test_credentials_never_leave_in_invocation_params(aitel_packets: PacketCapture) -> None:
    """api_key-like parameters are removed from invocation params."""

    class Keyed(GenericFakeChatModel):
        api_key: str = "sk-test-should-never-leave-123456"

        @property
        def _identifying_params(self):
            return {
                "model": "gpt-4o",
                "temperature": 0.2,
                "api_key": self.api_key,
                "openai_api_key": self.api_key,
            }

    Keyed(messages=iter([answer("ok")])).invoke("q", config={"callbacks": [AITelHandler()]})
    packet = aitel_packets.one()
    params = packet["steps"][0]["llm"]["invocation_params"]
    assert params["temperature"] == 0.2 and params["model"] == "gpt-4o"
    assert "api_key" not in params and "openai_api_key" not in params
    assert b"should-never-leave" not in aitel_packets.exporter.raw[0]


def test_finished_requests_leave_nothing_for_the_cycle_collector(
    aitel_packets: PacketCapture,
) -> None:
    """A request's objects are freed when its packet is built, by reference counting.

    Garbage in reference cycles waits for the cycle collector: memory grows by
    megabytes over a long run and the collections run on the user's thread.
    The handler must not leave more of it than a handler that does nothing.
    """

    class NoOp(BaseCallbackHandler):
        pass

    def cyclic_garbage(callbacks: list[BaseCallbackHandler]) -> int:
        model = GenericFakeChatModel(messages=iter([answer("Paris.")] * 20))
        chain = rag_chain(model, StaticRetriever())
        chain.invoke({"question": "warm-up"}, config={"callbacks": callbacks})
        aitel_packets.tracer.flush(5.0)
        enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            for _ in range(10):
                chain.invoke({"question": "Capital?"}, config={"callbacks": callbacks})
            aitel_packets.tracer.flush(5.0)
            return gc.collect()
        finally:
            if enabled:
                gc.enable()

    floor = cyclic_garbage([NoOp()])
    assert cyclic_garbage([AITelHandler()]) <= floor
    assert len(aitel_packets.packets()) == 11


def test_a_bare_retriever_call_outputs_its_documents(aitel_packets: PacketCapture) -> None:
    """Called on its own, a retriever's packet has the documents as the request's output."""
    docs = StaticRetriever().invoke("refunds?", config={"callbacks": [AITelHandler()]})
    packet = aitel_packets.one()
    (step,) = packet["steps"]
    assert packet["payload"]["input"] == "refunds?"
    assert packet["payload"]["output"] == step["retrieval"]["documents"]
    assert [d["content"] for d in packet["payload"]["output"]] == [d.page_content for d in docs]
    assert step["output"] is None  # the step keeps them under retrieval only
