"""A LangChain RAG chain (retriever -> prompt -> chat model -> parser), traced.

Shows: retrieved documents with ids, scores and sources; the constructed prompt;
token usage and cost; streaming with time to first token; per-call metadata.
Run: python cookbook/langchain_rag.py
"""

import orjson
from langchain_aitel import AITelHandler
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough

import aitel


class HandbookRetriever(BaseRetriever):
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(
                id="kb-1",
                page_content="Refunds take 5 business days.",
                metadata={"source": "handbook", "score": 0.91},
            ),
            Document(
                id="kb-7",
                page_content="Returns need a receipt.",
                metadata={"source": "faq", "score": 0.64},
            ),
        ]


reply = AIMessage(
    "Refunds take 5 business days (kb-1).",
    usage_metadata={"input_tokens": 52, "output_tokens": 9, "total_tokens": 61},
    response_metadata={"model_name": "claude-3-5-haiku-20241022", "finish_reason": "stop"},
)
model = GenericFakeChatModel(messages=iter([reply, reply]))
prompt = ChatPromptTemplate.from_messages(
    [("system", "Answer from the context:\n{context}"), ("human", "{question}")]
)
chain = (
    RunnablePassthrough.assign(
        context=(lambda x: x["question"])
        | HandbookRetriever()
        | (lambda docs: "\n".join(d.page_content for d in docs))
    )
    | prompt
    | model
    | StrOutputParser()
).with_config(run_name="refund_bot")

handler = AITelHandler(app_version="2.0.1", model_version="2024-10", environment="cookbook")
config = {"callbacks": [handler], "metadata": {"session_id": "s-1", "ab_variant": "B"}}
print(chain.invoke({"question": "How long do refunds take?"}, config))
print("".join(chain.stream({"question": "And when streaming?"}, config)))
aitel.flush()

exporter = aitel.get_tracer().exporter
invoked, streamed = (orjson.loads(line) for line in exporter.path.read_bytes().splitlines()[-2:])
retrieval = next(s["retrieval"] for s in invoked["steps"] if s["kind"] == "retriever")
print("documents:", [(d["id"], d["score"], d["source"]) for d in retrieval["documents"]])
perf = invoked["performance"]
print("invoke: tokens", perf["prompt_tokens"], perf["completion_tokens"], "cost", perf["cost_usd"])
# the fake model streams no usage (a real provider's last chunk carries it)
print("stream: time to first token (ms)", streamed["performance"]["time_to_first_token_ms"])
