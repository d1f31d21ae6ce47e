"""Real framework workloads with fake models: no network, deterministic answers.

Each workload builds its chain/engine once (with no tracing attached) and
returns ``run(callbacks)``, one request. LangChain workloads take the
handlers as ``config={"callbacks": ...}`` (None: no callbacks at all);
LlamaIndex workloads ignore the argument (its tracing is attached to the
root dispatcher, see ``configs.py``).

Workloads whose framework is not installed are reported as ``n/a``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Run = Callable[[Any], Any]

QUESTION = "How long do refunds take for orders shipped to France?"
ANSWER = (
    "Refunds are issued within 14 days of receiving the returned item; "
    "orders shipped to France follow the EU policy."
)
DOC_TEXTS = [
    "Refunds are issued within 14 days of receiving the returned item.",
    "Orders shipped within the EU follow the EU consumer protection policy.",
    "France is in the EU; customs duties do not apply to orders from Germany.",
    "Gift cards cannot be refunded, only replaced.",
    "Returns must be requested within 30 days of delivery.",
    "Shipping to France takes 2 to 4 business days.",
    "Damaged items are replaced free of charge.",
    "Refunds go back to the original payment method.",
]


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    framework: str  # "langchain" or "llama_index"
    build: Callable[[], Run]
    weight: float = 1.0  # share of --invocations per block (slow workloads run fewer)

    def missing(self) -> str | None:
        """None when this workload can run here, else why not."""
        return framework_missing(self.framework)


def framework_missing(framework: str) -> str | None:
    needed = {
        "langchain": ["langchain_core"],
        "llama_index": ["llama_index.core"],
    }[framework]
    for module in needed:
        try:
            if importlib.util.find_spec(module) is None:
                return f"{module} not installed"
        except ModuleNotFoundError:
            return f"{module} not installed"
    return None


def _config(callbacks: Any) -> Any:
    return {"callbacks": callbacks} if callbacks else None


# -- LangChain ------------------------------------------------------------------


def _lc_answer(text: str = ANSWER, prompt: int = 42, completion: int = 24) -> Any:
    from langchain_core.messages import AIMessage

    return AIMessage(
        content=text,
        usage_metadata={
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
        },
        response_metadata={"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"},
    )


def _lc_model(message: Any) -> Any:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    return GenericFakeChatModel(messages=itertools.repeat(message))


def _lc_prompt() -> Any:
    from langchain_core.prompts import ChatPromptTemplate

    return ChatPromptTemplate.from_messages(
        [
            ("system", "You answer customer questions. Use the context.\n\nContext:\n{context}"),
            ("human", "{question}"),
        ]
    )


def build_lcel() -> Run:
    """``prompt | fake chat model | parser``: 4 runs."""
    from langchain_core.output_parsers import StrOutputParser

    chain = _lc_prompt() | _lc_model(_lc_answer()) | StrOutputParser()
    inputs = {"question": QUESTION, "context": DOC_TEXTS[0]}

    def run(callbacks: Any) -> Any:
        return chain.invoke(inputs, config=_config(callbacks))

    return run


def _lc_retriever() -> Any:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    docs = [
        Document(
            id=f"doc-{i}",
            page_content=text,
            metadata={"source": f"kb/policy-{i}.md", "score": round(0.95 - i * 0.1, 2)},
        )
        for i, text in enumerate(DOC_TEXTS[:3])
    ]

    class StaticRetriever(BaseRetriever):
        docs: list[Document]

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun
        ) -> list[Document]:
            return list(self.docs)

    return StaticRetriever(docs=docs)


def _lc_tools() -> dict[str, Any]:
    from langchain_core.tools import tool

    @tool
    def shipping_days(country: str) -> str:
        """Business days to ship an order to a country."""
        return f"{country}: 2 to 4 business days"

    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    return {"shipping_days": shipping_days, "multiply": multiply}


def build_rag() -> Run:
    """lambda -> retriever -> tool -> (prompt | model | parser): 7 runs."""
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.runnables import RunnableConfig, RunnableLambda

    retriever = _lc_retriever()
    shipping = _lc_tools()["shipping_days"]
    answer_chain = _lc_prompt() | _lc_model(_lc_answer()) | StrOutputParser()

    def rag(question: str, config: RunnableConfig) -> str:
        docs = retriever.invoke(question, config)
        days = shipping.invoke({"country": "France"}, config)
        context = "\n".join(d.page_content for d in docs) + "\n" + str(days)
        return str(answer_chain.invoke({"question": question, "context": context}, config))

    chain = RunnableLambda(rag).with_config(run_name="rag")

    def run(callbacks: Any) -> Any:
        return chain.invoke(QUESTION, config=_config(callbacks))

    return run


def build_agent() -> Run:
    """A tool-calling loop: model asks for two tools, then answers: 5 runs."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
    from langchain_core.utils.function_calling import convert_to_openai_tool

    tools = _lc_tools()

    class ToolCallingFakeModel(GenericFakeChatModel):
        """Asks for tools until it has their results, then answers (LangChain's fakes
        refuse ``bind_tools``)."""

        def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:
            return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

        def _generate(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: Any = None,
            **kwargs: Any,
        ) -> ChatResult:
            if messages and isinstance(messages[-1], ToolMessage):
                message = _lc_answer("6 x 7 = 42; shipping to France takes 2 to 4 days.", 120)
            else:
                message = AIMessage(
                    content="",
                    tool_calls=[
                        {"name": "multiply", "args": {"a": 6, "b": 7}, "id": "call_1"},
                        {"name": "shipping_days", "args": {"country": "France"}, "id": "call_2"},
                    ],
                    usage_metadata={"input_tokens": 80, "output_tokens": 30, "total_tokens": 110},
                    response_metadata={
                        "model_name": "gpt-4o-2024-08-06",
                        "finish_reason": "tool_calls",
                    },
                )
            return ChatResult(generations=[ChatGeneration(message=message)])

    model = ToolCallingFakeModel(messages=iter(())).bind_tools(list(tools.values()))

    def loop(question: str, config: RunnableConfig) -> Any:
        messages: list[BaseMessage] = [HumanMessage(question)]
        for _ in range(3):
            reply = model.invoke(messages, config)
            messages.append(reply)
            if not getattr(reply, "tool_calls", None):
                return reply.content
            for call in reply.tool_calls:
                messages.append(tools[call["name"]].invoke(call, config))
        return "gave up"

    chain = RunnableLambda(loop).with_config(run_name="agent_loop")

    def run(callbacks: Any) -> Any:
        return chain.invoke(
            "What is 6 x 7, and how long does shipping to France take?", config=_config(callbacks)
        )

    return run


