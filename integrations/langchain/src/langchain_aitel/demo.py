"""An offline RAG service and support agent, traced with aitel.

Built from real LangChain pieces (a retriever, a prompt template, a chat
model with tool calling, ``@tool`` functions, LCEL) with a deterministic
scripted model, so it needs no network and no keys. Some requests fail on
purpose, with causes the analysis should find: variant B's model is rate
limited on long prompts, the ``legacy-kb`` index times out, and the order
service fails for one range of order ids.

Run it with ``aitel demo``.
"""

from __future__ import annotations

import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda, RunnablePassthrough
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool

import aitel

from .handler import AITelHandler

KNOWLEDGE_BASE = [
    (
        "kb-001",
        "handbook",
        "Refunds are issued within 5 business days after the returned item arrives.",
    ),
    ("kb-002", "handbook", "Premium support is available 24/7 by chat for enterprise customers."),
    ("kb-003", "handbook", "Orders ship from the Rotterdam warehouse within 48 hours."),
    ("kb-004", "wiki", "The API rate limit is 600 requests per minute per organisation."),
    ("kb-005", "wiki", "Single sign-on supports SAML 2.0 and OpenID Connect."),
    ("kb-006", "wiki", "Data is encrypted at rest with AES-256 and in transit with TLS 1.3."),
    ("kb-007", "legacy-kb", "Legacy plans were migrated to the Growth tier in 2023."),
    ("kb-008", "legacy-kb", "Invoices from before 2022 are available on request from billing."),
    ("kb-009", "faq", "You can change your billing address in Settings > Billing."),
    ("kb-010", "faq", "Two-factor authentication can be enforced for the whole organisation."),
]

RAG_QUESTIONS = [
    ("How long do refunds take?", "handbook"),
    ("When is premium support available?", "handbook"),
    ("Where do orders ship from?", "handbook"),
    ("What is the API rate limit?", "wiki"),
    ("Which single sign-on protocols are supported?", "wiki"),
    ("How is data encrypted?", "wiki"),
    ("What happened to legacy plans?", "legacy-kb"),
    ("Can I get invoices from 2021?", "legacy-kb"),
    ("How do I change my billing address?", "faq"),
    ("Can two-factor authentication be enforced?", "faq"),
]

AGENT_TASKS = [
    "What's the weather in Lisbon?",
    "What is 17 * 23 + 4?",
    "Where is my order 4521?",
    "Where is my order 9137?",
    "What's the weather in Oslo and what is 12 * 12?",
    "Where is my order 3380?",
]


class RateLimitError(Exception):
    """What a provider raises when a request is throttled."""


class VectorStoreTimeout(TimeoutError):
    pass


class OrderServiceError(RuntimeError):
    pass


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class DemoChatModel(BaseChatModel):
    """A deterministic chat model that answers from context and calls tools."""

    model_name: str = "gpt-4o-mini-2024-07-18"
    provider: str = "openai"
    rate_limit_long_prompts: bool = False
    long_prompt_chars: int = 900

    @property
    def _llm_type(self) -> str:
        return "demo-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, AIMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _reply(self, messages: list[BaseMessage], tools: Any) -> AIMessage:
        prompt_chars = sum(len(str(m.content)) for m in messages)
        if self.rate_limit_long_prompts and prompt_chars > self.long_prompt_chars:
            raise RateLimitError(
                f"Error code: 429 - rate limit exceeded for {self.model_name} "
                f"(prompt of {prompt_chars} chars); retry after 20s"
            )
        last = messages[-1]
        if tools and isinstance(last, HumanMessage):
            calls = _plan_tool_calls(str(last.content))
            if calls:
                return self._message("", messages, calls, "tool_calls")
        if isinstance(last, ToolMessage):
            results = [str(m.content) for m in messages if isinstance(m, ToolMessage)]
            return self._message(
                "Here is what I found: " + "; ".join(results), messages, [], "stop"
            )
        context = re.findall(r"\[(kb-\d+)\] ([^\n]+)", str(messages[0].content))
        if context:
            doc_id, text = context[0]
            answer = f"{text} (source: {doc_id})"
        else:
            answer = "I could not find that in the knowledge base."
        return self._message(answer, messages, [], "stop")

    def _message(
        self, text: str, messages: list[BaseMessage], calls: list[dict[str, Any]], finish: str
    ) -> AIMessage:
        prompt = sum(_tokens(str(m.content)) for m in messages)
        completion = _tokens(text) + 12 * len(calls)
        return AIMessage(
            content=text,
            tool_calls=calls,
            usage_metadata={
                "input_tokens": prompt,
                "output_tokens": completion,
                "total_tokens": prompt + completion,
            },
            response_metadata={"model_name": self.model_name, "finish_reason": finish},
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._reply(messages, kwargs.get("tools"))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._reply(messages, kwargs.get("tools"))
        words = str(message.content).split(" ")
        for index, word in enumerate(words):
            text = word if index == len(words) - 1 else word + " "
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
            if run_manager is not None:
                run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
                chunk_position="last",
            )
        )


