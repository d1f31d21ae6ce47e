"""Agents and workflows: every tool call is a tool step linked to the model turn that asked for it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.tools import FunctionTool
from llama_index.core.workflow import StartEvent, StopEvent, Workflow, step

pytestmark = pytest.mark.usefixtures("instrumentation")


def _step(packet: dict[str, Any], step_id: str | None) -> dict[str, Any]:
    return next(s for s in packet["steps"] if s["step_id"] == step_id)


def test_function_agent_tool_call_is_linked_to_its_model_turn(fakes, packets, steps_of) -> None:
    """FunctionAgent: the tool step has name, arguments, result, call id and requesting turn."""
    llm = fakes.function_llm(fakes.tool_then_answer())
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=fakes.multiply)], llm=llm)

    async def run() -> Any:
        return await agent.run(user_msg="What is 2*3?")

    result = asyncio.run(run())
    assert str(result) == "The answer is 6."
    (packet,) = packets()
    root = packet["steps"][0]
    assert root["kind"] == "agent"
    assert root["name"] == "FunctionAgent.run"
    assert packet["payload"] == {"input": "What is 2*3?", "output": "The answer is 6."}

    (tool,) = steps_of(packet, "tool")
    assert tool["name"] == "multiply"
    assert tool["input"] == {"a": 2, "b": 3}
    assert tool["output"] == "6"
    assert tool["status"] == "SUCCESS"
    assert tool["tool"]["name"] == "multiply"
    assert tool["tool"]["tool_call_id"] == "call-1"
    assert tool["parent_id"] == root["step_id"]

    models = steps_of(packet, "chat_model")
    assert len(models) == 2
    first, second = models
    assert tool["tool"]["requested_by_step_id"] == first["step_id"]
    assert first["llm"]["tool_calls"] == [
        {"id": "call-1", "name": "multiply", "arguments": {"a": 2, "b": 3}}
    ]
    assert first["llm"]["messages"] == [{"role": "user", "content": "What is 2*3?"}]
    assert first["llm"]["invocation_params"]["tools"] == ["multiply"]
    assert second["llm"]["tool_calls"] == []
    assert second["output"] == "The answer is 6."
    assert second["llm"]["messages"][-1]["role"] == "tool"
    assert second["llm"]["messages"][-1]["tool_call_id"] == "call-1"
    assert second["llm"]["messages"][-1]["content"] == "6"

    turns = [s for s in steps_of(packet, "agent") if s is not root]
    assert [t["name"] for t in turns] == ["Agent", "Agent"]
    assert first["parent_id"] == turns[0]["step_id"]
    assert second["parent_id"] == turns[1]["step_id"]
    assert turns[0]["output"]["tool_calls"] == [
        {"id": "call-1", "name": "multiply", "arguments": {"a": 2, "b": 3}}
    ]
    assert turns[1]["output"] == {"response": "The answer is 6.", "tool_calls": []}

    # no workflow plumbing, no _prepare_chat_with_tools: one step per model call
    names = [s["name"] for s in packet["steps"]]
    assert not any("setup_agent" in n or "_prepare_chat_with_tools" in n for n in names)
    assert packet["performance"]["llm_calls"] == 2
    assert packet["performance"]["tool_calls"] == 1


def test_react_agent_tool_call_is_linked_to_its_model_turn(fakes, packets, steps_of) -> None:
    """ReActAgent: the model writes text; the call id the agent makes links tool and turn."""
    calls = {"n": 0}

    def respond(messages: Sequence[ChatMessage], **_: Any) -> ChatMessage:
        calls["n"] += 1
        if calls["n"] == 1:
            return ChatMessage(
                role="assistant",
                content='Thought: I need to multiply.\nAction: multiply\nAction Input: {"a": 2, "b": 3}',
            )
        return ChatMessage(
            role="assistant",
            content="Thought: I can answer without using any more tools.\nAnswer: 6",
        )

    agent = ReActAgent(
        tools=[FunctionTool.from_defaults(fn=fakes.multiply)], llm=fakes.function_llm(respond)
    )

    async def run() -> Any:
        return await agent.run(user_msg="What is 2*3?")

    assert str(asyncio.run(run())) == "6"
    (packet,) = packets()
    (tool,) = steps_of(packet, "tool")
    first, second = steps_of(packet, "chat_model")
    assert tool["name"] == "multiply"
    assert tool["input"] == {"a": 2, "b": 3}
    assert tool["output"] == "6"
    call_id = tool["tool"]["tool_call_id"]
    assert call_id
    assert first["llm"]["tool_calls"] == [
        {"id": call_id, "name": "multiply", "arguments": {"a": 2, "b": 3}}
    ]
    assert tool["tool"]["requested_by_step_id"] == first["step_id"]
    assert second["llm"]["tool_calls"] == []
    # what the model answered, though the agent then edits that message in place
    assert second["output"] == "Thought: I can answer without using any more tools.\nAnswer: 6"
    assert packet["payload"]["output"] == "6"
    assert packet["performance"]["llm_calls"] == 2


def test_agent_workflow_of_several_agents(fakes, packets, steps_of) -> None:
    """AgentWorkflow: the handoff and the calculator's tool call, each linked to its agent's turn."""

    def router(messages: Sequence[ChatMessage], **_: Any) -> ChatMessage:
        if any(m.role == MessageRole.TOOL for m in messages):
            return ChatMessage(role="assistant", content="Handing off.")
        block = ToolCallBlock(
            tool_call_id="handoff-1",
            tool_name="handoff",
            tool_kwargs={"to_agent": "calculator", "reason": "arithmetic"},
        )
        return ChatMessage(role="assistant", blocks=[block])

    def calculator(messages: Sequence[ChatMessage], **_: Any) -> ChatMessage:
        if sum(1 for m in messages if m.role == MessageRole.TOOL) >= 2:
            return ChatMessage(role="assistant", content="6")
        block = ToolCallBlock(
            tool_call_id="mul-1", tool_name="multiply", tool_kwargs={"a": 2, "b": 3}
        )
        return ChatMessage(role="assistant", blocks=[block])

    workflow = AgentWorkflow(
        agents=[
            FunctionAgent(
                name="router",
                description="Routes questions.",
                llm=fakes.function_llm(router),
                can_handoff_to=["calculator"],
            ),
            FunctionAgent(
                name="calculator",
                description="Does arithmetic.",
                tools=[FunctionTool.from_defaults(fn=fakes.multiply)],
                llm=fakes.function_llm(calculator),
            ),
        ],
        root_agent="router",
    )

    async def run() -> Any:
        return await workflow.run(user_msg="2*3?")

    assert str(asyncio.run(run())) == "6"
    (packet,) = packets()
    root = packet["steps"][0]
    assert root["kind"] == "agent"
    assert root["name"] == "AgentWorkflow.run"
    turns = [s for s in steps_of(packet, "agent") if s is not root]
    assert [t["name"] for t in turns] == ["router", "calculator", "calculator"]
    assert [t["metadata"]["agent_name"] for t in turns] == ["router", "calculator", "calculator"]

    handoff, multiply = steps_of(packet, "tool")
    assert handoff["name"] == "handoff"
    assert handoff["input"] == {"to_agent": "calculator", "reason": "arithmetic"}
    assert handoff["tool"]["tool_call_id"] == "handoff-1"
    assert multiply["name"] == "multiply"
    assert multiply["output"] == "6"
    assert multiply["tool"]["tool_call_id"] == "mul-1"
    router_call = _step(packet, handoff["tool"]["requested_by_step_id"])
    calculator_call = _step(packet, multiply["tool"]["requested_by_step_id"])
    assert router_call["parent_id"] == turns[0]["step_id"]
    assert calculator_call["parent_id"] == turns[1]["step_id"]
    assert router_call["kind"] == calculator_call["kind"] == "chat_model"
    assert packet["performance"]["llm_calls"] == 3
    assert packet["performance"]["tool_calls"] == 2


def test_tool_error_inside_an_agent_is_a_failed_tool_step(fakes, packets, steps_of) -> None:
    """The agent hands a tool's error back to the model: the tool step fails, the request goes on."""
    llm = fakes.function_llm(fakes.tool_then_answer("boom", {"a": 1}, "call-9", "It failed."))
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(fn=fakes.boom)], llm=llm)

    async def run() -> Any:
        return await agent.run(user_msg="Try it.")

    assert str(asyncio.run(run())) == "It failed."
    (packet,) = packets()
    (tool,) = steps_of(packet, "tool")
    assert tool["status"] == "FAILURE"
    assert tool["error"]["type"] == "RuntimeError"
    assert tool["error"]["message"] == "tool broke"
    assert "tool broke" in tool["error"]["traceback"]
    assert tool["output"] == "tool broke"
    assert tool["tool"]["tool_call_id"] == "call-9"
    assert tool["tool"]["requested_by_step_id"] == steps_of(packet, "chat_model")[0]["step_id"]
    assert packet["status"] == "SUCCESS"
    assert packet["payload"]["output"] == "It failed."