def build_stream() -> Run:
    """``prompt | streaming fake model | parser``, consumed with ``.stream()``: 4 runs."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessageChunk, BaseMessage
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.outputs import ChatGenerationChunk

    class StreamingUsageModel(GenericFakeChatModel):
        """Streams word by word, then a usage chunk (like OpenAI's include_usage)."""

        def _stream(
            self,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: Any = None,
            **kwargs: Any,
        ) -> Any:
            yield from super()._stream(messages, stop, run_manager, **kwargs)
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    usage_metadata={"input_tokens": 42, "output_tokens": 24, "total_tokens": 66},
                    response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"},
                )
            )

    from langchain_core.messages import AIMessage

    model = StreamingUsageModel(messages=itertools.repeat(AIMessage(content=ANSWER)))
    chain = _lc_prompt() | model | StrOutputParser()
    inputs = {"question": QUESTION, "context": DOC_TEXTS[0]}

    def run(callbacks: Any) -> Any:
        return "".join(chain.stream(inputs, config=_config(callbacks)))

    return run


# -- LlamaIndex -----------------------------------------------------------------


def _li_index() -> Any:
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding

    docs = [
        Document(text=text, id_=f"doc-{i}", metadata={"source": f"kb/policy-{i}.md"})
        for i, text in enumerate(DOC_TEXTS)
    ]
    return VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))


def build_li_query() -> Run:
    """A query engine over a small VectorStoreIndex (MockLLM + MockEmbedding)."""
    from llama_index.core.llms.mock import MockLLM

    engine = _li_index().as_query_engine(llm=MockLLM(max_tokens=16), similarity_top_k=2)

    def run(callbacks: Any) -> Any:
        return str(engine.query(QUESTION))

    return run


def build_li_agent() -> Run:
    """A FunctionAgent: one tool call, then the answer (MockFunctionCallingLLM)."""
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
    from llama_index.core.llms.mock import MockFunctionCallingLLM
    from llama_index.core.tools import FunctionTool

    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        if any(m.role == MessageRole.TOOL for m in messages):
            return ChatMessage(role=MessageRole.ASSISTANT, content="6 x 7 = 42")
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            blocks=[
                ToolCallBlock(
                    tool_call_id="call_1", tool_name="multiply", tool_kwargs={"a": 6, "b": 7}
                )
            ],
        )

    llm = MockFunctionCallingLLM(response_generator=respond, is_chat_model=True)
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=multiply)], llm=llm)
    loop = asyncio.new_event_loop()

    async def once() -> Any:
        return await agent.run(user_msg="What is 6 x 7?")

    def run(callbacks: Any) -> Any:
        return str(loop.run_until_complete(once()))

    return run


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload("lcel", "LCEL prompt | model | parser", "langchain", build_lcel),
        Workload("rag", "RAG lambda > retriever > tool > chain", "langchain", build_rag),
        Workload("agent", "tool-calling agent loop", "langchain", build_agent),
        Workload("stream", "streaming LCEL (.stream)", "langchain", build_stream),
        Workload("li-query", "LlamaIndex query engine", "llama_index", build_li_query),
        Workload("li-agent", "LlamaIndex FunctionAgent", "llama_index", build_li_agent, 0.2),
    ]
}


def units_per_request(workload: Workload, run: Run) -> int:
    """LangChain runs (LangChain workloads) or LlamaIndex spans in one request.

    Peers export one span or run per unit, so this is what a peer should
    deliver per request.
    """
    if workload.framework == "langchain":
        from langchain_core.callbacks import BaseCallbackHandler

        class RunCounter(BaseCallbackHandler):
            run_inline = True

            def __init__(self) -> None:
                self.runs = 0

            def _count(self, *args: Any, **kwargs: Any) -> None:
                self.runs += 1

            on_chain_start = on_chat_model_start = on_llm_start = _count
            on_tool_start = on_retriever_start = _count

        counter = RunCounter()
        run([counter])
        return counter.runs

    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.span import BaseSpan
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

    class SpanCounter(BaseSpanHandler[BaseSpan]):
        spans: int = 0

        def span_enter(self, *args: Any, **kwargs: Any) -> None:
            self.spans += 1

        def new_span(self, *args: Any, **kwargs: Any) -> None:
            return None

        def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
            return None

        def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
            return None

    dispatcher = get_dispatcher()
    span_counter = SpanCounter()
    dispatcher.add_span_handler(span_counter)
    try:
        run(None)
    finally:
        dispatcher.span_handlers = [h for h in dispatcher.span_handlers if h is not span_counter]
    return span_counter.spans
