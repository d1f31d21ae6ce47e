"""LangGraph: a graph with parallel branches, a subgraph and a tool-calling agent, as one packet.

Run: python cookbook/langgraph_agent.py   (offline: scripted models, real tools)

1. ``desk``: START -> (policy[fetch -> summarise] | agent | triage) -> reply -> END,
   where ``agent`` is ``langchain.agents.create_agent`` driving two ``@tool``s.
   Streamed with ``stream_mode=["updates", "messages"]``: one packet, every
   model call under its node, time to first token recorded.
2. ``refunds``: a node that asks a human with ``interrupt()``; paused and
   resumed are two successful packets of the same session (the thread id).
"""

import json
import operator
from typing import Annotated, Any, TypedDict

import orjson
from langchain.agents import create_agent
from langchain_aitel import AITelHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

import aitel

USAGE = {"input_tokens": 42, "output_tokens": 9, "total_tokens": 51}
META = {"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"}


class ScriptedModel(GenericFakeChatModel):
    """Replays scripted replies; streams text, tool calls and usage like a real provider."""

    def bind_tools(self, tools, **kwargs):
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        message = next(self.messages)
        words = str(message.content).split(" ") if message.content else []
        chunks = [AIMessageChunk(content=w if i == 0 else f" {w}") for i, w in enumerate(words)]
        calls = [
            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
            for i, c in enumerate(message.tool_calls)
        ]
        chunks.append(
            AIMessageChunk(
                content="",
                tool_call_chunks=calls,
                usage_metadata=message.usage_metadata,
                response_metadata=message.response_metadata,
                chunk_position="last",
            )
        )
        for chunk in chunks:
            generation = ChatGenerationChunk(message=chunk)
            if run_manager is not None:
                run_manager.on_llm_new_token(str(chunk.content), chunk=generation)
            yield generation


def reply(text: str = "", **tool_calls: dict[str, Any]) -> AIMessage:
    calls = [{"name": n, "args": a, "id": f"call_{n}"} for n, a in tool_calls.items()]
    finish = "tool_calls" if calls else "stop"
    return AIMessage(
        content=text,
        tool_calls=calls,
        usage_metadata=USAGE,
        response_metadata={**META, "finish_reason": finish},
    )


@tool
def lookup_order(order_id: str) -> dict:
    """Status and amount of an order."""
    return {"order_id": order_id, "status": "delivered", "amount_eur": 30}


@tool
def shipping_eta(country: str) -> str:
    """Shipping time of a replacement to a country."""
    return f"3 working days to {country}"


class Desk(TypedDict):
    question: str
    notes: Annotated[list[str], operator.add]
    answer: str


def build_desk():
    agent = create_agent(
        ScriptedModel(
            messages=iter(
                [
                    reply(lookup_order={"order_id": "A-17"}, shipping_eta={"country": "PT"}),
                    reply("Order A-17 was delivered; a replacement takes 3 working days."),
                ]
            )
        ),
        [lookup_order, shipping_eta],
        system_prompt="You are a support agent. Use the tools.",
        name="order_agent",
    )
    summariser = ScriptedModel(
        messages=iter([reply("Refunds: 30 days, original payment.")])
    ).with_config(run_name="summariser")
    triage_model = ScriptedModel(messages=iter([reply("category: refund")])).with_config(
        run_name="classifier"
    )
    writer = ScriptedModel(
        messages=iter([reply("You can get a refund within 30 days.")])
    ).with_config(run_name="writer")

    def fetch(state: Desk) -> dict:
        return {"notes": ["policy: refunds within 30 days to the original payment method"]}

    def summarise(state: Desk) -> dict:
        return {"notes": [summariser.invoke(state["notes"][-1]).content]}

    policy = StateGraph(Desk)
    policy.add_node("fetch", fetch)
    policy.add_node("summarise", summarise)
    policy.add_edge(START, "fetch")
    policy.add_edge("fetch", "summarise")

    def run_agent(state: Desk) -> dict:
        result = agent.invoke({"messages": [HumanMessage(state["question"])]})
        return {"notes": [result["messages"][-1].content]}

    def triage(state: Desk) -> dict:
        return {"notes": [triage_model.invoke(state["question"]).content]}

    def write_reply(state: Desk) -> dict:
        prompt = "\n".join(sorted(state["notes"]))
        return {"answer": writer.invoke(prompt).content}

    desk = StateGraph(Desk)
    desk.add_node("policy", policy.compile(name="policy"))
    desk.add_node("agent", run_agent)
    desk.add_node("triage", triage)
    desk.add_node("reply", write_reply)
    for branch in ("policy", "agent", "triage"):
        desk.add_edge(START, branch)
    desk.add_edge(["policy", "agent", "triage"], "reply")
    desk.add_edge("reply", END)
    return desk.compile(name="desk")


def build_refunds():
    def approve(state: Desk) -> dict:
        decision = interrupt({"approve_refund_eur": 30, "order": "A-17"})
        return {"answer": f"refund {decision}"}

    graph = StateGraph(Desk)
    graph.add_node("approve", approve)
    graph.add_edge(START, "approve")
    return graph.compile(name="refunds", checkpointer=InMemorySaver())


def print_tree(packet: dict) -> None:
    children: dict[Any, list[dict]] = {}
    for step in packet["steps"]:
        children.setdefault(step["parent_id"], []).append(step)
    perf = packet["performance"]
    print(
        f"\npacket {packet['request_id']}  {packet['status']}  "
        f"session={packet['pipeline_metadata']['session_id']}  "
        f"{perf['latency_ms']:.1f} ms  llm_calls={perf['llm_calls']} "
        f"tool_calls={perf['tool_calls']} tokens={perf['total_tokens']} "
        f"ttft={perf['time_to_first_token_ms']} ms"
    )

    def walk(parent: Any, depth: int) -> None:
        for step in sorted(children.get(parent, []), key=lambda s: s["start_time"]):
            extra = step["metadata"].get("control_flow") or ""
            if step["tool"]:
                extra = f"{step['tool']['tool_call_id']} -> {step['output']}"
            elif step["llm"]:
                extra = f"{step['llm']['model_name']} streamed={step['llm']['streamed']}"
            print(f"  {'  ' * depth}{step['kind']:<10} {step['name']:<16} {extra}")
            walk(step["step_id"], depth + 1)

    walk(None, 0)


handler = AITelHandler(app_version="1.0.0")

# 1. parallel branches, a subgraph and an agent, streamed: one packet
question = "Order A-17 arrived broken. Refund or replacement?"
for mode, data in build_desk().stream(
    {"question": question, "notes": []},
    {"callbacks": [handler], "metadata": {"request_id": "desk-1"}},
    stream_mode=["updates", "messages"],
):
    if mode == "updates" and "reply" in data:
        print(f"answer: {data['reply']['answer']}")

# 2. human in the loop: paused, then resumed
refunds = build_refunds()
config = {"callbacks": [handler], "configurable": {"thread_id": "ticket-881"}}
paused = refunds.invoke({"question": "refund A-17?", "notes": []}, config)
print(f"paused, asking: {paused['__interrupt__'][0].value}")
print(f"resumed: {refunds.invoke(Command(resume='approved'), config)['answer']}")

aitel.flush()
path = aitel.get_tracer().exporter.path
for line in path.read_bytes().splitlines():
    print_tree(orjson.loads(line))
