"""Pipeline metadata: handler options and request-level instrument_tags."""

from __future__ import annotations

from llama_index.callbacks.aitel import AITelInstrumentation, instrument_tags

import aitel


def test_handler_options_become_pipeline_metadata(tracer, index, llm, packets) -> None:
    """Every option lands in pipeline_metadata, with integration=llama_index."""
    options = {
        "model_version": "2024-07",
        "ab_variant": "B",
        "app_version": "1.4.2",
        "preprocessing_version": "chunks-v3",
        "environment": "staging",
        "session_id": "session-1",
        "user_id": "user-1",
    }
    with AITelInstrumentation(
        tracer=tracer, tags=["rag", "beta"], metadata={"team": "search"}, **options
    ):
        index.as_query_engine(llm=llm).query("Capital?")
    (packet,) = packets()
    metadata = packet["pipeline_metadata"]
    for key, value in options.items():
        assert metadata[key] == value, key
    assert metadata["tags"] == ["rag", "beta"]
    assert metadata["metadata"] == {"team": "search"}
    assert metadata["model_name"] == "gpt-4o-mini-2024-07-18"
    assert metadata["function_name"] == "RetrieverQueryEngine.query"
    assert packet["producer"]["integration"] == "llama_index"
    assert packet["producer"]["integration_version"]


def test_instrument_tags_set_request_level_metadata(tracer, index, llm, packets) -> None:
    """instrument_tags: known keys fill their fields, a tags list tags the packet, the rest is metadata."""
    with AITelInstrumentation(tracer=tracer, ab_variant="A"):
        tags = {
            "request_id": "req-42",
            "session_id": "conv-7",
            "user_id": "alice",
            "ab_variant": "B",
            "tags": ["vip"],
            "tenant": "acme",
        }
        with instrument_tags(tags):
            index.as_query_engine(llm=llm).query("Capital?")
    (packet,) = packets()
    metadata = packet["pipeline_metadata"]
    assert packet["request_id"] == "req-42"
    assert metadata["session_id"] == "conv-7"
    assert metadata["user_id"] == "alice"
    assert metadata["ab_variant"] == "A"  # the handler's explicit option wins
    assert metadata["tags"] == ["vip"]
    assert metadata["metadata"]["tenant"] == "acme"
    assert packet["steps"][0]["tags"] == ["vip"]


def test_exporter_option_makes_a_tracer(packets) -> None:
    """exporter=... without a tracer writes to a tracer of its own."""
    from llama_index.core.llms.mock import MockLLM

    exporter = aitel.InMemoryExporter()
    instrumentation = AITelInstrumentation(exporter=exporter)
    assert instrumentation.tracer.exporter is exporter
    with instrumentation:
        MockLLM(max_tokens=1).complete("hi")
    assert instrumentation.flush()
    (packet,) = exporter.packets
    aitel.ContextPacket.model_validate(packet)
    instrumentation.tracer.shutdown()
    assert packets() == []


def test_requests_inside_an_aitel_trace_are_its_steps(tracer, index, llm, packets) -> None:
    """A query inside aitel.trace(...) is a step of that trace, not a packet of its own."""
    with (
        AITelInstrumentation(tracer=tracer),
        aitel.trace("handle_request", tracer=tracer, input="hi"),
    ):
        index.as_query_engine(llm=llm).query("Capital?")
    (packet,) = packets()
    root, query = packet["steps"][:2]
    assert root["name"] == "handle_request"
    assert query["name"] == "RetrieverQueryEngine.query"
    assert query["parent_id"] == root["step_id"]
    assert packet["performance"]["llm_calls"] == 1


def test_custom_events_are_step_events(instrumentation, packets) -> None:
    """An application's own instrumentation event lands in the step it was raised in."""
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.events import BaseEvent
    from llama_index.core.workflow import StartEvent, StopEvent, Workflow, step

    class CacheHit(BaseEvent):
        key: str

    dispatcher = get_dispatcher("tests.custom")

    class Cached(Workflow):
        @step
        async def lookup(self, ev: StartEvent) -> StopEvent:
            dispatcher.event(CacheHit(key="q-1"))
            return StopEvent(result="cached")

    import asyncio

    async def run() -> object:
        return await Cached().run()

    assert asyncio.run(run()) == "cached"
    (packet,) = packets()
    lookup = next(s for s in packet["steps"] if s["name"].endswith("Cached.lookup"))
    (event,) = lookup["events"]
    assert event["name"] == "CacheHit"
    assert event["data"]["key"] == "q-1"
