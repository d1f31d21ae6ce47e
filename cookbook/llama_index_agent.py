"""A LlamaIndex FunctionAgent with tools, traced: every tool call linked to its model turn.

Shows: ``AITelInstrumentation`` used explicitly; one packet per agent run;
each tool call as a ``tool`` step with its arguments, result and call id,
linked to the model turn that asked for it; a tool error recorded on its
step while the agent recovers.
Runs offline: MockFunctionCallingLLM plays a model that calls tools.
Packets go to ./aitel-telemetry (or $AITEL_DIR).
Run: python cookbook/llama_index_agent.py
"""

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
from llama_index.callbacks.aitel import AITelInstrumentation, instrument_tags
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool

import aitel


def get_order(order_id: str) -> dict[str, Any]:
    """Look up an order."""
    return {"order_id": order_id, "status": "shipped", "days_in_transit": 3}


def refund(order_id: str) -> str:
    """Refund an order."""
    raise PermissionError("refunds need a supervisor")


def scripted_model(messages: Sequence[ChatMessage], **_: Any) -> ChatMessage:
    """Turn 1 asks for both tools, turn 2 answers from their results."""
    if any(m.role == MessageRole.TOOL for m in messages):
        return ChatMessage(
            role="assistant",
            content="Order A-17 has shipped; a refund needs a supervisor.",
        )
    return ChatMessage(
        role="assistant",
        blocks=[
            ToolCallBlock(
                tool_call_id="call-1", tool_name="get_order", tool_kwargs={"order_id": "A-17"}
            ),
            ToolCallBlock(
                tool_call_id="call-2", tool_name="refund", tool_kwargs={"order_id": "A-17"}
            ),
        ],
    )


agent = FunctionAgent(
    name="support",
    tools=[FunctionTool.from_defaults(fn=get_order), FunctionTool.from_defaults(fn=refund)],
    llm=MockFunctionCallingLLM(response_generator=scripted_model, is_chat_model=True),
    system_prompt="You help with orders.",
)


async def main() -> None:
    with instrument_tags({"session_id": "ticket-981", "user_id": "u-7"}):
        print(await agent.run(user_msg="Where is order A-17, and can I get a refund?"))


with AITelInstrumentation(app_version="3.1.0", environment="cookbook") as instrumentation:
    asyncio.run(main())
instrumentation.flush()

exporter = aitel.get_tracer().exporter
packet = orjson.loads(exporter.path.read_bytes().splitlines()[-1])
steps = {s["step_id"]: s for s in packet["steps"]}
print(
    "request:",
    packet["request_id"],
    packet["status"],
    "session:",
    packet["pipeline_metadata"]["session_id"],
)
for step in packet["steps"]:
    if step["kind"] == "tool":
        asked_by = steps[step["tool"]["requested_by_step_id"]]["name"]
        print(
            f"  tool {step['name']}({step['input']}) -> {step['status']}:"
            f" {step['output']!r} [call {step['tool']['tool_call_id']}, asked by {asked_by}]"
        )
print(
    "performance:", {k: packet["performance"][k] for k in ("latency_ms", "llm_calls", "tool_calls")}
)
print("packets written to", exporter.path)
