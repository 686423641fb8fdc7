"""The benchmark workloads: real LangGraph graphs, deterministic, no network."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from typing_extensions import TypedDict

from lg_otel.testing import SimulatedChatModel

#: 100 words: GenericFakeChatModel splits on whitespace and keeps the spaces as
#: chunks, so this streams 199 chunks, plus one closing chunk: 200.
TEXT = " ".join(f"w{i}" for i in range(100))
#: 10 words: a 20-chunk answer. Per-chunk cost is the slope between the two chats.
SHORT_TEXT = " ".join(f"w{i}" for i in range(10))
#: Chunks the long chat streams beyond the short one.
SLOPE_CHUNKS = 180


def _fake(text: str = TEXT) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=itertools.cycle([AIMessage(content=text)]))


def chat(node_calls: str, text: str = TEXT) -> Any:
    """prefix_node -> chatbot, which calls the model with .stream() or .invoke()."""
    model = _fake(text)

    def prefix_node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="prefix")]}

    def chatbot(state: MessagesState) -> dict[str, Any]:
        if node_calls == "stream":
            chunks = list(model.stream(state["messages"]))
            message = chunks[0]
            for chunk in chunks[1:]:
                message = message + chunk
            return {"messages": [AIMessage(content=message.content)]}
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("prefix_node", prefix_node)
    g.add_node("chatbot", chatbot)
    g.add_edge(START, "prefix_node")
    g.add_edge("prefix_node", "chatbot")
    g.add_edge("chatbot", END)
    return g.compile(name="chat")


class Wide(TypedDict):
    """State of the wide graph: a counter and an optional payload."""

    n: Annotated[int, operator.add]
    payload: str


def wide(state_bytes: int = 0, steps: int = 10, width: int = 20) -> Any:
    """``steps`` supersteps of a ``width``-way fan-out and a join: 210 tasks."""
    g = StateGraph(Wide)
    previous = START
    for step in range(steps):
        join = f"join{step}"
        for i in range(width):
            name = f"n{step}_{i}"
            g.add_node(name, lambda state: {"n": 1})
            g.add_edge(previous, name)
            g.add_edge(name, join)
        g.add_node(join, lambda state: {"n": 1})
        previous = join
    g.add_edge(previous, END)
    return g.compile(name="big_state" if state_bytes else "wide")


def nested() -> Any:
    """A subgraph of 3 nodes, one streaming 50 chunks."""
    model = _fake(" ".join(f"w{i}" for i in range(25)))

    def step(state: MessagesState) -> dict[str, Any]:
        return {}

    def talk(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    sub = StateGraph(MessagesState)
    sub.add_node("first", step)
    sub.add_node("talk", talk)
    sub.add_node("last", step)
    sub.add_edge(START, "first")
    sub.add_edge("first", "talk")
    sub.add_edge("talk", "last")
    g = StateGraph(MessagesState)
    g.add_node("outer", sub.compile(name="inner"))
    g.add_edge(START, "outer")
    return g.compile(name="nested")


def realistic() -> Any:
    """The chat graph with a model that waits 300 ms, then ~20 ms between chunks."""
    model = SimulatedChatModel(
        messages=itertools.cycle([" ".join(f"w{i}" for i in range(10))]),
        first_chunk_delay=0.3,
        chunk_delay=0.02,
    )

    def prefix_node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="prefix")]}

    def chatbot(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("prefix_node", prefix_node)
    g.add_node("chatbot", chatbot)
    g.add_edge(START, "prefix_node")
    g.add_edge("prefix_node", "chatbot")
    return g.compile(name="realistic")


@dataclass(frozen=True)
class Workload:
    """A graph factory, its input and what one run contains."""

    name: str
    build: Callable[[], Any]
    make_input: Callable[[], Any]
    tasks: int
    chunks: int
    wall_only: bool = False


def _messages() -> dict[str, Any]:
    return {"messages": [HumanMessage("hi")]}


WORKLOADS = [
    Workload("chat-stream", lambda: chat("stream"), _messages, 2, 200),
    Workload("chat-invoke", lambda: chat("invoke"), _messages, 2, 200),
    Workload("wide", wide, lambda: {"n": 0, "payload": ""}, 210, 0),
    Workload("nested", nested, _messages, 4, 50),
    Workload(
        "big-state",
        lambda: wide(200_000),
        lambda: {"n": 0, "payload": "x" * 200_000},
        210,
        0,
    ),
    Workload("realistic", realistic, _messages, 2, 19, wall_only=True),
]
