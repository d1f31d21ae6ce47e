"""A LlamaIndex query engine over a small vector index, traced with one line.

Shows: ``set_global_handler("aitel")``; the retrieved nodes with ids, scores
and sources; the templated prompt; one model call per query with usage and
cost; a streamed query whose packet ends when the stream is drained (with
time to first token); request-level tags with ``instrument_tags``.
Runs offline: MockEmbedding and a small stand-in model that reports usage
the way a provider does. Packets go to ./aitel-telemetry (or $AITEL_DIR).
Run: python cookbook/llama_index_rag.py
"""

from typing import Any

import orjson
from llama_index.callbacks.aitel import instrument_tags
from llama_index.core import Document, VectorStoreIndex, set_global_handler
from llama_index.core.base.llms.types import (
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback

import aitel


class HandbookModel(CustomLLM):
    """Answers from a script and reports usage like OpenAI's API would."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="gpt-4o-mini")

    def _raw(self) -> dict[str, Any]:
        usage = {"prompt_tokens": 180, "completion_tokens": 12, "total_tokens": 192}
        return {"model": "gpt-4o-mini", "usage": usage, "choices": [{"finish_reason": "stop"}]}

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="Refunds take 5 business days.", raw=self._raw())

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            text = ""
            words = ["Refunds ", "take ", "5 ", "business ", "days."]
            for i, word in enumerate(words):
                text += word
                raw = self._raw() if i == len(words) - 1 else None
                yield CompletionResponse(text=text, delta=word, raw=raw)

        return gen()


documents = [
    Document(text="Refunds take 5 business days.", metadata={"source": "handbook.md"}),
    Document(text="Returns need a receipt.", metadata={"source": "faq.md"}),
    Document(text="Support is open 9 to 5.", metadata={"source": "contact.md"}),
]
index = VectorStoreIndex.from_documents(documents, embed_model=MockEmbedding(embed_dim=16))

# One line: every query, chat, agent or workflow run becomes one packet.
set_global_handler("aitel", app_version="2.0.1", environment="cookbook")

engine = index.as_query_engine(llm=HandbookModel(), similarity_top_k=2)
with instrument_tags({"session_id": "s-1", "user_id": "u-42", "ab_variant": "B"}):
    print(engine.query("How long do refunds take?"))

streaming = index.as_query_engine(llm=HandbookModel(), similarity_top_k=2, streaming=True)
response = streaming.query("And when streaming?")
print("".join(response.response_gen))  # the packet is complete once this is drained
aitel.flush()

exporter = aitel.get_tracer().exporter
lines = exporter.path.read_bytes().splitlines()
for line in lines[-2:]:
    packet = orjson.loads(line)
    retrieval = next(s["retrieval"] for s in packet["steps"] if s["kind"] == "retriever")
    model = next(s for s in packet["steps"] if s["kind"] == "llm")
    print("request:", packet["request_id"], packet["status"])
    print("  steps:", [f"{s['kind']}:{s['name']}" for s in packet["steps"]])
    print("  documents:", [(d["source"], round(d["score"], 3)) for d in retrieval["documents"]])
    print("  model:", model["llm"]["model_name"], "streamed:", model["llm"]["streamed"])
    perf = packet["performance"]
    print(
        f"  latency {perf['latency_ms']} ms, first token {perf['time_to_first_token_ms']} ms,"
        f" tokens {perf['total_tokens']}, cost ${perf['cost_usd']}"
    )
print("packets written to", exporter.path)
