"""A traced graph stores exactly the history the bare graph stores.

The same inputs on two threads (bare, traced) of two identical savers: what the
saver holds afterwards (every row and blob, ids and timestamps scrubbed), what the
caller got, and what ``get_state()`` / ``get_state_history()`` read back are the
same, on SQLite (sync and async savers) and in memory, for each durability mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.store.memory import InMemoryStore
from langgraph.types import Durability

import lg_otel
from tests.history import HISTORIES, adrive, drive, memory_rows, sqlite_rows

DURABILITIES: list[Durability] = ["sync", "async", "exit"]


@pytest.mark.parametrize("durability", DURABILITIES)
@pytest.mark.parametrize("shape", sorted(HISTORIES))
def test_sqlite_history_is_the_bare_graphs(
    shape: str, durability: Durability, tracing: Any, tmp_path: Path
) -> None:
    """SqliteSaver: stored rows, outputs and read-back state equal the bare run's."""
    provider, exporter = tracing
    build, inputs = HISTORIES[shape]
    seen, stored = [], []
    for side in ("bare", "traced"):
        path = str(tmp_path / f"{side}.db")
        with SqliteSaver.from_conn_string(path) as saver:
            graph = build(saver)
            if side == "traced":
                graph = lg_otel.instrument(graph, tracer_provider=provider)
            seen.append(drive(graph, inputs, "thread-1", durability))
        stored.append(sqlite_rows(path))
    assert seen[1] == seen[0]
    assert stored[1] == stored[0]
    assert stored[0]["checkpoints"]
    assert stored[0]["writes"]
    assert exporter.get_finished_spans(), "the traced graph emitted no spans"


@pytest.mark.parametrize("durability", DURABILITIES)
@pytest.mark.parametrize("shape", sorted(HISTORIES))
async def test_async_sqlite_history_is_the_bare_graphs(
    shape: str, durability: Durability, tracing: Any, tmp_path: Path
) -> None:
    """AsyncSqliteSaver: stored rows, outputs and read-back state equal the bare."""
    provider, _ = tracing
    build, inputs = HISTORIES[shape]
    seen, stored = [], []
    for side in ("bare", "traced"):
        path = str(tmp_path / f"{side}.db")
        async with AsyncSqliteSaver.from_conn_string(path) as saver:
            graph = build(saver)
            if side == "traced":
                graph = lg_otel.instrument(graph, tracer_provider=provider)
            seen.append(await adrive(graph, inputs, "thread-1", durability))
        stored.append(sqlite_rows(path))
    assert seen[1] == seen[0]
    assert stored[1] == stored[0]


@pytest.mark.parametrize("durability", DURABILITIES)
@pytest.mark.parametrize("shape", sorted(HISTORIES))
def test_in_memory_history_is_the_bare_graphs(
    shape: str, durability: Durability, tracing: Any
) -> None:
    """InMemorySaver: storage, writes and blobs equal the bare run's."""
    provider, _ = tracing
    build, inputs = HISTORIES[shape]
    seen, stored = [], []
    for side in ("bare", "traced"):
        saver = InMemorySaver()
        graph = build(saver)
        if side == "traced":
            graph = lg_otel.instrument(graph, tracer_provider=provider)
        seen.append(drive(graph, inputs, "thread-1", durability))
        stored.append(memory_rows(saver))
    assert seen[1] == seen[0]
    assert stored[1] == stored[0]


def _refusal(call: Any) -> tuple[type[BaseException], str]:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the refusal is what is compared
        return type(exc), str(exc)
    raise AssertionError("the run was not refused")


async def _refusal_async(call: Any) -> tuple[type[BaseException], str]:
    try:
        await call()
    except Exception as exc:  # noqa: BLE001 - the refusal is what is compared
        return type(exc), str(exc)
    raise AssertionError("the run was not refused")


@pytest.mark.parametrize("configurable", [None, {}], ids=["no-config", "empty"])
def test_missing_thread_id_is_refused_as_bare(
    configurable: dict[str, Any] | None, tracing: Any
) -> None:
    """No thread_id: the same ValueError as bare, not the saver's KeyError later."""
    provider, _ = tracing
    build, inputs = HISTORIES[sorted(HISTORIES)[0]]
    config: RunnableConfig | None = (
        None if configurable is None else {"configurable": configurable}
    )
    bare = build(InMemorySaver())
    traced = lg_otel.instrument(build(InMemorySaver()), tracer_provider=provider)
    expected = _refusal(lambda: bare.invoke(inputs[0], config))
    assert expected[0] is ValueError
    assert _refusal(lambda: traced.invoke(inputs[0], config)) == expected


