"""End to end: PostgresSaver, AsyncPostgresSaver and PostgresStore on a real server.

The server is Debian's PostgreSQL, started by the test setup on 127.0.0.1 (see
``tests/e2e/postgres.py``). Checked here: every saver and store call is a span in
the right place; the driver's own statement spans nest under the checkpoint span
that issued them; the stored history is byte-for-byte the bare graph's; and a
server that goes away mid-run fails the run with the driver's own exception.
"""

from __future__ import annotations

import contextlib
import operator
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.config import get_store
from langgraph.graph import START, StateGraph
from langgraph.pregel import Pregel
from langgraph.store.postgres import PostgresStore
from langgraph.types import Durability
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from psycopg.rows import dict_row

import lg_otel
from lg_otel import _names as n
from tests.conftest import by_name
from tests.e2e.postgres import Postgres
from tests.history import HISTORIES, adrive, by_thread, drive

pytestmark = pytest.mark.e2e

SECRET = "s3cr3t-payload"
#: The driver's statement spans (a database instrumentation in miniature).
STATEMENT = "postgresql"
_tracer: list[trace.Tracer] = []


class TracedCursor(psycopg.Cursor[Any]):
    """A psycopg cursor making one span per statement in the calling context.

    What the OTel psycopg instrumentation does (it wraps the cursor factory); that
    package pins the OTel SDK one patch below this project's, so this stands in.
    """

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        with _span(query):
            return super().execute(query, *args, **kwargs)

    def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        with _span(query):
            return super().executemany(query, *args, **kwargs)


class TracedAsyncCursor(psycopg.AsyncCursor[Any]):
    """Async twin of :class:`TracedCursor`."""

    async def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        with _span(query):
            return await super().execute(query, *args, **kwargs)

    async def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        with _span(query):
            return await super().executemany(query, *args, **kwargs)


def _span(query: Any) -> Any:
    text = query.decode() if isinstance(query, bytes) else str(query)
    verb = text.split(None, 1)[0].upper() if text.strip() else "?"
    if not _tracer:
        return contextlib.nullcontext()
    return _tracer[0].start_as_current_span(f"{STATEMENT} {verb}")


@pytest.fixture
def traced_db(tracing: Any) -> Iterator[Any]:
    """The in-memory provider; the driver's statement spans go to it too."""
    provider, exporter = tracing
    _tracer.append(provider.get_tracer("psycopg-statements"))
    yield provider, exporter
    _tracer.clear()


def _connect(url: str, cursor: type[psycopg.Cursor[Any]] | None = None) -> Any:
    conn = psycopg.connect(
        url, autocommit=True, prepare_threshold=0, row_factory=dict_row
    )
    if cursor is not None:
        conn.cursor_factory = cursor
    return conn


async def _aconnect(
    url: str, cursor: type[psycopg.AsyncCursor[Any]] | None = None
) -> Any:
    conn = await psycopg.AsyncConnection.connect(
        url, autocommit=True, prepare_threshold=0, row_factory=dict_row
    )
    if cursor is not None:
        conn.cursor_factory = cursor
    return conn


@pytest.fixture
def saver(postgres: Postgres) -> Iterator[PostgresSaver]:
    """A PostgresSaver on its own connection, tables set up."""
    with _connect(postgres.url) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        yield saver


@pytest.fixture
async def asaver(postgres: Postgres) -> AsyncIterator[AsyncPostgresSaver]:
    """An AsyncPostgresSaver on its own connection, tables set up."""
    conn = await _aconnect(postgres.url)
    try:
        saver = AsyncPostgresSaver(conn)
        await saver.setup()
        yield saver
    finally:
        await conn.close()


class S(TypedDict):
    """A log of visited nodes."""

    log: Annotated[list[str], operator.add]


