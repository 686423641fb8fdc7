"""Graphs whose state is a Pydantic model or a dataclass (typed outputs under v2).

LangGraph coerces ``version="v2"`` outputs (``GraphOutput.value``, ``values``
parts, state in ``checkpoints``/``debug`` parts) back into the state class; an
instrumented copy that loses what ``compile()`` set returns plain dicts instead.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.pregel import Pregel
from langgraph.types import Command, interrupt
from pydantic import BaseModel, Field

from tests.graphs import Shape


class Detail(BaseModel):
    """A custom type inside the state (checkpointed, so serialised)."""

    label: str = ""
    score: int = 0


class PState(BaseModel):
    """The parent's Pydantic state."""

    value: str = ""
    items: Annotated[list[str], operator.add] = Field(default_factory=list)
    detail: Detail | None = None


class PSub(BaseModel):
    """A subgraph's own Pydantic state, sharing two keys with the parent."""

    value: str = ""
    items: Annotated[list[str], operator.add] = Field(default_factory=list)
    depth: int = 0


@dataclass
class DState:
    """A dataclass state."""

    value: str = ""
    items: Annotated[list[str], operator.add] = field(default_factory=list)


def _append(tag: str) -> Any:
    def node(state: Any) -> dict[str, Any]:
        return {"value": f"{state.value}_{tag}", "items": [tag]}

    return node


def pydantic_sub() -> Pregel[Any, Any, Any, Any]:
    """Compiled subgraph with its own Pydantic schema: deep -> deeper."""
    g = StateGraph(PSub)
    g.add_node("deep", _append("deep"))
    g.add_node("deeper", _append("deeper"))
    g.add_edge(START, "deep")
    g.add_edge("deep", "deeper")
    return g.compile(name="psub")


def pydantic_nested() -> Pregel[Any, Any, Any, Any]:
    """a -> sub (own Pydantic schema) -> b, Pydantic state throughout."""

    def a(state: PState) -> dict[str, Any]:
        detail = Detail(label="a")
        return {"value": f"{state.value}_a", "items": ["a"], "detail": detail}

    g = StateGraph(PState)
    g.add_node("a", a)
    g.add_node("sub", pydantic_sub())
    g.add_node("b", _append("b"))
    g.add_edge(START, "a")
    g.add_edge("a", "sub")
    g.add_edge("sub", "b")
    return g.compile(name="pnested")


def pydantic_human() -> Pregel[Any, Any, Any, Any]:
    """prepare -> ask (interrupt) -> finish, Pydantic state with a checkpointer."""

    def prepare(state: PState) -> dict[str, Any]:
        return {"items": ["prepare"], "detail": Detail(label="ready", score=1)}

    def ask(state: PState) -> dict[str, Any]:
        answer = interrupt("approve?")
        return {"value": f"answer:{answer}", "items": ["ask"]}

    g = StateGraph(PState)
    g.add_node("prepare", prepare)
    g.add_node("ask", ask)
    g.add_node("finish", _append("finish"))
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "ask")
    g.add_edge("ask", "finish")
    return g.compile(name="phuman", checkpointer=InMemorySaver())


def dataclass_nested() -> Pregel[Any, Any, Any, Any]:
    """a -> sub (dataclass subgraph) -> b, dataclass state."""
    inner = StateGraph(DState)
    inner.add_node("deep", _append("deep"))
    inner.add_edge(START, "deep")
    g = StateGraph(DState)
    g.add_node("a", _append("a"))
    g.add_node("sub", inner.compile(name="dsub"))
    g.add_node("b", _append("b"))
    g.add_edge(START, "a")
    g.add_edge("a", "sub")
    g.add_edge("sub", "b")
    return g.compile(name="dnested", checkpointer=InMemorySaver())


TYPED_SHAPES: list[Shape] = [
    Shape(
        "pydantic_nested",
        pydantic_nested,
        [{"value": "x"}],
        {"a": 1, "sub": 1, "deep": 1, "deeper": 1, "b": 1},
    ),
    Shape(
        "pydantic_human",
        pydantic_human,
        [{"value": "x"}, Command(resume="yes")],
        {"prepare": 1, "ask": 2, "finish": 1},
        needs_thread=True,
    ),
    Shape(
        "dataclass_nested",
        dataclass_nested,
        [{"value": "x"}],
        {"a": 1, "sub": 1, "deep": 1, "b": 1},
        needs_thread=True,
    ),
]