async def test_missing_thread_id_is_refused_as_bare_async(
    tracing: Any, tmp_path: Path
) -> None:
    """The same under ainvoke on an async saver."""
    provider, _ = tracing
    build, inputs = HISTORIES[sorted(HISTORIES)[0]]
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "c.db")) as saver:
        bare = build(saver)
        traced = lg_otel.instrument(build(saver), tracer_provider=provider)
        expected = await _refusal_async(lambda: bare.ainvoke(inputs[0]))
        assert expected[0] is ValueError
        assert await _refusal_async(lambda: traced.ainvoke(inputs[0])) == expected


# --- the configs the saver is handed ---------------------------------------------


class _ConfigLog(InMemorySaver):
    """Records how each call's config looks: its ``configurable`` keys, and what the
    checkpointer and runtime keys hold (by exact type: a view is a subclass)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Any, ...]] = []

    def _note(self, method: str, config: Any) -> None:
        conf = dict(config.get("configurable") or {})
        lent = conf.get("__pregel_checkpointer")
        runtime = conf.get("__pregel_runtime")
        store = getattr(runtime, "store", None)
        self.seen.append(
            (
                method,
                sorted(conf),
                None if lent is None else type(lent).__name__,
                type(lent) is _ConfigLog if lent is not None else None,
                None if store is None else type(store) is InMemoryStore,
            )
        )

    def get_tuple(self, config: Any) -> Any:
        self._note("get_tuple", config)
        return super().get_tuple(config)

    def put(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        self._note("put", config)
        return super().put(config, *args, **kwargs)

    def put_writes(self, config: Any, *args: Any, **kwargs: Any) -> None:
        self._note("put_writes", config)
        super().put_writes(config, *args, **kwargs)

    async def aget_tuple(self, config: Any) -> Any:
        self._note("get_tuple", config)
        return await super().aget_tuple(config)

    async def aput(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        self._note("put", config)
        return await super().aput(config, *args, **kwargs)

    async def aput_writes(self, config: Any, *args: Any, **kwargs: Any) -> None:
        self._note("put_writes", config)
        await super().aput_writes(config, *args, **kwargs)


def _own_history(checkpointer: Any) -> Any:
    """pre -> mid, where mid is a subgraph compiled with checkpointer=True."""
    from langgraph.graph import START, StateGraph

    from tests.history import S

    inner = StateGraph(S)
    inner.add_node("leaf", lambda state: {"log": ["leaf"]})
    inner.add_edge(START, "leaf")
    outer = StateGraph(S)
    outer.add_node("pre", lambda state: {"log": ["pre"]})
    outer.add_node("mid", inner.compile(checkpointer=True))
    outer.add_edge(START, "pre")
    outer.add_edge("pre", "mid")
    return outer.compile(checkpointer=checkpointer, store=InMemoryStore())


@pytest.mark.parametrize("lend", [False, True], ids=["own", "lent"])
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("shape", ["linear", "nested", "own-history"])
def test_the_saver_gets_the_configs_of_the_bare_graph(
    shape: str, mode: str, lend: bool, tracing: Any
) -> None:
    """Every config the saver is handed has the bare run's keys, and the saver and
    store LangGraph lends through it are the user's own (never lg_otel's views):
    for the graph's own saver, one lent through the config, subgraphs, and a
    checkpointer=True subgraph."""
    import asyncio

    provider, exporter = tracing
    build = _own_history if shape == "own-history" else HISTORIES[shape][0]
    seen = []
    for side in ("bare", "traced"):
        saver = _ConfigLog()
        graph = build(None if lend else saver)
        if side == "traced":
            graph = lg_otel.instrument(graph, tracer_provider=provider)
        configurable: dict[str, Any] = {"thread_id": "t"}
        if lend:
            configurable["__pregel_checkpointer"] = saver
        config: Any = {"configurable": configurable}
        if mode == "sync":
            graph.invoke({"log": []}, config, durability="sync")
        else:
            asyncio.run(graph.ainvoke({"log": []}, config, durability="sync"))
        seen.append(saver.seen)
    # As a multiset: LangGraph submits a task's put_writes and the next
    # checkpoint's put to its background threads, and either may reach the saver
    # first (in the bare graph too: a saver that waits 0.2 ms in put_writes sees
    # the next put first). Which goes first says nothing of lg_otel.
    assert sorted(seen[1], key=repr) == sorted(seen[0], key=repr)
    assert seen[0]
    assert exporter.get_finished_spans(), "the traced graph emitted no spans"
