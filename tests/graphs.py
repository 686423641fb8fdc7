"""Real LangGraph graphs of every shape the tests need (no network, no mocks)."""

from __future__ import annotations

import asyncio
import itertools
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypedDict

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel
from langgraph.types import Command, Send, interrupt

from lg_otel.testing import SimulatedChatModel


class S(TypedDict):
    """State of the plain shapes: a log of visited nodes."""

    log: Annotated[list[str], operator.add]


class LoopS(TypedDict):
    """State of the loop shape."""

    log: Annotated[list[str], operator.add]
    n: int


class Node(Protocol):
    """A node function (LangGraph's node protocols name the parameter ``state``)."""

    def __call__(self, state: Any) -> dict[str, Any]: ...


class Turns:
    """Makes parallel tasks of one superstep finish in index order, every run.

    A fixed stagger (task i sleeps i x 20 ms) was not enough: on a loaded CI
    machine a thread-pool start can lag more than that, the bare graph then
    yields the parallel updates in another order, and a differential test
    compares two different interleavings. Task i waits until task i-1 has
    returned, then leaves a gap so the runner has processed i-1's completion.
    The counter wraps after the last task so the next run starts at 0; the wait
    has a timeout so an abandoned run cannot wedge later ones.
    """

    def __init__(self, count: int, gap: float = 0.02) -> None:
        self._count = count
        self._gap = gap
        self._next = 0
        self._cond = threading.Condition()

    def take(self, index: int) -> None:
        """Block until it is ``index``'s turn (at most 2 s)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._next == index, timeout=2.0):
                self._next = index  # heal a counter left behind by an abandoned run
        if index:
            time.sleep(self._gap)

    def done(self, index: int) -> None:
        """Hand the turn to ``index + 1`` (wrapping after the last task)."""
        with self._cond:
            self._next = (index + 1) % self._count
            self._cond.notify_all()


def _visit(name: str, turn: tuple[Turns, int] | None = None) -> Node:
    def node(state: Any) -> dict[str, Any]:
        if turn is not None:
            turns, index = turn
            turns.take(index)
            turns.done(index)
        get_stream_writer()({"node": name})
        return {"log": [name]}

    node.__name__ = name
    return node


def linear() -> Pregel[Any, Any, Any, Any]:
    """a -> b -> c."""
    g = StateGraph(S)
    for name in "abc":
        g.add_node(name, _visit(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    return g.compile(name="linear")


def fanout() -> Pregel[Any, Any, Any, Any]:
    """START -> a, b, c in parallel -> join (staggered so output order is stable)."""
    g = StateGraph(S)
    turns = Turns(3)
    for i, name in enumerate("abc"):
        g.add_node(name, _visit(name, (turns, i)))
        g.add_edge(START, name)
        g.add_edge(name, "join")
    g.add_node("join", _visit("join"))
    g.add_edge("join", END)
    return g.compile(name="fanout")


def send_map_reduce() -> Pregel[Any, Any, Any, Any]:
    """plan -> Send("work", i) x3 -> reduce."""

    def plan(state: S) -> dict[str, Any]:
        return {"log": ["plan"]}

    def route(state: S) -> list[Send]:
        return [Send("work", {"log": [f"item{i}"]}) for i in range(3)]

    turns = Turns(3)

    def work(state: S) -> dict[str, Any]:
        item = state["log"][-1]
        turns.take(int(item[-1]))  # a stable completion order
        turns.done(int(item[-1]))
        return {"log": [f"done-{item}"]}

    g = StateGraph(S)
    g.add_node("plan", plan)
    g.add_node("work", work)
    g.add_node("reduce", _visit("reduce"))
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", route, ["work"])
    g.add_edge("work", "reduce")
    g.add_edge("reduce", END)
    return g.compile(name="send")


def loop() -> Pregel[Any, Any, Any, Any]:
    """step loops back to itself until n reaches 3."""

    def step(state: LoopS) -> dict[str, Any]:
        return {"log": ["step"], "n": state.get("n", 0) + 1}

    def again(state: LoopS) -> str:
        return "step" if state["n"] < 3 else END

    g = StateGraph(LoopS)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", again, ["step", END])
    return g.compile(name="loop")


def nested() -> Pregel[Any, Any, Any, Any]:
    """outer: pre -> mid (subgraph: inner (subgraph: leaf) -> after) -> post."""
    leaf_g = StateGraph(S)
    leaf_g.add_node("leaf", _visit("leaf"))
    leaf_g.add_edge(START, "leaf")
    mid_g = StateGraph(S)
    mid_g.add_node("inner", leaf_g.compile(name="inner_graph"))
    mid_g.add_node("after", _visit("after"))
    mid_g.add_edge(START, "inner")
    mid_g.add_edge("inner", "after")
    g = StateGraph(S)
    g.add_node("pre", _visit("pre"))
    g.add_node("mid", mid_g.compile(name="mid_graph"))
    g.add_node("post", _visit("post"))
    g.add_edge(START, "pre")
    g.add_edge("pre", "mid")
    g.add_edge("mid", "post")
    return g.compile(name="nested")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def agent_model() -> SimulatedChatModel:
    """A model that calls two tools, then answers."""
    calls = AIMessage(
        content="",
        tool_calls=[
            {"name": "add", "args": {"a": 2, "b": 3}, "id": "call-add"},
            {"name": "multiply", "args": {"a": 4, "b": 5}, "id": "call-mul"},
        ],
    )
    answer = AIMessage(content="The results are 5 and 20.")
    return SimulatedChatModel(messages=itertools.cycle([calls, answer]))


def agent() -> Pregel[Any, Any, Any, Any]:
    """model -> tools (ToolNode, 2 calls) -> model -> END."""
    model = agent_model()

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def more(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if getattr(last, "tool_calls", None) else END

    g = StateGraph(MessagesState)
    g.add_node("model", call_model)
    g.add_node("tools", ToolNode([add, multiply]))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", more, ["tools", END])
    g.add_edge("tools", "model")
    return g.compile(name="agent")


def chat(
    first_chunk_delay: float = 0.0, chunk_delay: float = 0.0
) -> Pregel[Any, Any, Any, Any]:
    """Our users' write-up: prefix_node returns a fixed AIMessage -> chatbot streams."""
    model = SimulatedChatModel(
        messages=itertools.cycle(["Hello there, how can I help you today?"]),
        first_chunk_delay=first_chunk_delay,
        chunk_delay=chunk_delay,
    )

    def prefix_node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="Prefix A.\n")]}

    def chatbot(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("prefix_node", prefix_node)
    g.add_node("chatbot", chatbot)
    g.add_edge(START, "prefix_node")
    g.add_edge("prefix_node", "chatbot")
    g.add_edge("chatbot", END)
    return g.compile(name="chat")


def human() -> Pregel[Any, Any, Any, Any]:
    """prepare -> ask (interrupt) -> finish, with an in-memory checkpointer."""

    def ask(state: S) -> dict[str, Any]:
        answer = interrupt("approve?")
        return {"log": [f"answer:{answer}"]}

    g = StateGraph(S)
    g.add_node("prepare", _visit("prepare"))
    g.add_node("ask", ask)
    g.add_node("finish", _visit("finish"))
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "ask")
    g.add_edge("ask", "finish")
    return g.compile(name="human", checkpointer=InMemorySaver())


