"""Interrupt and resume under LANGGRAPH_STRICT_MSGPACK, bare and instrumented.

Run as ``python -m tests.strict_msgpack_probe`` with the variable set before
LangGraph is imported (it is read at import). Prints one JSON object: for each
case, the type the resumed node saw for the state's Pydantic value, and every
log line or warning that mentions blocked deserialisation.
"""

from __future__ import annotations

import json
import logging
import uuid
import warnings
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.pregel import Pregel
from langgraph.types import Command, interrupt
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

import lg_otel

#: LangGraph's config key for a checkpointer handed to a graph at run time (the
#: LangGraph API server injects its own this way, parents lend theirs to subgraphs).
CHECKPOINTER_KEY = "__pregel_checkpointer"


class Detail(BaseModel):
    """A custom type in the state: strict msgpack only revives allow-listed ones."""

    label: str


class State(TypedDict, total=False):
    """A TypedDict state, so nothing re-validates the value into its class."""

    detail: Detail
    seen: str


class Outer(TypedDict, total=False):
    """The parent's state: it knows nothing of ``Detail``."""

    seen: str


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _inner(instrumented: bool, checkpointer: Any) -> Pregel[Any, Any, Any, Any]:
    def make(state: State) -> dict[str, Any]:
        return {"detail": Detail(label="x")}

    def ask(state: State) -> dict[str, Any]:
        interrupt("ok?")
        return {"seen": type(state["detail"]).__name__}

    g = StateGraph(State)
    g.add_node("make", make)
    g.add_node("ask", ask)
    g.add_edge(START, "make")
    g.add_edge("make", "ask")
    graph = g.compile(name="inner", checkpointer=checkpointer)
    if instrumented:
        graph = lg_otel.instrument(graph, tracer_provider=TracerProvider())
    return graph


def subgraph_case(instrumented: bool) -> str:
    """The (maybe instrumented) subgraph inherits its bare parent's checkpointer.

    Only the subgraph's own allow-list names ``Detail``: the parent's does not.
    """
    outer = StateGraph(Outer)
    outer.add_node("sub", _inner(instrumented, None))
    outer.add_edge(START, "sub")
    parent = outer.compile(name="outer", checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
    parent.invoke({}, config)
    return str(parent.invoke(Command(resume="go"), config).get("seen"))


def config_case(instrumented: bool) -> str:
    """A top-level graph gets its checkpointer through config, as under the server."""
    graph = _inner(instrumented, None)
    saver = InMemorySaver()
    config: RunnableConfig = {
        "configurable": {"thread_id": str(uuid.uuid4()), CHECKPOINTER_KEY: saver}
    }
    graph.invoke({}, config)
    return str(graph.invoke(Command(resume="go"), config).get("seen"))


def main() -> None:
    """Run every case and print what each resumed node saw."""
    lines = _Lines()
    logging.getLogger().addHandler(lines)
    logging.getLogger().setLevel(logging.DEBUG)
    result: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, case in (("subgraph", subgraph_case), ("config", config_case)):
            for instrumented in (False, True):
                key = f"{name}-{'traced' if instrumented else 'bare'}"
                before = len(lines.lines)
                seen = case(instrumented)
                said = lines.lines[before:] + [str(w.message) for w in caught]
                caught.clear()
                blocked = [s for s in said if "locked deserializ" in s]
                result[key] = {"seen": seen, "blocked": blocked}
    from langgraph._internal import _serde

    # The flag as LangGraph reads it (an implicit re-export, hence Any).
    serde: Any = _serde
    result["strict"] = bool(serde.STRICT_MSGPACK_ENABLED)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
