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
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

import lg_otel
from tests.history import HISTORIES, adrive, drive, memory_rows, sqlite_rows

DURABILITIES = ["sync", "async", "exit"]


@pytest.mark.parametrize("durability", DURABILITIES)
@pytest.mark.parametrize("shape", sorted(HISTORIES))
def test_sqlite_history_is_the_bare_graphs(
    shape: str, durability: str, tracing: Any, tmp_path: Path
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
    shape: str, durability: str, tracing: Any, tmp_path: Path
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
    shape: str, durability: str, tracing: Any
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
    config = None if configurable is None else {"configurable": configurable}
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