class Boom(RuntimeError):
    """The error the failing shape raises."""


def failing() -> Pregel[Any, Any, Any, Any]:
    """ok -> boom (raises Boom)."""

    def boom(state: S) -> dict[str, Any]:
        raise Boom("node failed")

    g = StateGraph(S)
    g.add_node("ok", _visit("ok"))
    g.add_node("boom", boom)
    g.add_edge(START, "ok")
    g.add_edge("ok", "boom")
    return g.compile(name="failing")


@dataclass
class Shape:
    """A graph and how to drive it: inputs in order (resumes after the first)."""

    name: str
    build: Callable[[], Pregel[Any, Any, Any, Any]]
    inputs: list[Any]
    #: Node spans one full drive produces, by name (count).
    tasks: dict[str, int]
    needs_thread: bool = False
    raises: type[BaseException] | None = None
    llm_calls: int = 0
    tool_calls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


SHAPES: list[Shape] = [
    Shape("linear", linear, [{"log": []}], {"a": 1, "b": 1, "c": 1}),
    Shape("fanout", fanout, [{"log": []}], {"a": 1, "b": 1, "c": 1, "join": 1}),
    Shape("send", send_map_reduce, [{"log": []}], {"plan": 1, "work": 3, "reduce": 1}),
    Shape("loop", loop, [{"log": [], "n": 0}], {"step": 3}),
    Shape(
        "nested",
        nested,
        [{"log": []}],
        {"pre": 1, "mid": 1, "inner": 1, "leaf": 1, "after": 1, "post": 1},
    ),
    Shape(
        "agent",
        agent,
        [{"messages": [HumanMessage("compute")]}],
        {"model": 2, "tools": 1},
        llm_calls=2,
        tool_calls=2,
    ),
    Shape(
        "chat",
        chat,
        [{"messages": [HumanMessage("hi")]}],
        {"prefix_node": 1, "chatbot": 1},
        llm_calls=1,
    ),
    Shape(
        "human",
        human,
        [{"log": []}, Command(resume="yes")],
        {"prepare": 1, "ask": 2, "finish": 1},
        needs_thread=True,
    ),
    Shape("failing", failing, [{"log": []}], {"ok": 1, "boom": 1}, raises=Boom),
]


async def sleep_async(seconds: float) -> None:
    """asyncio.sleep, importable by tests that build async nodes."""
    await asyncio.sleep(seconds)