class _Pipeline(Workflow):
    @step
    async def compute(self, ev: StartEvent) -> StopEvent:
        tool = FunctionTool.from_defaults(fn=_multiply)
        output = await tool.acall(a=ev.get("a"), b=3)
        return StopEvent(result=output.content)


def _multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def test_custom_workflow_steps_and_tools_are_steps(packets, steps_of) -> None:
    """A user's workflow: the run, each step, and a tool called inside a step."""

    async def run() -> Any:
        return await _Pipeline().run(a=2)

    assert asyncio.run(run()) == "6"
    (packet,) = packets()
    root, compute, tool = packet["steps"]
    assert root["kind"] == "chain"
    assert root["name"] == "_Pipeline.run"
    assert compute["name"] == "_Pipeline.compute"
    assert compute["parent_id"] == root["step_id"]
    assert compute["input"] == {"a": 2}
    assert tool["kind"] == "tool"
    assert tool["name"] == "_multiply"
    assert tool["parent_id"] == compute["step_id"]
    assert tool["input"] == {"a": 2, "b": 3}
    assert tool["output"] == "6"
    assert tool["tool"] == {"name": "_multiply", "tool_call_id": None, "requested_by_step_id": None}
    assert packet["payload"] == {"input": {"a": 2}, "output": "6"}


class _Broken(Workflow):
    @step
    async def compute(self, ev: StartEvent) -> StopEvent:
        tool = FunctionTool.from_defaults(fn=_explode)
        await tool.acall(a=1)
        return StopEvent(result="unreachable")


def _explode(a: int) -> int:
    """Always fails."""
    raise RuntimeError("tool broke")


def test_tool_error_that_escapes_fails_the_request_at_the_tool(packets) -> None:
    """A tool error that is not handled fails the packet, and the error names the tool step."""

    async def run() -> Any:
        return await _Broken().run()

    with pytest.raises(RuntimeError, match="tool broke"):
        asyncio.run(run())
    (packet,) = packets()
    tool = next(s for s in packet["steps"] if s["kind"] == "tool")
    assert packet["status"] == "FAILURE"
    assert packet["error"]["step_kind"] == "tool"
    assert packet["error"]["step_name"] == "_explode"
    assert packet["error"]["step_id"] == tool["step_id"]
    assert packet["error"]["type"] == "RuntimeError"
    assert packet["error_message"] == "tool broke"
    assert all(s["status"] == "FAILURE" for s in packet["steps"])
