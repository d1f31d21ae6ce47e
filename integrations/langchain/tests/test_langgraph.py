"""LangGraph: one packet per graph invocation, nested correctly, whatever the way it is run.

Graphs with parallel branches and a subgraph, an agent from
``langchain.agents.create_agent`` driving real ``@tool``s, interrupts and
``Command``s (control flow, never failures), and every streaming mode.
"""

from __future__ import annotations

import asyncio
import json
import operator
import threading
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip(
    "langgraph", reason="needs the dev install (README: make test), which has langgraph"
)
pytest.importorskip(
    "langchain.agents", reason="needs the dev install (README: make test), which has langchain"
)

import langgraph.errors
from fakes import ToolCallingFakeModel, answer
from langchain.agents import create_agent
from langchain_aitel import AITelHandler
from langchain_aitel.handler import control_flow
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from aitel.testing import PacketCapture

# -- offline pieces ----------------------------------------------------------------------


class StreamingToolModel(ToolCallingFakeModel):
    """A fake tool-calling chat model whose stream carries text, tool calls and usage.

    LangChain's fake streams only text (a tool-call turn streams nothing);
    this one streams the words, then one last chunk with the tool calls,
    usage and response metadata, as real providers do.
    """

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = next(self.messages)
        assert isinstance(message, AIMessage)
        words = str(message.content).split(" ") if message.content else []
        chunks = [AIMessageChunk(content=w if i == 0 else f" {w}") for i, w in enumerate(words)]
        chunks.append(
            AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {
                        "name": call["name"],
                        "args": json.dumps(call["args"]),
                        "id": call["id"],
                        "index": i,
                        "type": "tool_call_chunk",
                    }
                    for i, call in enumerate(message.tool_calls)
                ],
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


def tool_turn(*calls: tuple[str, dict[str, Any], str]) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": n, "args": a, "id": i, "type": "tool_call"} for n, a, i in calls],
        usage_metadata={"input_tokens": 40, "output_tokens": 10, "total_tokens": 50},
        response_metadata={"model_name": "gpt-4o-2024-08-06", "finish_reason": "tool_calls"},
    )


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"{city}: sunny, 24C"


@tool
def refund(order_id: str, amount: float) -> str:
    """Refund an order (asks a human first)."""
    decision = interrupt({"action": "refund", "order_id": order_id, "amount": amount})
    return f"refund {order_id}: {decision}"


@tool
def search_docs(query: str) -> str:
    """Search the handbook."""
    return f"handbook: {query} -> 30 days"


def make_agent(*turns: AIMessage, checkpointer: Any = None, tools: list[Any] | None = None):
    model = StreamingToolModel(messages=iter(turns))
    return create_agent(
        model,
        tools or [multiply, get_weather],
        system_prompt="You are a careful assistant.",
        name="assistant",
        checkpointer=checkpointer,
    )


def two_tools_then_answer():
    return (
        tool_turn(
            ("multiply", {"a": 6, "b": 7}, "call_mul"),
            ("get_weather", {"city": "Lisbon"}, "call_wx"),
        ),
        answer(
            "6*7 is 42 and Lisbon is sunny", prompt=90, completion=12, model="gpt-4o-2024-08-06"
        ),
    )


class State(TypedDict):
    question: str
    notes: Annotated[list[str], operator.add]
    answer: str