def _plan_tool_calls(question: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    lowered = question.lower()
    weather = re.search(r"weather in (\w+)", question)
    if weather:
        calls.append({"name": "get_weather", "args": {"city": weather.group(1)}})
    math = re.search(r"(\d+ *[*+-/] *\d+(?: *[*+-/] *\d+)*)", question)
    if math and "order" not in lowered:
        calls.append({"name": "calculator", "args": {"expression": math.group(1)}})
    order = re.search(r"order (\d+)", question)
    if order:
        calls.append({"name": "lookup_order", "args": {"order_id": order.group(1)}})
    for index, call in enumerate(calls):
        call["id"] = f"call_{abs(hash((question, index))) % 10**8:08d}"
        call["type"] = "tool_call"
    return calls


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    forecasts = {"Lisbon": "sunny, 24°C", "Oslo": "light snow, -3°C"}
    return f"{city}: {forecasts.get(city, 'cloudy, 15°C')}"


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression with + - * /."""
    if not re.fullmatch(r"[\d\s+\-*/().]+", expression):
        raise ValueError(f"unsupported expression: {expression!r}")
    return str(eval(expression, {"__builtins__": {}}, {}))


@tool
def lookup_order(order_id: str) -> str:
    """Shipping status of an order."""
    if order_id.startswith("9"):
        raise OrderServiceError(f"order service timeout after 5s for order {order_id}")
    return f"order {order_id}: shipped, arriving in 2 days"


TOOLS: dict[str, BaseTool] = {t.name: t for t in (get_weather, calculator, lookup_order)}


class KnowledgeBaseRetriever(BaseRetriever):
    """Keyword retrieval over the demo knowledge base, one index per source."""

    source: str
    k: int = 2
    fail: Callable[[str], bool] | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.fail is not None and self.fail(query):
            raise VectorStoreTimeout(f"vector store timeout after 30s on index {self.source}")
        words = set(re.findall(r"\w+", query.lower()))
        scored = []
        for doc_id, source, text in KNOWLEDGE_BASE:
            if source != self.source:
                continue
            overlap = len(words & set(re.findall(r"\w+", text.lower())))
            scored.append((round(overlap / (len(words) or 1), 3), doc_id, source, text))
        scored.sort(reverse=True)
        return [
            Document(id=doc_id, page_content=text, metadata={"source": source, "score": score})
            for score, doc_id, source, text in scored[: self.k]
            if score > 0
        ]


PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer using only this context:\n{context}\n\nHistory:\n{history}"),
        ("human", "{question}"),
    ]
)


def _format_docs(docs: list[Document]) -> str:
    return "\n".join(f"[{d.id}] {d.page_content}" for d in docs)


def build_rag_chain(model: BaseChatModel, retriever: BaseRetriever) -> Runnable[Any, str]:
    """retriever -> prompt -> chat model -> parser."""
    return (
        RunnablePassthrough.assign(context=(lambda x: x["question"]) | retriever | _format_docs)
        | PROMPT
        | model
        | StrOutputParser()
    ).with_config(run_name="rag_answer")


def build_agent(model: BaseChatModel) -> Runnable[Any, str]:
    """A tool-calling loop: the model asks for tools until it can answer."""
    bound = model.bind_tools(list(TOOLS.values()))

    def support_agent(question: str, config: RunnableConfig) -> str:
        messages: list[BaseMessage] = [
            SystemMessage("You are a support agent. Use tools when they help."),
            HumanMessage(question),
        ]
        for _ in range(4):
            reply = bound.invoke(messages, config)
            messages.append(reply)
            if not reply.tool_calls:
                return str(reply.content)
            for call in reply.tool_calls:
                messages.append(TOOLS[call["name"]].invoke(call, config))
        return "I could not finish in time."

    return RunnableLambda(support_agent).with_config(run_name="support_agent")


def run_requests(count: int, seed: int, handler: AITelHandler) -> Counter[str]:
    """Run ``count`` requests (RAG and agent, some streamed); returns outcomes."""
    rng = random.Random(seed)
    models = {
        "A": DemoChatModel(model_name="gpt-4o-mini-2024-07-18", provider="openai"),
        "B": DemoChatModel(
            model_name="claude-3-5-haiku-20241022",
            provider="anthropic",
            rate_limit_long_prompts=True,
        ),
    }
    outcomes: Counter[str] = Counter()

    def flaky(query: str) -> bool:
        return rng.random() < 0.5

    retrievers = {
        source: KnowledgeBaseRetriever(source=source, fail=flaky if source == "legacy-kb" else None)
        for source in {s for _, s in RAG_QUESTIONS}
    }
    for number in range(count):
        user = f"user-{rng.randrange(12):02d}"
        variant = "A" if int(user[-2:]) % 2 == 0 else "B"
        config: RunnableConfig = {
            "callbacks": [handler],
            "metadata": {
                "ab_variant": variant,
                "session_id": f"session-{number // 3:03d}",
                "user_id": user,
            },
            "tags": ["demo"],
        }
        try:
            if number % 3 == 2:
                task = AGENT_TASKS[rng.randrange(len(AGENT_TASKS))]
                build_agent(models[variant]).invoke(task, config)
            else:
                question, source = RAG_QUESTIONS[rng.randrange(len(RAG_QUESTIONS))]
                history = (
                    ""
                    if rng.random() < 0.6
                    else "Earlier turns: " + "lorem ipsum " * rng.randrange(40, 90)
                )
                chain = build_rag_chain(models[variant], retrievers[source])
                inputs = {"question": question, "history": history}
                if number % 5 == 0:
                    "".join(chain.stream(inputs, config))
                else:
                    chain.invoke(inputs, config)
            outcomes["SUCCESS"] += 1
        except Exception as exc:
            outcomes[type(exc).__name__] += 1
    return outcomes


def run_demo(
    requests: int = 60, directory: str | None = None, seed: int = 7, analyze: bool = True
) -> int:
    """Run the demo, write packets as JSONL, print a summary and an analysis."""
    tracer = aitel.configure(
        exporter="jsonl", directory=directory, app_version="1.4.2", environment="demo"
    )
    handler = AITelHandler(model_version="2024-demo", preprocessing_version="chunker-v3")
    outcomes = run_requests(requests, seed, handler)
    tracer.flush(timeout=10)
    stats = tracer.stats()
    exporter = tracer.exporter
    path = getattr(exporter, "path", None)
    failed = sum(v for k, v in outcomes.items() if k != "SUCCESS")
    print(f"aitel demo: ran {requests} requests ({failed} failed on purpose)")
    print(f"  packets exported: {stats.exported}, dropped: {stats.dropped}")
    print(f"  written to: {path}")
    for name, count in sorted(outcomes.items(), key=lambda item: -item[1]):
        print(f"    {name:<20} {count}")
    if analyze and path is not None:
        _print_analysis(Path(path))
    return 0 if stats.exported == requests else 1


def _print_analysis(path: Path) -> None:
    """The root-cause analysis of the packets just written (``aitel analyze PATH``)."""
    try:
        import aitel.analysis  # noqa: F401 - probe for the analysis extra
    except ImportError:
        print("\n(install aitel[analysis] for the root-cause analysis: aitel analyze DIR)")
        return
    from aitel.cli import main as aitel_cli

    print(f"\n$ aitel analyze {path}\n")
    sys.stdout.flush()
    aitel_cli(["analyze", str(path)])
