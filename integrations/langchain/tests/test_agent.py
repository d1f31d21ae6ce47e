"""A tool-calling agent loop: every tool call is a step linked to the model turn that asked for it."""

from __future__ import annotations

import pytest
from fakes import ToolCallingFakeModel, answer
from langchain_aitel import AITelHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import tool

from aitel.testing import PacketCapture


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def lookup(city: str) -> str:
    """Look up a city."""
    if city == "Atlantis":
        raise LookupError("no such city: Atlantis")
    return f"{city} has 500k people"


TOOLS = {"multiply": multiply, "lookup": lookup}


def agent(model):
    bound = model.bind_tools(list(TOOLS.values()))

    def loop(question: str, config: RunnableConfig) -> str:
        messages = [HumanMessage(question)]
        for _ in range(3):
            reply = bound.invoke(messages, config)
            messages.append(reply)
            if not reply.tool_calls:
                return reply.content
            for call in reply.tool_calls:
                messages.append(TOOLS[call["name"]].invoke(call, config))
        return "gave up"

    return RunnableLambda(loop).with_config(run_name="agent_loop")


def tool_turn(*calls, prompt=40):
    return AIMessage(
        content="",
        tool_calls=[{"name": n, "args": a, "id": i, "type": "tool_call"} for n, a, i in calls],
        usage_metadata={"input_tokens": prompt, "output_tokens": 10, "total_tokens": prompt + 10},
        response_metadata={"model_name": "gpt-4o-2024-08-06", "finish_reason": "tool_calls"},
    )


def test_tool_calls_linked_to_requesting_turn(aitel_packets: PacketCapture) -> None:
    """Two tools requested in one turn: arguments, results, ids and the requesting LLM step."""
    model = ToolCallingFakeModel(
        messages=iter(
            [
                tool_turn(
                    ("multiply", {"a": 6, "b": 7}, "call_1"), ("lookup", {"city": "Lyon"}, "call_2")
                ),
                answer(
                    "6*7=42 and Lyon has 500k people",
                    prompt=80,
                    completion=12,
                    model="gpt-4o-2024-08-06",
                ),
            ]
        )
    )
    out = agent(model).invoke("compute and look up", config={"callbacks": [AITelHandler()]})
    assert out.startswith("6*7=42")
    packet = aitel_packets.one()
    llm_steps = aitel_packets.steps(packet, "chat_model")
    tools = aitel_packets.steps(packet, "tool")
    assert len(llm_steps) == 2 and len(tools) == 2
    first_turn = llm_steps[0]
    assert first_turn["llm"]["tool_calls"] == [
        {"id": "call_1", "name": "multiply", "arguments": {"a": 6, "b": 7}},
        {"id": "call_2", "name": "lookup", "arguments": {"city": "Lyon"}},
    ]
    assert first_turn["llm"]["finish_reason"] == "tool_calls"
    by_name = {t["name"]: t for t in tools}
    assert by_name["multiply"]["input"] == {"a": 6, "b": 7}
    assert by_name["multiply"]["output"] == "42"
    assert by_name["multiply"]["tool"] == {
        "name": "multiply",
        "tool_call_id": "call_1",
        "requested_by_step_id": first_turn["step_id"],
    }
    assert by_name["lookup"]["output"] == "Lyon has 500k people"
    assert by_name["lookup"]["tool"]["requested_by_step_id"] == first_turn["step_id"]
    # the second turn saw the tool results
    second = llm_steps[1]["llm"]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "tool", "tool"]
    assert second[2] == {
        "role": "tool",
        "content": "42",
        "name": "multiply",
        "tool_call_id": "call_1",
    }
    perf = packet["performance"]
    assert perf["llm_calls"] == 2 and perf["tool_calls"] == 2
    assert perf["prompt_tokens"] == 120 and perf["completion_tokens"] == 22
    assert packet["payload"] == {"input": "compute and look up", "output": out}


def test_failing_tool_fails_the_request_and_names_the_step(aitel_packets: PacketCapture) -> None:
    """An exception in a tool gives a FAILURE packet whose error points at the tool step."""
    model = ToolCallingFakeModel(
        messages=iter([tool_turn(("lookup", {"city": "Atlantis"}, "call_9"))])
    )
    with pytest.raises(LookupError):
        agent(model).invoke("where is Atlantis", config={"callbacks": [AITelHandler()]})
    packet = aitel_packets.one()
    tool_step = aitel_packets.steps(packet, "tool")[0]
    assert packet["status"] == "FAILURE"
    assert packet["error_message"] == "no such city: Atlantis"
    assert packet["error"]["type"] == "LookupError"
    assert packet["error"]["step_id"] == tool_step["step_id"]
    assert packet["error"]["step_kind"] == "tool" and packet["error"]["step_name"] == "lookup"
    assert "raise LookupError" in packet["error"]["traceback"]
    assert tool_step["status"] == "FAILURE" and tool_step["error"]["type"] == "LookupError"
    assert tool_step["tool"]["tool_call_id"] == "call_9"
    assert tool_step["input"] == {"city": "Atlantis"}


def test_agent_executor_style_actions_are_events() -> None:
    """on_agent_action / on_agent_finish mark the run as an agent and keep the actions."""
    import uuid

    from langchain_core.agents import AgentAction, AgentFinish

    from aitel import InMemoryExporter, Settings, Tracer

    memory = InMemoryExporter()
    tracer = Tracer(memory, settings=Settings(redaction=()))
    handler = AITelHandler(tracer=tracer)
    run = uuid.uuid4()
    handler.on_chain_start(None, {"input": "q"}, run_id=run, name="MyAgent")
    handler.on_agent_action(AgentAction("search", {"q": "x"}, "thinking"), run_id=run)
    handler.on_agent_finish(AgentFinish({"output": "done"}, "final"), run_id=run)
    handler.on_chain_end({"output": "done"}, run_id=run)
    tracer.flush()
    (packet,) = memory.packets
    root = packet["steps"][0]
    assert root["kind"] == "agent"
    assert [e["name"] for e in root["events"]] == ["agent_action", "agent_finish"]
    assert root["events"][0]["data"] == {
        "tool": "search",
        "tool_input": {"q": "x"},
        "log": "thinking",
    }
    tracer.shutdown()


def test_tool_message_content_and_artifact() -> None:
    """A tool returning content and artifact keeps both."""
    from aitel import InMemoryExporter, Settings, Tracer

    @tool(response_format="content_and_artifact")
    def search(q: str):
        """Search."""
        return "2 hits", {"ids": [1, 2]}

    memory = InMemoryExporter()
    tracer = Tracer(memory, settings=Settings(redaction=()))
    result = search.invoke(
        {"name": "search", "args": {"q": "x"}, "id": "c1", "type": "tool_call"},
        config={"callbacks": [AITelHandler(tracer=tracer)]},
    )
    assert isinstance(result, ToolMessage)
    tracer.flush()
    (packet,) = memory.packets
    assert packet["steps"][0]["output"] == {"content": "2 hits", "artifact": {"ids": [1, 2]}}
    assert packet["steps"][0]["tool"]["tool_call_id"] == "c1"
    tracer.shutdown()
