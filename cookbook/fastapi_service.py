"""A RAG service on FastAPI: one packet per HTTP request, the chain's steps inside it.

Run: python cookbook/fastapi_service.py   (offline: starts uvicorn on a free loopback port,
sends a few requests with httpx, stops, prints the packets)

What it shows:

* ``AITelMiddleware`` (pure ASGI) opens a trace per request: the packet's
  ``request_id`` is the client's ``X-Request-ID`` (or a new one, returned in
  the response), with method, route template, path and status;
* ``aitel.instrument()`` traces the LangChain chain without ``callbacks=``:
  its runs become steps of the request, in sync endpoints (thread pool) and
  in streamed responses alike;
* a failing model call answered with 503 is a ``FAILURE`` packet, the
  model step carrying the provider's error;
* per-route metadata with a dependency, per-request metadata with
  ``current_request()``.
"""

import socket
import threading
import time
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from pydantic import BaseModel

import aitel
from aitel.asgi import AITelMiddleware, current_request, request_metadata
from aitel.instrument import instrument

# -- the RAG chain (offline stand-ins for a vector store and a model) ---------------------

KNOWLEDGE = [
    Document(
        id="kb-1",
        page_content="Refunds are paid within 30 days to the original payment method.",
        metadata={"source": "policies/refunds.md"},
    ),
    Document(
        id="kb-2",
        page_content="Replacements ship in 3 working days inside the EU.",
        metadata={"source": "policies/shipping.md"},
    ),
    Document(
        id="kb-3",
        page_content="Support is open Monday to Friday, 9:00 to 18:00 CET.",
        metadata={"source": "faq/support.md"},
    ),
]


class KeywordRetriever(BaseRetriever):
    """Scores documents by shared words (a stand-in for a vector store)."""

    k: int = 2

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        words = {w.strip("?.,!").lower() for w in query.split()}
        scored = []
        for doc in KNOWLEDGE:
            overlap = len(words & {w.strip(".,").lower() for w in doc.page_content.split()})
            score = round(overlap / max(len(words), 1), 3)
            scored.append(
                Document(doc.page_content, id=doc.id, metadata={**doc.metadata, "score": score})
            )
        return sorted(scored, key=lambda d: -d.metadata["score"])[: self.k]


class ExtractiveModel(BaseChatModel):
    """Answers with the first context line; 'outage' in a question fails like a provider."""

    model_name: str = "gpt-4o-mini-2024-07-18"

    @property
    def _llm_type(self) -> str:
        return "extractive-fake"

    def _answer(self, messages: list[BaseMessage]) -> str:
        prompt = str(messages[-1].content)
        if "outage" in prompt:
            raise ConnectionError("Error code: 503 - upstream overloaded")
        context = prompt.split("Context:\n", 1)[-1].splitlines()
        return context[0] if context else "I don't know."

    def _usage(self, messages: list[BaseMessage], text: str) -> dict[str, int]:
        prompt_tokens = sum(len(str(m.content).split()) for m in messages)
        completion = len(text.split())
        return {
            "input_tokens": prompt_tokens,
            "output_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        text = self._answer(messages)
        message = AIMessage(
            text,
            usage_metadata=self._usage(messages, text),
            response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages, stop=None, run_manager=None, **kwargs: Any):
        text = self._answer(messages)
        for i, word in enumerate(text.split(" ")):
            chunk = ChatGenerationChunk(message=AIMessageChunk(word if i == 0 else f" {word}"))
            if run_manager is not None:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                "",
                usage_metadata=self._usage(messages, text),
                response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
                chunk_position="last",
            )
        )


def format_docs(docs: list[Document]) -> str:
    return "\n".join(d.page_content for d in docs)


prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer from the context only."),
        ("human", "Question: {question}\nContext:\n{context}"),
    ]
)
rag_chain = (
    {"context": KeywordRetriever() | format_docs, "question": RunnablePassthrough()}
    | prompt
    | ExtractiveModel()
    | StrOutputParser()
).with_config(run_name="rag_chain")

# -- the service --------------------------------------------------------------------------

instrument(llama_index=False)  # every LangChain run is traced; this service has no LlamaIndex

app = FastAPI()
app.add_middleware(AITelMiddleware, app_version="2.3.0", exclude_paths=["/healthz"])


class Ask(BaseModel):
    question: str
    session_id: str | None = None


@app.post("/ask", dependencies=[Depends(request_metadata(feature="rag"))])
def ask(body: Ask) -> dict:
    request = current_request()
    if request is not None:
        request.set_metadata(session_id=body.session_id)
    try:
        return {"answer": rag_chain.invoke(body.question)}
    except ConnectionError as exc:
        raise HTTPException(503, "the model provider is unavailable") from exc


@app.post("/ask/stream", dependencies=[Depends(request_metadata(feature="rag-stream"))])
async def ask_stream(body: Ask) -> StreamingResponse:
    async def tokens():
        async for token in rag_chain.astream(body.question):
            yield token

    return StreamingResponse(tokens(), media_type="text/plain")


@app.get("/healthz")
def healthz() -> dict:
    return {"ok": True}


# -- run it on a free loopback port, send a few requests, stop ------------------------------


class Server:
    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]})

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:  # poll readiness, bounded
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            self.thread.join(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.socket.close()


with Server() as server, httpx.Client(base_url=server.url, timeout=30) as client:
    r = client.post(
        "/ask",
        json={"question": "How long do refunds take?", "session_id": "s-42"},
        headers={"X-Request-ID": "req-refunds-1"},
    )
    print(f"POST /ask          {r.status_code} {r.headers['x-request-id']}: {r.json()['answer']}")
    with client.stream("POST", "/ask/stream", json={"question": "When do replacements ship?"}) as r:
        text = "".join(r.iter_text())
    print(f"POST /ask/stream   {r.status_code} {r.headers['x-request-id']}: {text}")
    r = client.post("/ask", json={"question": "Is there an outage?"})
    print(f"POST /ask          {r.status_code} {r.headers['x-request-id']}: {r.json()}")
    print(f"GET  /healthz      {client.get('/healthz').status_code} (not traced)")

aitel.flush()
print()
for line in aitel.get_tracer().exporter.path.read_bytes().splitlines():
    packet = orjson.loads(line)
    meta = packet["pipeline_metadata"]
    http = meta["metadata"]
    print(
        f"{packet['request_id']:<38} {meta['function_name']:<16} "
        f"{http['http.response.status_code']} {packet['status']:<8} "
        f"{packet['performance']['latency_ms']:7.1f} ms  session={meta['session_id']}"
    )
    for step in packet["steps"][1:]:
        extra = ""
        if step["retrieval"]:
            extra = ", ".join(f"{d['id']}:{d['score']}" for d in step["retrieval"]["documents"])
        if step["error"]:
            extra = f"{step['error']['type']}: {step['error']['message']}"
        print(f"    {step['kind']:<10} {step['name']:<22} {step['status']:<8} {extra}")
    if packet["error"]:
        error = packet["error"]
        print(f"    error: {error['type']} {error['message']!r} at step {error['step_name']!r}")
