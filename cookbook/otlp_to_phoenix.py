"""LangChain requests as OpenTelemetry traces in Arize Phoenix: a RAG chain and a tool agent.

1. Start Phoenix (its own environment is best: it has many dependencies):
       pip install arize-phoenix && phoenix serve      # UI + OTLP/HTTP on http://localhost:6006
2. Run:  python cookbook/otlp_to_phoenix.py
3. Open http://localhost:6006 and the project "aitel-cookbook".

Settings: PHOENIX_COLLECTOR_ENDPOINT (default http://localhost:6006) and
PHOENIX_PROJECT_NAME (default aitel-cookbook). Offline it still runs: the
packets wait in ./aitel-spool and are sent by a later run once Phoenix is up.
"""

import os

from langchain_aitel import AITelHandler
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableLambda, RunnablePassthrough
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool

import aitel
from aitel.exporters.otlp import OtlpExporter
from aitel.exporters.retry import RetryPolicy

BASE_URL = os.environ.get("PHOENIX_COLLECTOR_ENDPOINT", "http://localhost:6006").rstrip("/")
PROJECT = os.environ.get("PHOENIX_PROJECT_NAME", "aitel-cookbook")

exporter = OtlpExporter(
    f"{BASE_URL}/v1/traces",
    project_name=PROJECT,  # -> resource attribute openinference.project.name
    service_name="aitel-cookbook",
    retry=RetryPolicy(max_elapsed_s=3.0),  # give up quickly; the spool keeps the packets
)
tracer = aitel.Tracer(exporter, settings=aitel.Settings(redaction=(), spool_dir="aitel-spool"))
handler = AITelHandler(tracer=tracer, session_id="cookbook-session", user_id="cookbook-user")
config: RunnableConfig = {"callbacks": [handler]}
usage = {"input_tokens": 48, "output_tokens": 6, "total_tokens": 54}


# -- a RAG chain ------------------------------------------------------------------------------
class Wiki(BaseRetriever):
    def _get_relevant_documents(self, query, *, run_manager=None):
        return [
            Document(
                id="paris",
                page_content="Paris is the capital of France.",
                metadata={"score": 0.93, "source": "wiki/paris"},
            ),
            Document(
                id="europe", page_content="France is in Western Europe.", metadata={"score": 0.41}
            ),
        ]


answer_model = GenericFakeChatModel(
    messages=iter(
        [AIMessage("Paris.", usage_metadata=usage, response_metadata={"model_name": "gpt-4o-mini"})]
    )
)
prompt = ChatPromptTemplate.from_messages(
    [("system", "Context: {context}"), ("human", "{question}")]
)
rag = (
    {
        "context": Wiki() | (lambda docs: "\n".join(d.page_content for d in docs)),
        "question": RunnablePassthrough(),
    }
    | prompt
    | answer_model
    | StrOutputParser()
).with_config(run_name="rag_chain")
print("rag:", rag.invoke("What is the capital of France?", config))


# -- a tool-calling agent loop ----------------------------------------------------------------
@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"{city}: sunny, 24C"


class ToolModel(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


agent_model = ToolModel(
    messages=iter(
        [
            AIMessage(
                "",
                tool_calls=[{"name": "get_weather", "args": {"city": "Lisbon"}, "id": "call_1"}],
                usage_metadata=usage,
                response_metadata={"model_name": "gpt-4o"},
            ),
            AIMessage(
                "It is sunny in Lisbon.",
                usage_metadata=usage,
                response_metadata={"model_name": "gpt-4o"},
            ),
        ]
    )
)


def agent(question: str, config: RunnableConfig) -> str:
    bound = agent_model.bind_tools([get_weather])
    messages = [HumanMessage(question)]
    while True:
        reply = bound.invoke(messages, config)
        messages.append(reply)
        if not reply.tool_calls:
            return str(reply.content)
        messages.extend(get_weather.invoke(call, config) for call in reply.tool_calls)


weather_agent = RunnableLambda(agent).with_config(run_name="weather_agent")
print("agent:", weather_agent.invoke("Weather in Lisbon?", config))

# -- deliver, then say what happened ------------------------------------------------------------
tracer.flush(timeout=10.0)
stats, sent = tracer.stats(), exporter.stats()
if sent.packets_sent:
    print(f"exported {sent.packets_sent} traces ({sent.spans_sent} spans) to {exporter.endpoint}")
    print(f"open {BASE_URL} -> project {PROJECT!r}")
if stats.spool_pending:
    print(
        f"Phoenix not reachable at {exporter.endpoint} ({sent.last_error}): "
        f"{stats.spool_pending} packets spooled to ./aitel-spool, sent by a later run"
    )
if stats.dropped:
    print(f"{stats.dropped} packets dropped: {stats.as_dict()}")
tracer.shutdown(timeout=5.0)