def build_research_graph(*, fail_in: str | None = None, is_async: bool = False):
    """START -> (draft_a | draft_b | research[search -> summarise]) -> merge -> END."""
    writer_a = GenericFakeChatModel(
        messages=iter([answer("draft A", prompt=11, completion=2)])
    ).with_config(run_name="writer_a")
    writer_b = GenericFakeChatModel(
        messages=iter([answer("draft B", prompt=12, completion=3)])
    ).with_config(run_name="writer_b")
    summariser = GenericFakeChatModel(
        messages=iter([answer("summary", prompt=13, completion=4)])
    ).with_config(run_name="summariser")

    def check(node: str) -> None:
        if fail_in == node:
            raise ValueError(f"{node} broke")

    if is_async:

        async def draft_a(state: State) -> dict:
            check("draft_a")
            return {"notes": [(await writer_a.ainvoke(state["question"])).content]}

        async def draft_b(state: State) -> dict:
            await asyncio.sleep(0)
            return {"notes": [(await writer_b.ainvoke(state["question"])).content]}

        async def search(state: State) -> dict:
            return {"notes": [await search_docs.ainvoke({"query": state["question"]})]}

        async def summarise(state: State) -> dict:
            return {"notes": [(await summariser.ainvoke(state["notes"][-1])).content]}

    else:

        def draft_a(state: State) -> dict:
            check("draft_a")
            return {"notes": [writer_a.invoke(state["question"]).content]}

        def draft_b(state: State) -> dict:
            return {"notes": [writer_b.invoke(state["question"]).content]}

        def search(state: State) -> dict:
            return {"notes": [search_docs.invoke({"query": state["question"]})]}

        def summarise(state: State) -> dict:
            return {"notes": [summariser.invoke(state["notes"][-1]).content]}

    sub = StateGraph(State)
    sub.add_node("search", search)
    sub.add_node("summarise", summarise)
    sub.add_edge(START, "search")
    sub.add_edge("search", "summarise")

    def merge(state: State) -> dict:
        return {"answer": " | ".join(sorted(state["notes"]))}

    graph = StateGraph(State)
    graph.add_node("draft_a", draft_a)
    graph.add_node("draft_b", draft_b)
    graph.add_node("research", sub.compile(name="research"))
    graph.add_node("merge", merge)
    for branch in ("draft_a", "draft_b", "research"):
        graph.add_edge(START, branch)
    graph.add_edge(["draft_a", "draft_b", "research"], "merge")
    graph.add_edge("merge", END)
    return graph.compile(name="answer_graph")


def paths(packet: dict) -> dict[str, dict]:
    """Each step by the names of its ancestors and itself: ``graph/node/model``.

    Steps with the same path (an agent's second model turn) get ``#1``, ``#2``
    in the order they started.
    """
    by_id = {s["step_id"]: s for s in packet["steps"]}

    def path(step: dict) -> str:
        names = [step["name"]]
        while step["parent_id"] is not None:
            step = by_id[step["parent_id"]]
            names.append(step["name"])
        return "/".join(reversed(names))

    groups: dict[str, list[dict]] = {}
    for step in packet["steps"]:
        groups.setdefault(path(step), []).append(step)
    out = {}
    for key, group in groups.items():
        if len(group) == 1:
            out[key] = group[0]
        else:
            for n, step in enumerate(sorted(group, key=lambda s: s["start_time"]), 1):
                out[f"{key}#{n}"] = step
    return out


