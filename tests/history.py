"""What a checkpointer stored, normalised for comparing a bare run with a traced one.

Checkpoint ids, task ids, interrupt ids, timestamps (and InMemorySaver's random
version suffix) differ between any two runs; everything else must be byte-for-byte
the same. Values are compared as raw bytes/strings with only those replaced, and
rows as a sorted multiset (parallel writes may land in either order in any run).
"""

from __future__ import annotations

import operator
import re
import sqlite3
from collections.abc import Callable
from typing import Annotated, Any, Protocol, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph
from langgraph.pregel import Pregel
from langgraph.types import Command, Durability, interrupt

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:\+00:00|Z)?"
#: InMemorySaver's channel versions end in a random float: "<32 digits>.<random()>"
#: (which may print as "4.30e-05").
_VERSION = r"(?<=\d{32}\.)[0-9.e+-]+"
#: Interrupt ids: a hash of the interrupted task's namespace (task ids inside).
_HEX32 = r"\b[0-9a-f]{32}\b"
_TEXT = re.compile(f"{_UUID}|{_TS}|{_VERSION}|{_HEX32}")
# In msgpack such a version is a str8 (0xd9, then its length, which the random
# suffix changes): the length byte goes too.
_BYTES = re.compile(
    rb"\xd9.\d{32}\.[0-9.e+-]+|" + f"{_UUID}|{_TS}|{_VERSION}|{_HEX32}".encode(),
    re.DOTALL,
)


def scrub(value: Any) -> Any:
    """``value`` with every id and timestamp replaced, recursively; bytes stay bytes."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _BYTES.sub(b"<id>", bytes(value))
    if isinstance(value, str):
        return _TEXT.sub("<id>", value)
    if isinstance(value, dict):
        items = [(scrub(k), scrub(v)) for k, v in value.items()]
        return ("dict", sorted(items, key=repr))
    if isinstance(value, list | tuple):
        return (type(value).__name__, [scrub(v) for v in value])
    if isinstance(value, set | frozenset):
        return ("set", sorted((scrub(v) for v in value), key=repr))
    return value


def sqlite_rows(path: str) -> dict[str, list[Any]]:
    """Every row of every table of a SqliteSaver database, scrubbed and sorted."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
            )
        ]
        out: dict[str, list[Any]] = {}
        for table in tables:
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            out[table] = sorted((scrub(tuple(r)) for r in rows), key=repr)
        return out
    finally:
        conn.close()


def memory_rows(saver: Any) -> dict[str, Any]:
    """What an InMemorySaver holds (checkpoints, writes, blobs), scrubbed."""
    return {
        "storage": scrub({k: dict(v) for k, v in saver.storage.items()}),
        "writes": sorted((scrub((k, v)) for k, v in saver.writes.items()), key=repr),
        "blobs": sorted((scrub((k, v)) for k, v in saver.blobs.items()), key=repr),
    }


class S(TypedDict):
    """A log of visited nodes."""

    log: Annotated[list[str], operator.add]


class Node(Protocol):
    """A node function (LangGraph's node protocols name the parameter ``state``)."""

    def __call__(self, state: S) -> dict[str, Any]: ...


def _visit(name: str) -> Node:
    def node(state: S) -> dict[str, Any]:
        return {"log": [name]}

    node.__name__ = name
    return node


def linear(checkpointer: Any) -> Pregel[Any, Any, Any, Any]:
    """a -> b -> c."""
    g = StateGraph(S)
    for name in "abc":
        g.add_node(name, _visit(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    return g.compile(checkpointer=checkpointer, name="linear")


def nested(checkpointer: Any) -> Pregel[Any, Any, Any, Any]:
    """pre -> mid (subgraph: inner (subgraph: leaf) -> after)."""
    leaf = StateGraph(S)
    leaf.add_node("leaf", _visit("leaf"))
    leaf.add_edge(START, "leaf")
    mid = StateGraph(S)
    mid.add_node("inner", leaf.compile(name="inner_graph"))
    mid.add_node("after", _visit("after"))
    mid.add_edge(START, "inner")
    mid.add_edge("inner", "after")
    g = StateGraph(S)
    g.add_node("pre", _visit("pre"))
    g.add_node("mid", mid.compile(name="mid_graph"))
    g.add_edge(START, "pre")
    g.add_edge("pre", "mid")
    return g.compile(checkpointer=checkpointer, name="nested")


def human(checkpointer: Any) -> Pregel[Any, Any, Any, Any]:
    """prepare -> ask (interrupt) -> finish."""

    def ask(state: S) -> dict[str, Any]:
        return {"log": [f"answer:{interrupt('approve?')}"]}

    g = StateGraph(S)
    g.add_node("prepare", _visit("prepare"))
    g.add_node("ask", ask)
    g.add_node("finish", _visit("finish"))
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "ask")
    g.add_edge("ask", "finish")
    return g.compile(checkpointer=checkpointer, name="human")


#: (graph factory, inputs in order: later ones resume the same thread).
HISTORIES: dict[str, tuple[Callable[[Any], Pregel[Any, Any, Any, Any]], list[Any]]] = {
    "linear": (linear, [{"log": []}, {"log": ["again"]}]),
    "nested": (nested, [{"log": []}]),
    "human": (human, [{"log": []}, Command(resume="yes")]),
}


def drive(
    graph: Pregel[Any, Any, Any, Any],
    inputs: list[Any],
    thread: str,
    durability: Durability,
) -> list[str]:
    """Run the inputs on one thread, update it once, then read its state back.

    Returns what the caller saw: outputs, ``get_state()`` (with subgraphs) and
    ``get_state_history()``, scrubbed of ids and timestamps.
    """
    config: RunnableConfig = {"configurable": {"thread_id": thread}}
    seen = [scrub(repr(graph.invoke(i, config, durability=durability))) for i in inputs]
    graph.update_state(config, {"log": ["edited"]})
    seen.append(scrub(repr(graph.get_state(config, subgraphs=True))))
    seen += [scrub(repr(s)) for s in graph.get_state_history(config)]
    return seen


async def adrive(
    graph: Pregel[Any, Any, Any, Any],
    inputs: list[Any],
    thread: str,
    durability: Durability,
) -> list[str]:
    """Async twin of :func:`drive`."""
    config: RunnableConfig = {"configurable": {"thread_id": thread}}
    seen = []
    for i in inputs:
        seen.append(scrub(repr(await graph.ainvoke(i, config, durability=durability))))
    await graph.aupdate_state(config, {"log": ["edited"]})
    seen.append(scrub(repr(await graph.aget_state(config, subgraphs=True))))
    seen += [scrub(repr(s)) async for s in graph.aget_state_history(config)]
    return seen


#: Columns whose value is the thread id (differs when both runs share a database).
THREAD_COLUMN = "thread_id"


def by_thread(rows: list[dict[str, Any]], thread: str) -> list[Any]:
    """Rows of one thread (dict rows), thread id dropped, scrubbed and sorted."""
    return sorted(
        (
            scrub(tuple(v for k, v in sorted(row.items()) if k != THREAD_COLUMN))
            for row in rows
            if row.get(THREAD_COLUMN) == thread
        ),
        key=repr,
    )
