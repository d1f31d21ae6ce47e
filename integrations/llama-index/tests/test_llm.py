"""Model calls: one step per real call, usage and cost counted once, logprobs, direct calls."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core import PromptTemplate
from llama_index.core.base.llms.types import ChatMessage

pytestmark = pytest.mark.usefixtures("instrumentation")

PROMPT = PromptTemplate("Name the capital of {country}.")


def test_apredict_acomplete_complete_is_one_model_call(llm, packets, steps_of) -> None:
    """apredict -> acomplete -> complete: three spans, one real call, one LLM step."""

    async def run() -> str:
        return await llm.apredict(PROMPT, country="France")

    assert asyncio.run(run()) == "Paris."
    assert llm.calls == ["Name the capital of France."]
    packet = packets()[0]
    model_steps = steps_of(packet, "llm")
    assert len(model_steps) == 1
    assert model_steps[0]["name"] == "ScriptedLLM.acomplete"
    performance = packet["performance"]
    assert performance["llm_calls"] == len(llm.calls) == 1
    assert performance["prompt_tokens"] == 11
    assert performance["completion_tokens"] == 3
    assert performance["total_tokens"] == 14
    assert performance["cost_usd"] == pytest.approx(model_steps[0]["llm"]["cost_usd"])


def test_predict_called_directly_has_templating_and_the_call(llm, packets) -> None:
    """llm.predict(...) on its own: a root step with the templating and the model call inside."""
    assert llm.predict(PROMPT, country="France") == "Paris."
    packet = packets()[0]
    root, templating, model = packet["steps"]
    assert root["name"] == "ScriptedLLM.predict"
    assert root["kind"] == "chain"
    assert root["input"] == {
        "prompt": root["input"]["prompt"],
        "prompt_args": {"country": "France"},
    }
    assert root["output"] == "Paris."
    assert templating["parent_id"] == root["step_id"]
    assert templating["input"] == {
        "template": "Name the capital of {country}.",
        "template_vars": {"country": "France"},
    }
    assert templating["output"] == "Name the capital of France."
    assert model["parent_id"] == root["step_id"]
    assert model["llm"]["prompts"] == ["Name the capital of France."]
    assert packet["payload"]["output"] == "Paris."


def test_chat_over_complete_is_one_model_call(fakes, packets, steps_of) -> None:
    """A chat call that a completion model serves (chat -> complete) is one chat_model step."""
    llm = fakes.ScriptedLLM(chat_model=True)
    response = llm.chat(
        [ChatMessage(role="system", content="Be brief."), ChatMessage(content="Capital?")]
    )
    assert response.message.content == "Paris."
    assert len(llm.calls) == 1
    packet = packets()[0]
    assert len(packet["steps"]) == 1
    step = packet["steps"][0]
    assert step["kind"] == "chat_model"
    assert step["name"] == "ScriptedLLM.chat"
    assert step["llm"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital?"},
    ]
    assert step["output"] == "Paris."
    assert step["llm"]["usage"]["total_tokens"] == 14
    assert packet["performance"]["llm_calls"] == 1


def test_direct_streamed_completion_ends_with_its_stream(llm, packets) -> None:
    """llm.stream_complete(...) is a packet once the stream is drained, with time to first token."""
    stream = llm.stream_complete("Capital of France?")
    assert packets() == []
    assert [r.delta for r in stream] == ["Par", "is", "."]
    packet = packets()[0]
    step = packet["steps"][0]
    assert step["output"] == "Paris."
    assert step["llm"]["streamed"] is True
    assert step["llm"]["chunks"] == 3
    assert step["llm"]["usage"]["total_tokens"] == 14  # from the last chunk
    assert step["llm"]["time_to_first_token_ms"] is not None
    assert packet["performance"]["time_to_first_token_ms"] is not None


def test_stream_predict_called_directly_waits_for_the_stream(llm, packets) -> None:
    """llm.stream(prompt): the root step returns a generator; the packet waits for the call."""
    tokens = llm.stream(PROMPT, country="France")
    assert packets() == []
    assert "".join(tokens) == "Paris."
    packet = packets()[0]
    assert [s["kind"] for s in packet["steps"]] == ["chain", "chain", "llm"]
    assert packet["steps"][2]["llm"]["chunks"] == 3


def test_closing_a_stream_early_ends_the_call(llm, packets) -> None:
    """A consumer that stops reading closes the stream; the call ends, marked as cut short."""
    stream = llm.stream_complete("Capital of France?")
    first = next(stream)
    assert first.delta == "Par"
    stream.close()
    packet = packets()[0]
    step = packet["steps"][0]
    assert step["status"] == "SUCCESS"
    assert step["metadata"]["stream_closed_early"] is True
    assert step["llm"]["chunks"] == 1


def test_logprobs_are_summarised_and_captured_when_asked(
    instrumentation, tracer, packets, fakes
) -> None:
    """capture_logprobs=True: a per-step summary and the tokens in model_internals."""
    from llama_index.callbacks.aitel import AITelInstrumentation

    instrumentation.uninstrument()
    llm = fakes.ScriptedLLM()
    with AITelInstrumentation(tracer=tracer, capture_logprobs=True):
        llm.complete("Capital of France?")
    (packet,) = packets()
    step = packet["steps"][0]
    assert step["llm"]["logprobs"] == {
        "tokens": 2,
        "mean_logprob": pytest.approx(-0.055),
        "min_logprob": pytest.approx(-0.1),
        "perplexity": pytest.approx(1.056541, rel=1e-5),
    }
    (captured,) = packet["model_internals"]["logprobs"]
    assert captured["step_id"] == step["step_id"]
    assert captured["model_name"] == "gpt-4o-mini-2024-07-18"
    assert captured["tokens"] == [
        {
            "token": "Paris",
            "logprob": -0.1,
            "bytes": [80, 97],
            "top_logprobs": [
                {"token": "Paris", "logprob": -0.1},
                {"token": "Lyon", "logprob": -2.5},
            ],
        },
        {
            "token": ".",
            "logprob": -0.01,
            "bytes": None,
            "top_logprobs": [{"token": ".", "logprob": -0.01}],
        },
    ]


def test_logprobs_are_not_captured_by_default(llm, packets) -> None:
    """Without capture_logprobs the packet carries no logprobs at all."""
    llm.complete("Capital of France?")
    packet = packets()[0]
    assert packet["steps"][0]["llm"]["logprobs"] is None
    assert packet["model_internals"] is None


def test_usage_from_additional_kwargs(fakes, packets) -> None:
    """Token counts that an integration copies into additional_kwargs are read too."""
    from llama_index.core.base.llms.types import CompletionResponse
    from llama_index.core.llms.callbacks import llm_completion_callback

    class KwargsLLM(fakes.ScriptedLLM):  # type: ignore[misc,name-defined]
        @llm_completion_callback()
        def complete(
            self, prompt: str, formatted: bool = False, **kwargs: object
        ) -> CompletionResponse:
            return CompletionResponse(
                text="ok",
                additional_kwargs={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            )

    KwargsLLM().complete("hi")
    usage = packets()[0]["steps"][0]["llm"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (5, 1, 6)


def test_unreported_usage_stays_unknown(packets) -> None:
    """A model that reports no usage gives usage null, never zeros."""
    from llama_index.core.llms.mock import MockLLM

    MockLLM(max_tokens=2).complete("hi")
    packet = packets()[0]
    assert packet["steps"][0]["llm"]["usage"] is None
    assert packet["performance"]["total_tokens"] is None
    assert packet["performance"]["token_usage_complete"] is False


def test_an_unknown_model_name_falls_back_to_the_llms_own_field_or_property(packets) -> None:
    """Metadata saying "unknown": the LLM's ``model`` field or property names the model."""
    from llama_index.core.llms.mock import MockLLM

    class LocalLLM(MockLLM):
        model: str = "local-llama-3"

    class DeployedLLM(MockLLM):
        @property
        def deployment_name(self) -> str:
            return "support-gpt-4o"

    for llm in (LocalLLM(max_tokens=2), DeployedLLM(max_tokens=2), MockLLM(max_tokens=2)):
        llm.complete("hi")
    steps = [packet["steps"][0]["llm"] for packet in packets()]
    assert [s["model_name"] for s in steps] == ["local-llama-3", "support-gpt-4o", None]
    assert {s["invocation_params"]["system_role"] for s in steps} == {"system"}  # an enum's value