# -- graphs with parallel branches and a subgraph ------------------------------------


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_parallel_branches_and_subgraph_nest_under_their_nodes(
    aitel_packets: PacketCapture, mode: str
) -> None:
    graph = build_research_graph(is_async=mode == "ainvoke")
    config = {"callbacks": [AITelHandler()], "metadata": {"request_id": "graph-1"}}
    state = {"question": "refund window?", "notes": []}
    result = graph.invoke(state, config) if mode == "invoke" else await graph.ainvoke(state, config)
    expected_answer = "draft A | draft B | handbook: refund window? -> 30 days | summary"
    assert result["answer"] == expected_answer

    packet = aitel_packets.one()
    steps = paths(packet)
    assert sorted(steps) == [
        "answer_graph",
        "answer_graph/draft_a",
        "answer_graph/draft_a/writer_a",
        "answer_graph/draft_b",
        "answer_graph/draft_b/writer_b",
        "answer_graph/merge",
        "answer_graph/research",
        "answer_graph/research/research",
        "answer_graph/research/research/search",
        "answer_graph/research/research/search/search_docs",
        "answer_graph/research/research/summarise",
        "answer_graph/research/research/summarise/summariser",
    ]
    root = steps["answer_graph"]
    # parallel branches: each model call is the child of its own node
    for node, model in (("draft_a", "writer_a"), ("draft_b", "writer_b")):
        node_step = steps[f"answer_graph/{node}"]
        assert node_step["parent_id"] == root["step_id"]
        assert steps[f"answer_graph/{node}/{model}"]["parent_id"] == node_step["step_id"]
    research_node = steps["answer_graph/research"]
    subgraph = steps["answer_graph/research/research"]
    assert subgraph["parent_id"] == research_node["step_id"]
    assert steps["answer_graph/research/research/search"]["parent_id"] == subgraph["step_id"]
    # the branches ran side by side: they all started before merge started
    merge = steps["answer_graph/merge"]
    for branch in ("draft_a", "draft_b", "research"):
        assert steps[f"answer_graph/{branch}"]["end_time"] <= merge["start_time"]

    assert packet["request_id"] == "graph-1"
    assert packet["status"] == "SUCCESS" and packet["error"] is None
    assert packet["payload"] == {"input": state, "output": result}
    assert packet["pipeline_metadata"]["function_name"] == "answer_graph"
    assert packet["pipeline_metadata"]["model_name"] == "gpt-4o-mini-2024-07-18"
    writer_a = steps["answer_graph/draft_a/writer_a"]
    assert writer_a["kind"] == "chat_model" and writer_a["status"] == "SUCCESS"
    assert writer_a["output"] == "draft A"
    assert writer_a["llm"]["messages"] == [{"role": "user", "content": "refund window?"}]
    assert writer_a["llm"]["usage"]["prompt_tokens"] == 11
    assert writer_a["llm"]["finish_reason"] == "stop"
    search = steps["answer_graph/research/research/search/search_docs"]
    assert search["kind"] == "tool"
    assert search["input"] == {"query": "refund window?"}
    assert search["output"] == "handbook: refund window? -> 30 days"
    assert steps["answer_graph/research/research/summarise/summariser"]["llm"]["messages"] == [
        {"role": "user", "content": "handbook: refund window? -> 30 days"}
    ]
    assert merge["output"] == {"answer": expected_answer}
    perf = packet["performance"]
    assert perf["llm_calls"] == 3 and perf["tool_calls"] == 1
    assert (perf["prompt_tokens"], perf["completion_tokens"], perf["total_tokens"]) == (36, 9, 45)
    assert perf["token_usage_complete"] is True and perf["cost_complete"] is True
    assert perf["cost_usd"] == pytest.approx((36 * 0.15 + 9 * 0.6) / 1e6)
    assert all(s["status"] == "SUCCESS" for s in packet["steps"])


def test_concurrent_graph_invocations_are_separate_packets(aitel_packets: PacketCapture) -> None:
    """Sixteen threads, each invoking its own graph: sixteen packets, none mixed."""
    handler = AITelHandler()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            graph = build_research_graph()
            graph.invoke(
                {"question": f"q{i}", "notes": []},
                {"callbacks": [handler], "metadata": {"request_id": f"r{i}"}},
            )
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    packets = aitel_packets.packets()
    assert sorted(p["request_id"] for p in packets) == sorted(f"r{i}" for i in range(16))
    for packet in packets:
        question = f"q{packet['request_id'][1:]}"
        steps = paths(packet)
        assert len(steps) == 12
        assert steps["answer_graph/draft_a/writer_a"]["llm"]["messages"][0]["content"] == question
        tool_input = steps["answer_graph/research/research/search/search_docs"]["input"]
        assert tool_input == {"query": question}
    assert aitel_packets.tracer.builder.open_traces() == 0


def test_failing_branch_fails_the_packet_and_names_the_node(aitel_packets: PacketCapture) -> None:
    graph = build_research_graph(fail_in="draft_a")
    with pytest.raises(ValueError, match="draft_a broke"):
        graph.invoke({"question": "q", "notes": []}, {"callbacks": [AITelHandler()]})
    packet = aitel_packets.one()
    steps = paths(packet)
    assert packet["status"] == "FAILURE"
    assert packet["error"]["type"] == "ValueError"
    assert packet["error_message"] == "draft_a broke"
    assert packet["error"]["step_id"] == steps["answer_graph/draft_a"]["step_id"]
    assert packet["error"]["step_name"] == "draft_a"
    assert steps["answer_graph/draft_a"]["status"] == "FAILURE"
    assert "answer_graph/merge" not in steps


def test_recursion_limit_is_a_failure(aitel_packets: PacketCapture) -> None:
    graph = StateGraph(State)
    graph.add_node("again", lambda state: {"notes": ["x"]})
    graph.add_edge(START, "again")
    graph.add_edge("again", "again")
    compiled = graph.compile(name="loop")
    with pytest.raises(langgraph.errors.GraphRecursionError):
        compiled.invoke(
            {"question": "q", "notes": []}, {"callbacks": [AITelHandler()], "recursion_limit": 3}
        )
    packet = aitel_packets.one()
    assert packet["status"] == "FAILURE"
    assert packet["error"]["type"] == "GraphRecursionError"
    assert len(aitel_packets.steps(packet)) == 4  # the graph and three supersteps


