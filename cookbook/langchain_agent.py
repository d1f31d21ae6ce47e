"""A tool-calling agent loop: each tool call is a step linked to the model turn that asked.

Run: python cookbook/langchain_agent.py
"""

import orjson
from langchain_aitel import AITelHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool

import aitel


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"{city}: sunny, 24°C"


class ToolModel(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


usage = {"input_tokens": 30, "output_tokens": 8, "total_tokens": 38}
model = ToolModel(
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
    bound = model.bind_tools([get_weather])
    messages = [HumanMessage(question)]
    while True:
        reply = bound.invoke(messages, config)
        messages.append(reply)
        if not reply.tool_calls:
            return str(reply.content)
        messages.extend(get_weather.invoke(call, config) for call in reply.tool_calls)


print(
    RunnableLambda(agent)
    .with_config(run_name="weather_agent")
    .invoke("Weather in Lisbon?", {"callbacks": [AITelHandler()]})
)
aitel.flush()
packet = orjson.loads(aitel.get_tracer().exporter.path.read_bytes().splitlines()[-1])
for step in packet["steps"]:
    extra = step["tool"] or (step["llm"] or {}).get("tool_calls") or ""
    print(f"{step['kind']:<11} {step['name']:<20} {step['duration_ms']:>7.2f} ms  {extra}")