def linear(checkpointer: Any = None, store: Any = None) -> Pregel[Any, Any, Any, Any]:
    """a -> b; ``a`` uses the store when there is one."""

    def a(state: S) -> dict[str, Any]:
        if store is not None:
            shelf = get_store()
            shelf.put(("users", SECRET), SECRET, {"v": SECRET})
            shelf.get(("users", SECRET), SECRET)
            shelf.search(("users", SECRET))
        return {"log": ["a"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", lambda state: {"log": ["b"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    return g.compile(checkpointer=checkpointer, store=store, name="pg")


def _thread() -> RunnableConfig:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def _parent(span: Any, spans: Any) -> Any:
    for other in spans:
        if span.parent is not None and other.context.span_id == span.parent.span_id:
            return other
    return None


def _calls(spans: Any) -> list[Any]:
    return [s for s in spans if s.name.startswith(f"{n.SPAN_CHECKPOINT} ")]


def test_postgres_saver_calls_are_spans_of_the_run(
    traced_db: Any, saver: PostgresSaver
) -> None:
    """PostgresSaver: get_tuple, put and put_writes spans under the run span."""
    provider, exporter = traced_db
    traced = lg_otel.instrument(linear(saver), tracer_provider=provider)
    assert traced.invoke({"log": []}, _thread()) == {"log": ["a", "b"]}
    spans = exporter.get_finished_spans()
    (run,) = by_name(spans, f"{n.SPAN_RUN} pg")
    calls = _calls(spans)
    assert {s.name.split()[1] for s in calls} >= {"get_tuple", "put", "put_writes"}
    for span in calls:
        assert _parent(span, spans) is run
        assert (span.attributes or {})[n.ATTR_CHECKPOINT_SAVER] == "PostgresSaver"
        assert span.status.status_code is not StatusCode.ERROR


async def test_async_postgres_saver_calls_are_spans_of_the_run(
    traced_db: Any, asaver: AsyncPostgresSaver
) -> None:
    """AsyncPostgresSaver under astream(): every call a span under the run span."""
    provider, exporter = traced_db
    traced = lg_otel.instrument(linear(asaver), tracer_provider=provider)
    async for _ in traced.astream({"log": []}, _thread()):
        pass
    spans = exporter.get_finished_spans()
    (run,) = by_name(spans, f"{n.SPAN_RUN} pg")
    calls = _calls(spans)
    assert {s.name.split()[1] for s in calls} >= {"get_tuple", "put", "put_writes"}
    for span in calls:
        assert _parent(span, spans) is run
        assert (span.attributes or {})[n.ATTR_CHECKPOINT_SAVER] == "AsyncPostgresSaver"


def test_postgres_store_calls_nest_under_the_node(
    traced_db: Any, postgres: Postgres
) -> None:
    """PostgresStore from node code: put/get/search spans under the task span."""
    provider, exporter = traced_db
    with _connect(postgres.url) as conn:
        store = PostgresStore(conn)
        store.setup()
        traced = lg_otel.instrument(linear(store=store), tracer_provider=provider)
        traced.invoke({"log": []})
    spans = exporter.get_finished_spans()
    (task,) = by_name(spans, f"{n.SPAN_TASK} a")
    stores = [s for s in spans if s.name.startswith(f"{n.SPAN_STORE} ")]
    assert sorted(s.name.split()[1] for s in stores) == ["get", "put", "search"]
    for span in stores:
        assert _parent(span, spans) is task
        assert (span.attributes or {})[n.ATTR_STORE_CLASS] == "PostgresStore"
        assert SECRET not in repr(dict(span.attributes or {}))
    (search,) = by_name(spans, f"{n.SPAN_STORE} search")
    assert (search.attributes or {})[n.ATTR_STORE_RESULTS] == 1


def test_driver_statement_spans_nest_under_checkpoint_put(
    traced_db: Any, postgres: Postgres
) -> None:
    """Each SQL statement's span (made in the driver) is a checkpoint span's child."""
    provider, exporter = traced_db
    with _connect(postgres.url, TracedCursor) as conn:
        saver = PostgresSaver(conn)
        saver.setup()
        exporter.clear()
        traced = lg_otel.instrument(linear(saver), tracer_provider=provider)
        traced.invoke({"log": []}, _thread())
    spans = exporter.get_finished_spans()
    statements = [s for s in spans if s.name.startswith(f"{STATEMENT} ")]
    assert statements
    for span in statements:
        parent = _parent(span, spans)
        assert parent is not None
        assert parent.name.startswith(f"{n.SPAN_CHECKPOINT} "), span.name
    puts = by_name(spans, f"{n.SPAN_CHECKPOINT} put")
    under_put = [s for s in statements if _parent(s, spans) in puts]
    assert any(s.name == f"{STATEMENT} INSERT" for s in under_put)


async def test_async_driver_statement_spans_nest_under_checkpoint_put(
    traced_db: Any, postgres: Postgres
) -> None:
    """The same with the async driver: statement spans inside aput's span."""
    provider, exporter = traced_db
    conn = await _aconnect(postgres.url, TracedAsyncCursor)
    try:
        saver = AsyncPostgresSaver(conn)
        await saver.setup()
        exporter.clear()
        traced = lg_otel.instrument(linear(saver), tracer_provider=provider)
        await traced.ainvoke({"log": []}, _thread())
    finally:
        await conn.close()
    spans = exporter.get_finished_spans()
    statements = [s for s in spans if s.name.startswith(f"{STATEMENT} ")]
    assert statements
    puts = by_name(spans, f"{n.SPAN_CHECKPOINT} put")
    for span in statements:
        parent = _parent(span, spans)
        assert parent is not None
        assert parent.name.startswith(f"{n.SPAN_CHECKPOINT} "), span.name
    assert any(_parent(s, spans) in puts for s in statements)


def _rows(url: str, thread: str) -> dict[str, list[Any]]:
    with _connect(url) as conn:
        return {
            table: by_thread(conn.execute(f"SELECT * FROM {table}").fetchall(), thread)
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        }


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
@pytest.mark.parametrize("shape", sorted(HISTORIES))
def test_postgres_history_is_the_bare_graphs(
    shape: str,
    durability: Durability,
    tracing: Any,
    saver: PostgresSaver,
    postgres: Postgres,
) -> None:
    """PostgresSaver: stored rows, outputs and read-back state equal the bare run's."""
    provider, _ = tracing
    build, inputs = HISTORIES[shape]
    bare = build(saver)
    traced = lg_otel.instrument(build(saver), tracer_provider=provider)
    threads = [str(uuid.uuid4()), str(uuid.uuid4())]
    seen = [
        drive(graph, inputs, thread, durability)
        for graph, thread in zip((bare, traced), threads, strict=True)
    ]
    assert seen[1] == seen[0]
    stored = [_rows(postgres.url, thread) for thread in threads]
    assert stored[1] == stored[0]
    assert stored[0]["checkpoints"]
    assert stored[0]["checkpoint_writes"]


@pytest.mark.parametrize("shape", sorted(HISTORIES))
async def test_async_postgres_history_is_the_bare_graphs(
    shape: str, tracing: Any, asaver: AsyncPostgresSaver, postgres: Postgres
) -> None:
    """AsyncPostgresSaver: stored rows and read-back state equal the bare run's."""
    provider, _ = tracing
    build, inputs = HISTORIES[shape]
    bare = build(asaver)
    traced = lg_otel.instrument(build(asaver), tracer_provider=provider)
    threads = [str(uuid.uuid4()), str(uuid.uuid4())]
    seen = [
        await adrive(graph, inputs, thread, "async")
        for graph, thread in zip((bare, traced), threads, strict=True)
    ]
    assert seen[1] == seen[0]
    stored = [_rows(postgres.url, thread) for thread in threads]
    assert stored[1] == stored[0]


class WatchedSaver(PostgresSaver):
    """A PostgresSaver that keeps each exception its saves raise (the truth)."""

    raised: list[tuple[str, BaseException]]

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        try:
            return super().put_writes(*args, **kwargs)
        except BaseException as exc:
            self.raised.append(("put_writes", exc))
            raise

    def put(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().put(*args, **kwargs)
        except BaseException as exc:
            self.raised.append(("put", exc))
            raise


def test_server_stopped_mid_run_fails_with_the_drivers_error(tracing: Any) -> None:
    """PostgreSQL goes away in a node: the driver's exception, and an error span."""
    provider, exporter = tracing
    with Postgres() as server:
        conn = _connect(server.url)
        saver = WatchedSaver(conn)
        saver.raised = []
        saver.setup()

        def a(state: S) -> dict[str, Any]:
            server.stop()  # by its PID, while the run is between two saves
            return {"log": ["a"]}

        g = StateGraph(S)
        g.add_node("a", a)
        g.add_node("b", lambda state: {"log": ["b"]})
        g.add_edge(START, "a")
        g.add_edge("a", "b")
        traced = lg_otel.instrument(
            g.compile(checkpointer=saver, name="pg"), tracer_provider=provider
        )
        with pytest.raises(psycopg.OperationalError) as caught:
            traced.invoke({"log": []}, _thread(), durability="sync")
        conn.close()
    # The first failed save may run in the background (LangGraph goes on until
    # the next one fails in the caller's thread): the caller gets the driver's
    # exception of one of them, the very object the driver raised.
    assert any(caught.value is exc for _, exc in saver.raised)
    failed = sorted(
        (s for s in _calls(exporter.get_finished_spans())
         if s.status.status_code is StatusCode.ERROR),
        key=lambda s: s.start_time,
    )  # fmt: skip
    assert [s.name for s in failed] == [
        f"{n.SPAN_CHECKPOINT} {op}" for op, _ in saver.raised
    ]
    for span, (_, exc) in zip(failed, saver.raised, strict=True):
        attrs = span.attributes or {}
        assert attrs[n.ATTR_ERROR_TYPE] == type(exc).__qualname__
        assert attrs[n.ATTR_ERROR_TYPE] == "OperationalError"
        assert attrs[n.ATTR_STATUS] == n.STATUS_ERROR
    (run,) = by_name(exporter.get_finished_spans(), f"{n.SPAN_RUN} pg")
    assert run.status.status_code is StatusCode.ERROR