# -- an agent from langchain.agents.create_agent -----------------------------------------


def agent_summary(packet: dict) -> list[tuple]:
    """What must not depend on how the agent was run (streamed or not)."""
    rows = []
    steps = paths(packet)
    path_of = {step["step_id"]: path for path, step in steps.items()}
    for path, step in sorted(steps.items()):
        llm = step["llm"]
        tool = step["tool"]
        if tool is not None:  # ids differ between runs: compare where they point
            tool = {**tool, "requested_by_step_id": path_of[tool["requested_by_step_id"]]}
        rows.append(
            (
                path,
                step["kind"],
                step["status"],
                tool,
                step["input"] if step["kind"] == "tool" else None,
                step["output"] if step["kind"] in {"tool", "chat_model"} else None,
                None
                if llm is None
                else (
                    llm["model_name"],
                    llm["usage"],
                    llm["tool_calls"],
                    llm["finish_reason"],
                    llm["messages"],
                    llm["cost_usd"],
                ),
            )
        )
    return rows


def check_agent_packet(packet: dict, *, streamed: bool) -> None:
    steps = paths(packet)
    # model node -> model call; one tools node per tool call (sent in parallel)
    assert sorted(steps) == [
        "assistant",
        "assistant/model#1",
        "assistant/model#2",
        "assistant/model/StreamingToolModel#1",
        "assistant/model/StreamingToolModel#2",
        "assistant/tools#1",
        "assistant/tools#2",
        "assistant/tools/get_weather",
        "assistant/tools/multiply",
    ]
    tool_nodes = {steps["assistant/tools#1"]["step_id"], steps["assistant/tools#2"]["step_id"]}
    assert {
        steps["assistant/tools/get_weather"]["parent_id"],
        steps["assistant/tools/multiply"]["parent_id"],
    } == tool_nodes
    for n in (1, 2):
        call = steps[f"assistant/model/StreamingToolModel#{n}"]
        assert call["parent_id"] == steps[f"assistant/model#{n}"]["step_id"]
    model_steps = sorted(
        (s for s in packet["steps"] if s["kind"] == "chat_model"), key=lambda s: s["start_time"]
    )
    first, second = model_steps
    tools = {s["name"]: s for s in packet["steps"] if s["kind"] == "tool"}
    assert set(tools) == {"multiply", "get_weather"}
    assert packet["status"] == "SUCCESS" and packet["error"] is None
    assert packet["pipeline_metadata"]["function_name"] == "assistant"
    assert packet["pipeline_metadata"]["model_name"] == "gpt-4o-2024-08-06"
    assert steps["assistant"]["parent_id"] is None

    assert first["llm"]["tool_calls"] == [
        {"id": "call_mul", "name": "multiply", "arguments": {"a": 6, "b": 7}},
        {"id": "call_wx", "name": "get_weather", "arguments": {"city": "Lisbon"}},
    ]
    assert first["llm"]["finish_reason"] == "tool_calls"
    assert first["llm"]["messages"] == [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": "6*7, and the weather in Lisbon?"},
    ]
    assert first["llm"]["usage"]["prompt_tokens"] == 40
    assert first["llm"]["model_name"] == "gpt-4o-2024-08-06"
    assert second["output"] == "6*7 is 42 and Lisbon is sunny"
    assert [m["role"] for m in second["llm"]["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
    ]
    assert tools["multiply"]["input"] == {"a": 6, "b": 7}
    assert tools["multiply"]["output"] == "42"
    assert tools["multiply"]["tool"] == {
        "name": "multiply",
        "tool_call_id": "call_mul",
        "requested_by_step_id": first["step_id"],
    }
    assert tools["get_weather"]["output"] == "Lisbon: sunny, 24C"
    assert tools["get_weather"]["tool"]["requested_by_step_id"] == first["step_id"]
    for step in (*model_steps, *tools.values()):
        assert step["parent_id"] != steps["assistant"]["step_id"]  # under the graph's nodes
        assert step["status"] == "SUCCESS"
    for step in model_steps:
        llm = step["llm"]
        assert llm["streamed"] is streamed
        if streamed:
            assert llm["chunks"] >= 1
            assert 0 <= llm["time_to_first_token_ms"] <= step["duration_ms"]
        else:
            assert llm["time_to_first_token_ms"] is None
    perf = packet["performance"]
    assert perf["llm_calls"] == 2 and perf["tool_calls"] == 2
    assert (perf["prompt_tokens"], perf["completion_tokens"], perf["total_tokens"]) == (
        130,
        22,
        152,
    )
    assert perf["cost_usd"] == pytest.approx((130 * 2.5 + 22 * 10.0) / 1e6)
    assert (perf["time_to_first_token_ms"] is not None) is streamed
    output = packet["payload"]["output"]["messages"]
    assert packet["payload"]["input"] == {
        "messages": [{"role": "user", "content": "6*7, and the weather in Lisbon?"}]
    }
    assert output[-1]["content"] == "6*7 is 42 and Lisbon is sunny"
    assert [m["role"] for m in output] == ["user", "assistant", "tool", "tool", "assistant"]


QUESTION = {"messages": [HumanMessage("6*7, and the weather in Lisbon?")]}


def run_agent(mode: str) -> Any:
    agent = make_agent(*two_tools_then_answer())
    config = {"callbacks": [AITelHandler()]}
    if mode == "invoke":
        return agent.invoke(QUESTION, config)
    if mode == "ainvoke":
        return asyncio.run(agent.ainvoke(QUESTION, config))
    if mode == "astream":
        return asyncio.run(_collect(agent.astream(QUESTION, config, stream_mode="messages")))
    if mode == "astream_events":
        return asyncio.run(_collect(agent.astream_events(QUESTION, config, version="v2")))
    stream_mode: Any = mode.split("+") if "+" in mode else mode
    return list(agent.stream(QUESTION, config, stream_mode=stream_mode))


async def _collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


def test_agent_invoke_gives_one_complete_packet(aitel_packets: PacketCapture) -> None:
    result = run_agent("invoke")
    assert result["messages"][-1].content == "6*7 is 42 and Lisbon is sunny"
    check_agent_packet(aitel_packets.one(), streamed=False)


@pytest.mark.parametrize(
    ("mode", "streamed"),
    [
        ("ainvoke", False),
        ("values", False),
        ("updates", False),
        ("debug", False),
        ("custom", False),
        ("messages", True),
        ("updates+messages+values", True),
        ("astream", True),
        ("astream_events", True),
    ],
)
def test_agent_streaming_modes_give_the_same_complete_packet(
    aitel_packets: PacketCapture, mode: str, streamed: bool
) -> None:
    """Every way of running the agent gives one packet with the same contents."""
    run_agent("invoke")
    reference = aitel_packets.one()
    aitel_packets.clear()

    items = run_agent(mode)
    assert items or mode == "custom"  # the agent writes nothing to the custom stream
    packet = aitel_packets.one()
    check_agent_packet(packet, streamed=streamed)
    assert agent_summary(packet) == agent_summary(reference)
    assert packet["payload"] == reference["payload"]


def test_stream_messages_yields_what_the_packet_records(aitel_packets: PacketCapture) -> None:
    """The tokens a client saw through stream_mode="messages" are the packet's model output."""
    items = run_agent("messages")
    streamed_text = "".join(
        chunk.content
        for chunk, meta in items
        if isinstance(chunk, AIMessageChunk) and meta["langgraph_node"] == "model"
    )
    packet = aitel_packets.one()
    outputs = [s["output"] or "" for s in aitel_packets.steps(packet, "chat_model")]
    assert streamed_text == "".join(outputs) == "6*7 is 42 and Lisbon is sunny"


def test_custom_stream_writer_events(aitel_packets: PacketCapture) -> None:
    """stream_mode="custom" from a node: the packet is complete and the node output recorded."""

    def node(state: State) -> dict:
        write = get_stream_writer()
        write({"progress": 50})
        write({"progress": 100})
        return {"answer": "done"}

    graph = StateGraph(State)
    graph.add_node("work", node)
    graph.add_edge(START, "work")
    compiled = graph.compile(name="writer")
    items = list(
        compiled.stream(
            {"question": "q", "notes": []}, {"callbacks": [AITelHandler()]}, stream_mode="custom"
        )
    )
    assert items == [{"progress": 50}, {"progress": 100}]
    packet = aitel_packets.one()
    assert packet["payload"]["output"] == {"question": "q", "notes": [], "answer": "done"}
    assert paths(packet)["writer/work"]["output"] == {"answer": "done"}


def test_closing_a_stream_early_is_not_a_failure(aitel_packets: PacketCapture) -> None:
    """A consumer that stops reading ends the run (GeneratorExit): recorded, not failed."""
    agent = make_agent(*two_tools_then_answer())
    stream = agent.stream(QUESTION, {"callbacks": [AITelHandler()]}, stream_mode="updates")
    first = next(stream)
    assert "model" in first
    stream.close()
    packet = aitel_packets.one()
    root = paths(packet)["assistant"]
    assert packet["status"] == "SUCCESS" and packet["error"] is None
    assert root["metadata"]["control_flow"] == "GeneratorExit"
    assert root["status"] == "SUCCESS"
    assert packet["payload"]["output"] is None
    assert len(aitel_packets.steps(packet, "chat_model")) == 1


# -- interrupts and commands: control flow, not failures --------------------------------


def test_interrupt_and_resume_are_two_successful_packets_of_one_thread(
    aitel_packets: PacketCapture,
) -> None:
    def approve(state: State) -> dict:
        decision = interrupt({"question": "approve the refund?", "amount": 30})
        return {"answer": f"refund {decision}"}

    graph = StateGraph(State)
    graph.add_node("approve", approve)
    graph.add_edge(START, "approve")
    compiled = graph.compile(name="refunds", checkpointer=InMemorySaver())
    config = {"callbacks": [AITelHandler()], "configurable": {"thread_id": "thread-9"}}

    paused = compiled.invoke({"question": "refund?", "notes": []}, config)
    assert paused["__interrupt__"][0].value == {"question": "approve the refund?", "amount": 30}
    resumed = compiled.invoke(Command(resume="approved"), config)
    assert resumed["answer"] == "refund approved"

    first, second = aitel_packets.packets()
    for packet in (first, second):
        assert packet["status"] == "SUCCESS" and packet["error"] is None
        assert packet["pipeline_metadata"]["session_id"] == "thread-9"
        assert all(s["status"] == "SUCCESS" for s in packet["steps"])
    assert first["request_id"] != second["request_id"]
    node = paths(first)["refunds/approve"]
    assert node["metadata"]["control_flow"] == "GraphInterrupt"
    assert node["output"] is None
    (event,) = node["events"]
    assert event["name"] == "GraphInterrupt"
    assert event["data"] == [
        {
            "value": {"question": "approve the refund?", "amount": 30},
            "id": paused["__interrupt__"][0].id,
            "response_schema": None,
        }
    ]
    assert "control_flow" not in paths(first)["refunds"]["metadata"]
    assert second["payload"]["input"]["resume"] == "approved"
    assert paths(second)["refunds/approve"]["output"] == {"answer": "refund approved"}
    assert paths(second)["refunds/approve"]["events"] == []


def test_interrupt_inside_an_agent_tool_then_resume(aitel_packets: PacketCapture) -> None:
    """A tool that asks a human: the tool step is paused, not failed; the resume completes it."""
    agent = make_agent(
        tool_turn(("refund", {"order_id": "A-17", "amount": 30.0}, "call_refund")),
        answer("Refunded order A-17.", prompt=60, completion=6, model="gpt-4o-2024-08-06"),
        checkpointer=InMemorySaver(),
        tools=[refund],
    )
    config = {"callbacks": [AITelHandler()], "configurable": {"thread_id": "hitl-1"}}
    paused = agent.invoke({"messages": [HumanMessage("refund A-17")]}, config)
    assert "__interrupt__" in paused
    done = agent.invoke(Command(resume="approved"), config)
    assert done["messages"][-1].content == "Refunded order A-17."

    first, second = aitel_packets.packets()
    assert first["status"] == second["status"] == "SUCCESS"
    paused_tool = aitel_packets.steps(first, "tool")[0]
    assert paused_tool["name"] == "refund"
    assert paused_tool["status"] == "SUCCESS"
    assert paused_tool["metadata"]["control_flow"] == "GraphInterrupt"
    assert paused_tool["events"][0]["data"][0]["value"] == {
        "action": "refund",
        "order_id": "A-17",
        "amount": 30.0,
    }
    assert paused_tool["tool"]["tool_call_id"] == "call_refund"
    finished_tool = aitel_packets.steps(second, "tool")[0]
    assert finished_tool["output"] == "refund A-17: approved"
    assert finished_tool["tool"]["tool_call_id"] == "call_refund"
    assert second["performance"]["llm_calls"] == 1


def test_command_to_parent_graph_is_control_flow(aitel_packets: PacketCapture) -> None:
    """A subgraph node handing off with Command(graph=PARENT): ParentCommand, not an error."""

    def hand_off(state: State) -> Command:
        return Command(graph=Command.PARENT, goto="finish", update={"notes": ["handed off"]})

    inner = StateGraph(State)
    inner.add_node("hand_off", hand_off)
    inner.add_edge(START, "hand_off")

    def finish(state: State) -> dict:
        return {"answer": ", ".join(state["notes"])}

    outer = StateGraph(State)
    outer.add_node("triage", inner.compile(name="triage"), destinations=("finish",))
    outer.add_node("finish", finish)
    outer.add_edge(START, "triage")
    outer.add_edge("finish", END)
    result = outer.compile(name="desk").invoke(
        {"question": "q", "notes": []}, {"callbacks": [AITelHandler()]}
    )
    assert result["answer"] == "handed off"

    packet = aitel_packets.one()
    steps = paths(packet)
    assert packet["status"] == "SUCCESS" and packet["error"] is None
    node = steps["desk/triage/triage/hand_off"]
    assert node["metadata"]["control_flow"] == "ParentCommand"
    assert node["events"][0]["data"] == {
        "graph": "__parent__",
        "update": {"notes": ["handed off"]},
        "resume": None,
        "goto": "finish",
    }
    for path in ("desk/triage", "desk/triage/triage"):
        assert steps[path]["metadata"]["control_flow"] == "ParentCommand"
    assert steps["desk/finish"]["output"] == {"answer": "handed off"}
    assert all(s["status"] == "SUCCESS" for s in packet["steps"])


def _bubble_up_classes() -> list[type[BaseException]]:
    return sorted(
        (
            value
            for value in vars(langgraph.errors).values()
            if isinstance(value, type) and issubclass(value, langgraph.errors.GraphBubbleUp)
        ),
        key=lambda cls: cls.__name__,
    )


def test_every_langgraph_bubble_up_signal_is_control_flow() -> None:
    """Checked against the installed langgraph: every GraphBubbleUp subclass, none missed."""
    classes = _bubble_up_classes()
    assert {"GraphBubbleUp", "GraphInterrupt", "ParentCommand"} <= {c.__name__ for c in classes}
    for cls in classes:
        error = cls.__new__(cls)  # no __init__: NodeInterrupt's warns
        assert control_flow(error) == cls.__name__
    assert control_flow(GeneratorExit()) == "GeneratorExit"
    assert control_flow(langgraph.errors.GraphRecursionError("loop")) is None
    assert control_flow(langgraph.errors.InvalidUpdateError("bad")) is None
    assert control_flow(ValueError("x")) is None


@pytest.mark.parametrize("cls", _bubble_up_classes(), ids=lambda c: c.__name__)
def test_bubble_up_on_chain_and_tool_error_ends_steps_successfully(
    aitel_packets: PacketCapture, cls: type[BaseException]
) -> None:
    import uuid

    handler = AITelHandler()
    root, node, tool_run = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    signal = cls.__new__(cls)
    handler.on_chain_start(None, {"q": 1}, run_id=root, name="graph")
    handler.on_chain_start(None, {"q": 1}, run_id=node, parent_run_id=root, name="node")
    handler.on_tool_start(None, "x", run_id=tool_run, parent_run_id=node, name="ask_human")
    handler.on_tool_error(signal, run_id=tool_run)
    handler.on_chain_error(signal, run_id=node)
    handler.on_chain_end({"q": 1}, run_id=root)
    packet = aitel_packets.one()
    assert packet["status"] == "SUCCESS"
    steps = paths(packet)
    for path in ("graph/node", "graph/node/ask_human"):
        assert steps[path]["status"] == "SUCCESS"
        assert steps[path]["error"] is None
        assert steps[path]["metadata"]["control_flow"] == cls.__name__
