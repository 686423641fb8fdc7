"""Checkpointer and store calls: spans, parentage, metrics, failures and privacy.

Real savers and stores (``InMemorySaver``, ``SqliteSaver``, ``AsyncSqliteSaver``,
``InMemoryStore``), real graphs, in-memory OTel exporters and readers, real
prometheus_client registries.
"""

from __future__ import annotations

import asyncio
import inspect
import operator
import sqlite3
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from typing import Annotated, Any, TypedDict, cast

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.config import get_config, get_store
from langgraph.graph import START, StateGraph
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.types import StateSnapshot
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry

import lg_otel
from lg_otel import _names as n
from tests.conftest import (
    SPAN_PATHS,
    RaisingOnEnd,
    by_name,
    provider_for,
    start_ns,
    thread_config,
)

SECRET = "s3cr3t-payload"


@pytest.fixture(params=SPAN_PATHS)
def tracing(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """An in-memory provider, on both of lg_otel's span paths."""
    provider, exporter = provider_for(str(request.param))
    yield provider, exporter
    provider.shutdown()


class S(TypedDict):
    """A log of visited nodes."""

    log: Annotated[list[str], operator.add]


class Recording(InMemorySaver):
    """An InMemorySaver that records each top-level call made to it (the truth)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self._depth = threading.local()

    def _enter(self, name: str) -> bool:
        depth = getattr(self._depth, "n", 0)
        self._depth.n = depth + 1
        if depth == 0:
            self.calls.append(name.removeprefix("a"))
        return True

    def _leave(self) -> None:
        self._depth.n -= 1

    def get_tuple(self, config: Any) -> Any:
        self._enter("get_tuple")
        try:
            return super().get_tuple(config)
        finally:
            self._leave()

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self._enter("put")
        try:
            return super().put(*args, **kwargs)
        finally:
            self._leave()

    def put_writes(
        self, config: Any, writes: Any, task_id: str, task_path: str = ""
    ) -> None:
        self._enter("put_writes")
        try:
            return super().put_writes(config, writes, task_id, task_path)
        finally:
            self._leave()

    def list(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        self._enter("list")
        try:
            yield from super().list(*args, **kwargs)
        finally:
            self._leave()


def linear(
    checkpointer: Any = None, store: BaseStore | None = None, name: str = "cp"
) -> Pregel[Any, Any, Any, Any]:
    """a -> b; ``a`` writes to and searches the store when there is one."""

    def a(state: S) -> dict[str, Any]:
        if store is not None:
            shelf = get_store()
            shelf.put(("users", SECRET), SECRET, {"v": SECRET})
            shelf.get(("users", SECRET), SECRET)
            shelf.search(("users",))
            shelf.list_namespaces()
            shelf.delete(("users", SECRET), SECRET)
        return {"log": ["a"]}

    def b(state: S) -> dict[str, Any]:
        return {"log": ["b"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    return g.compile(checkpointer=checkpointer, store=store, name=name)


def nested(checkpointer: Any) -> Pregel[Any, Any, Any, Any]:
    """outer: pre -> mid (subgraph: inner (subgraph: leaf)); savers inherited."""
    leaf = StateGraph(S)
    leaf.add_node("leaf", lambda state: {"log": ["leaf"]})
    leaf.add_edge(START, "leaf")
    mid = StateGraph(S)
    mid.add_node("inner", leaf.compile(name="inner_graph"))
    mid.add_edge(START, "inner")
    outer = StateGraph(S)
    outer.add_node("pre", lambda state: {"log": ["pre"]})
    outer.add_node("mid", mid.compile(name="mid_graph"))
    outer.add_edge(START, "pre")
    outer.add_edge("pre", "mid")
    return outer.compile(checkpointer=checkpointer, name="nested")


def checkpoint_spans(spans: Any) -> list[ReadableSpan]:
    """The ``checkpoint *`` spans."""
    return [s for s in spans if s.name.startswith(f"{n.SPAN_CHECKPOINT} ")]


def store_spans(spans: Any) -> list[ReadableSpan]:
    """The ``store *`` spans."""
    return [s for s in spans if s.name.startswith(f"{n.SPAN_STORE} ")]


def parent_of(span: ReadableSpan, spans: Any) -> ReadableSpan | None:
    """The span's parent among ``spans``."""
    if span.parent is None:
        return None
    for other in spans:
        if other.context.span_id == span.parent.span_id:
            return other  # type: ignore[no-any-return]
    return None


def all_text(span: ReadableSpan) -> str:
    """Every attribute and event value of a span, as one string."""
    parts = [repr(dict(span.attributes or {}))]
    parts += [repr(dict(e.attributes or {})) for e in span.events]
    parts.append(repr(span.status.description))
    return " ".join(parts)


# --- spans of a run ---------------------------------------------------------------


def test_every_checkpointer_call_of_a_run_is_one_span(tracing: Any) -> None:
    """Each call the run makes to its saver is one ``checkpoint {op}`` span."""
    provider, exporter = tracing
    saver = Recording()
    traced = lg_otel.instrument(linear(saver), tracer_provider=provider)
    traced.invoke({"log": []}, thread_config())
    spans = checkpoint_spans(exporter.get_finished_spans())
    assert sorted(s.name for s in spans) == sorted(
        f"{n.SPAN_CHECKPOINT} {call}" for call in saver.calls
    )
    assert {"get_tuple", "put", "put_writes"} <= set(saver.calls)


def test_checkpoint_spans_carry_operation_and_saver_class(tracing: Any) -> None:
    """Each checkpoint span names its operation and the saver's class name."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(InMemorySaver()), tracer_provider=provider)
    traced.invoke({"log": []}, thread_config())
    spans = checkpoint_spans(exporter.get_finished_spans())
    assert spans
    for span in spans:
        attrs = span.attributes or {}
        operation = attrs[n.ATTR_CHECKPOINT_OPERATION]
        assert span.name == f"{n.SPAN_CHECKPOINT} {operation!s}"
        assert attrs[n.ATTR_CHECKPOINT_SAVER] == "InMemorySaver"
        assert attrs[n.ATTR_STATUS] == n.STATUS_OK


def test_checkpoint_spans_of_a_run_are_children_of_the_run_span(tracing: Any) -> None:
    """A top-level run's checkpoint spans hang under its run span."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(InMemorySaver()), tracer_provider=provider)
    traced.invoke({"log": []}, thread_config())
    spans = exporter.get_finished_spans()
    (run,) = by_name(spans, f"{n.SPAN_RUN} cp")
    for span in checkpoint_spans(spans):
        assert parent_of(span, spans) is run, span.name


def test_put_writes_names_the_task_and_counts_its_writes(tracing: Any) -> None:
    """A task's put_writes span carries its task id and how many writes it saves."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(InMemorySaver()), tracer_provider=provider)
    traced.invoke({"log": []}, thread_config())
    spans = exporter.get_finished_spans()
    (task_a,) = by_name(spans, f"{n.SPAN_TASK} a")
    task_id = (task_a.attributes or {})[n.ATTR_TASK_ID]
    writes = [
        s
        for s in by_name(spans, f"{n.SPAN_CHECKPOINT} put_writes")
        if (s.attributes or {}).get(n.ATTR_TASK_ID) == task_id
    ]
    assert len(writes) == 1
    # a writes its one channel ("log") and the branch to b.
    assert (writes[0].attributes or {})[n.ATTR_CHECKPOINT_WRITES] == 2


def test_subgraph_calls_nest_under_the_task_that_runs_the_subgraph(
    tracing: Any,
) -> None:
    """Checkpoint spans of an inherited saver go under the subgraph's parent task."""
    provider, exporter = tracing
    traced = lg_otel.instrument(nested(InMemorySaver()), tracer_provider=provider)
    traced.invoke({"log": []}, thread_config())
    spans = exporter.get_finished_spans()
    (mid,) = by_name(spans, f"{n.SPAN_TASK} mid")
    (inner,) = by_name(spans, f"{n.SPAN_TASK} inner")
    depths = {1: mid, 2: inner}
    seen = set()
    for span in checkpoint_spans(spans):
        ns = (span.attributes or {}).get(n.ATTR_CHECKPOINT_NS)
        if ns is None:
            continue
        depth = str(ns).count("|") + 1
        assert parent_of(span, spans) is depths[depth], (span.name, ns)
        seen.add(depth)
    assert seen == {1, 2}


@pytest.mark.parametrize("placement", ["called", "node"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_own_history_subgraph_nests_under_the_calling_task(
    tracing: Any, mode: str, placement: str
) -> None:
    """checkpointer=True subgraph (no task ids in its namespace): its tasks and its
    checkpoint calls go under the task that runs it, its tasks with its namespace.

    Under asyncio, a save can run in a context copied from one of the subgraph's
    own tasks, so the context alone would put it under that (ended) task.
    """
    provider, exporter = tracing
    leaf = StateGraph(S)
    leaf.add_node("leaf1", lambda state: {"log": ["leaf1"]})
    leaf.add_node("leaf2", lambda state: {"log": ["leaf2"]})
    leaf.add_edge(START, "leaf1")
    leaf.add_edge("leaf1", "leaf2")
    sub = leaf.compile(checkpointer=True, name="sub")

    def mid(state: S) -> Any:
        return sub.invoke(state)

    async def amid(state: S) -> Any:
        return await sub.ainvoke(state)

    g = StateGraph(S)
    if placement == "node":
        g.add_node("mid", sub)
    else:
        g.add_node("mid", mid if mode == "sync" else amid)
    g.add_edge(START, "mid")
    traced = lg_otel.instrument(
        g.compile(checkpointer=InMemorySaver(), name="outer"), tracer_provider=provider
    )
    if mode == "sync":
        traced.invoke({"log": []}, thread_config())
    else:
        asyncio.run(traced.ainvoke({"log": []}, thread_config()))
    spans = exporter.get_finished_spans()
    (task,) = by_name(spans, f"{n.SPAN_TASK} mid")
    inner = [
        s
        for s in checkpoint_spans(spans)
        if (s.attributes or {}).get(n.ATTR_CHECKPOINT_NS) == "mid"
    ]
    assert {s.name.split()[1] for s in inner} >= {"get_tuple", "put", "put_writes"}
    for span in inner:
        assert parent_of(span, spans) is task, span.name
    for name in ("leaf1", "leaf2"):
        (leaf_task,) = by_name(spans, f"{n.SPAN_TASK} {name}")
        assert parent_of(leaf_task, spans) is task
        assert (leaf_task.attributes or {})[n.ATTR_NAMESPACE] == "mid"


def test_checkpointer_given_through_config_is_traced(tracing: Any) -> None:
    """A saver passed at run time (as the LangGraph API server does) is traced."""
    provider, exporter = tracing
    saver = InMemorySaver()
    traced = lg_otel.instrument(linear(), tracer_provider=provider)
    config = thread_config()
    config["configurable"]["__pregel_checkpointer"] = saver
    traced.invoke({"log": []}, config)
    spans = checkpoint_spans(exporter.get_finished_spans())
    assert {(s.attributes or {})[n.ATTR_CHECKPOINT_SAVER] for s in spans} == {
        "InMemorySaver"
    }
    assert saver.get_tuple(config) is not None  # the user's saver holds the thread


async def test_async_runs_trace_the_async_saver_methods(tracing: Any) -> None:
    """astream() calls aget_tuple/aput/aput_writes: spans name them without 'a'."""
    provider, exporter = tracing
    saver = Recording()
    traced = lg_otel.instrument(linear(saver), tracer_provider=provider)
    async for _ in traced.astream({"log": []}, thread_config()):
        pass
    spans = checkpoint_spans(exporter.get_finished_spans())
    assert sorted(s.name for s in spans) == sorted(
        f"{n.SPAN_CHECKPOINT} {call}" for call in saver.calls
    )


# --- the user's saver ---------------------------------------------------------------


def _view_seen_by_a_node(saver: BaseCheckpointSaver[Any]) -> Any:
    seen: list[Any] = []

    def grab(state: S) -> dict[str, Any]:
        seen.append(get_config()["configurable"]["__pregel_checkpointer"])
        return {"log": ["grab"]}

    g = StateGraph(S)
    g.add_node("grab", grab)
    g.add_edge(START, "grab")
    traced = lg_otel.instrument(g.compile(checkpointer=saver))
    traced.invoke({"log": []}, thread_config())
    return seen[0]


def test_the_run_sees_an_instance_of_the_users_saver_class() -> None:
    """isinstance checks on the run's saver hold (its class and the base class)."""
    view = _view_seen_by_a_node(InMemorySaver())
    assert isinstance(view, InMemorySaver)
    assert isinstance(view, BaseCheckpointSaver)


def test_the_run_s_saver_answers_with_the_users_attributes() -> None:
    """serde, config_specs, get_next_version and storage are the user's own."""
    saver = InMemorySaver()
    view = _view_seen_by_a_node(saver)
    assert view.serde is saver.serde
    assert view.storage is saver.storage
    assert view.config_specs == saver.config_specs
    assert view.get_next_version.__self__ is saver
    assert view.get_next_version.__func__ is InMemorySaver.get_next_version


def test_put_writes_keeps_the_savers_signature() -> None:
    """LangGraph reads put_writes' signature (task_path): the view's is the saver's."""
    saver = InMemorySaver()
    view = _view_seen_by_a_node(saver)
    for name in ("put_writes", "aput_writes", "put", "aget_tuple"):
        assert inspect.signature(getattr(view, name)) == inspect.signature(
            getattr(saver, name)
        ), name
    assert inspect.iscoroutinefunction(view.aput)


def test_the_users_saver_and_graph_are_untouched(tracing: Any) -> None:
    """The original graph keeps its own saver object, of its own class."""
    provider, _ = tracing
    saver = InMemorySaver()
    graph = linear(saver)
    before = dict(vars(saver))
    traced = lg_otel.instrument(graph, tracer_provider=provider)
    config = thread_config()
    traced.invoke({"log": []}, config)
    assert graph.checkpointer is saver
    assert traced.checkpointer is saver
    assert type(saver) is InMemorySaver
    assert set(vars(saver)) == set(before)
    assert saver.get_tuple(config) is not None


def test_the_graphs_keep_their_own_saver_while_a_run_is_on(tracing: Any) -> None:
    """The run's view is the saver of a copy made for the run: the graph the
    caller holds, and the one it instrumented, hold their own saver throughout."""
    provider, exporter = tracing
    saver = InMemorySaver()
    held: dict[str, Any] = {}
    seen: list[tuple[bool, bool]] = []

    def node(state: S) -> dict[str, Any]:
        seen.append(
            (held["graph"].checkpointer is saver, held["traced"].checkpointer is saver)
        )
        return {"log": ["a"]}

    builder = StateGraph(S)
    builder.add_node("a", node)
    builder.add_edge(START, "a")
    graph = builder.compile(checkpointer=saver, name="cp")
    traced = lg_otel.instrument(graph, tracer_provider=provider)
    held.update(graph=graph, traced=traced)
    traced.invoke({"log": []}, thread_config())
    assert seen == [(True, True)]
    assert checkpoint_spans(exporter.get_finished_spans())  # the run's calls traced


def test_allow_list_clone_is_still_traced_and_leaves_the_saver_alone() -> None:
    """with_allowlist on the view returns a traced view of the saver's clone."""
    # A strict msgpack serializer: an allow-list makes a new one (and a clone).
    saver = InMemorySaver(serde=JsonPlusSerializer(allowed_msgpack_modules=None))
    view = _view_seen_by_a_node(saver)
    clone = view.with_allowlist([("tests.test_checkpoints", "S")])
    assert isinstance(clone, InMemorySaver)
    assert type(clone) is type(view)
    assert clone.serde is not saver.serde
    assert view.serde is saver.serde


def test_a_graph_without_checkpointer_or_store_gets_no_views(tracing: Any) -> None:
    """No saver, no store: nothing is wrapped and no checkpoint span appears."""
    provider, exporter = tracing
    seen: list[Any] = []

    def grab(state: S) -> dict[str, Any]:
        seen.append(dict(get_config()["configurable"]))
        return {"log": ["grab"]}

    g = StateGraph(S)
    g.add_node("grab", grab)
    g.add_edge(START, "grab")
    traced = lg_otel.instrument(g.compile(), tracer_provider=provider)
    traced.invoke({"log": []})
    assert seen[0]["__pregel_checkpointer"] is None
    assert seen[0]["__pregel_runtime"].store is None
    spans = exporter.get_finished_spans()
    assert checkpoint_spans(spans) == []
    assert store_spans(spans) == []


# --- failures -----------------------------------------------------------------------


class Boom(RuntimeError):
    """What the failing saver and store raise."""


class FailingSaver(InMemorySaver):
    """Its put raises Boom (with a message quoting a key) after the first one."""

    def __init__(self) -> None:
        super().__init__()
        self.raised: list[BaseException] = []

    def put(self, *args: Any, **kwargs: Any) -> Any:
        error = Boom(f"cannot save thread {SECRET}")
        self.raised.append(error)
        raise error


def test_a_saver_error_reaches_the_caller_as_the_same_object(tracing: Any) -> None:
    """The saver's exception propagates unchanged; its span says ERROR + error.type."""
    provider, exporter = tracing
    saver = FailingSaver()
    traced = lg_otel.instrument(linear(saver), tracer_provider=provider)
    with pytest.raises(Boom) as caught:
        traced.invoke({"log": []}, thread_config(), durability="sync")
    # LangGraph 1.1 tries the save once more on the way out: one span per try.
    assert any(caught.value is error for error in saver.raised)
    spans = by_name(exporter.get_finished_spans(), f"{n.SPAN_CHECKPOINT} put")
    assert len(spans) == len(saver.raised)
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        attrs = span.attributes or {}
        assert attrs[n.ATTR_ERROR_TYPE] == "Boom"
        assert attrs[n.ATTR_STATUS] == n.STATUS_ERROR
        assert [e.name for e in span.events] == [n.EVENT_EXCEPTION]
        assert SECRET not in all_text(span)


class FailingStore(InMemoryStore):
    """Its search raises Boom."""

    raised: BaseException | None = None

    def batch(self, ops: Any) -> Any:
        ops = list(ops)
        if any(type(op).__name__ == "SearchOp" for op in ops):
            FailingStore.raised = Boom(f"bad query {SECRET}")
            raise FailingStore.raised
        return super().batch(ops)


def test_a_store_error_reaches_the_node_as_the_same_object(tracing: Any) -> None:
    """A store's exception reaches node code unchanged; its span says ERROR."""
    provider, exporter = tracing
    caught: list[BaseException] = []

    def a(state: S) -> dict[str, Any]:
        try:
            get_store().search(("users",))
        except Boom as exc:
            caught.append(exc)
        return {"log": ["a"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_edge(START, "a")
    traced = lg_otel.instrument(
        g.compile(store=FailingStore()), tracer_provider=provider
    )
    traced.invoke({"log": []})
    assert caught == [FailingStore.raised]
    (span,) = by_name(exporter.get_finished_spans(), f"{n.SPAN_STORE} search")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})[n.ATTR_ERROR_TYPE] == "Boom"
    assert SECRET not in all_text(span)


class StoreFailsNode(InMemoryStore):
    """Its put raises Boom, with a message quoting the key and value."""

    def batch(self, ops: Any) -> Any:
        ops = list(ops)
        if any(type(op).__name__ == "PutOp" for op in ops):
            raise Boom(f"cannot write key {SECRET}")
        return super().batch(ops)


def _store_graph(body: Any) -> Any:
    g = StateGraph(S)
    g.add_node("a", body)
    g.add_edge(START, "a")
    return g.compile(store=StoreFailsNode())


def _store_put(state: S) -> dict[str, Any]:
    get_store().put(("users",), "k", {"v": 1})
    return {"log": ["a"]}


def _store_put_wrapped(state: S) -> dict[str, Any]:
    try:
        get_store().put(("users",), "k", {"v": 1})
    except Boom as exc:
        raise ValueError("could not remember") from exc
    return {"log": ["a"]}


@pytest.mark.parametrize("case", ["saver", "store", "store-wrapped"])
def test_a_call_error_that_fails_the_run_is_reported_by_type_only(
    tracing: Any, case: str
) -> None:
    """A saver's or store's exception (or one raised from it) that fails the task and
    the run: their spans and log lines name its class, never its message or
    traceback (a driver's message can quote keys and values)."""
    from structlog.testing import capture_logs

    provider, exporter = tracing
    expected: type[Exception]
    if case == "saver":
        graph: Any = linear(FailingSaver())
        kind, expected = "Boom", Boom
    else:
        body = _store_put if case == "store" else _store_put_wrapped
        graph = _store_graph(body)
        kind = "Boom" if case == "store" else "ValueError"
        expected = Boom if case == "store" else ValueError
    traced = lg_otel.instrument(
        graph, tracer_provider=provider, config=lg_otel.Config(logs=True)
    )
    durability: Any = {"durability": "sync"} if case == "saver" else {}
    with capture_logs() as logs, pytest.raises(expected):
        traced.invoke({"log": []}, thread_config(), **durability)
    spans = exporter.get_finished_spans()
    failed = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    names = {s.name.split()[0] for s in failed}
    assert n.SPAN_RUN in names
    if case != "saver":
        assert n.SPAN_TASK in names
    for span in failed:
        assert SECRET not in all_text(span), span.name
        if not span.name.startswith((n.SPAN_CHECKPOINT, n.SPAN_STORE)):
            assert (span.attributes or {})[n.ATTR_ERROR_TYPE] == kind
            assert [dict(e.attributes or {}) for e in span.events] == [
                {n.ATTR_EXCEPTION_TYPE: kind}
            ]
    assert SECRET not in repr(logs)
    assert all(n.FIELD_EXC_INFO not in event for event in logs)
    assert any(event.get(n.FIELD_ERROR_TYPE) == kind for event in logs)


def test_a_failing_tracer_never_fails_the_saver_call() -> None:
    """A span processor that raises: the run's output and stored history are intact."""
    from opentelemetry.sdk.trace import SpanProcessor

    class Raising(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            raise RuntimeError("processor down")

        def on_end(self, span: Any) -> None:
            raise RuntimeError("processor down")

    provider = TracerProvider()
    provider.add_span_processor(Raising())
    saver = InMemorySaver()
    traced = lg_otel.instrument(linear(saver), tracer_provider=provider)
    config = thread_config()
    assert traced.invoke({"log": []}, config) == {"log": ["a", "b"]}
    assert traced.get_state(config).values == {"log": ["a", "b"]}


def test_a_span_failing_to_end_leaves_the_metrics_whole() -> None:
    """A processor that raises as each span ends: the span sink's failures are
    counted, and the metrics sink after it still observes every task and every
    saver call."""
    provider = TracerProvider()
    provider.add_span_processor(RaisingOnEnd())
    registry = CollectorRegistry()
    saver = Recording()
    traced = lg_otel.instrument(
        linear(saver), tracer_provider=provider, registry=registry
    )
    assert traced.invoke({"log": []}, thread_config()) == {"log": ["a", "b"]}

    def count(metric_name: str) -> float:
        return sum(
            sample.value
            for metric in registry.collect()
            if metric.name == metric_name
            for sample in metric.samples
            if sample.name.endswith("_count")
        )

    errors = registry.get_sample_value(
        "lg_otel_internal_errors_total", {"component": n.COMPONENT_SPANS}
    )
    # Each task, each call and the run: every span's end failed, and was counted.
    assert errors == 2 + len(saver.calls) + 1
    assert count("langgraph_task_duration_seconds") == 2
    assert count("langgraph_checkpoint_duration_seconds") == len(saver.calls) > 0


class RaisingOnPut(RaisingOnEnd):
    """Fails as a ``checkpoint put`` span ends (one kind of a batch's calls)."""

    def on_end(self, span: ReadableSpan) -> None:
        """Fail for put spans only."""
        if span.name == f"{n.SPAN_CHECKPOINT} put":
            super().on_end(span)


def test_a_span_failing_among_a_batchs_calls_loses_that_span_alone() -> None:
    """A run's calls reach the sinks together: a span that fails to be handed
    on (a processor raising for ``checkpoint put`` alone) is counted, and every
    other call of the same batch still gets its span, and every call its
    observation."""
    provider = TracerProvider()
    provider.add_span_processor(RaisingOnPut())
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    saver = Recording()
    traced = lg_otel.instrument(
        linear(saver), tracer_provider=provider, registry=registry
    )
    assert traced.invoke({"log": []}, thread_config()) == {"log": ["a", "b"]}
    puts = saver.calls.count("put")
    assert puts >= 2
    assert len(saver.calls) > puts  # calls of other kinds in the same batch
    errors = registry.get_sample_value(
        "lg_otel_internal_errors_total", {"component": n.COMPONENT_SPANS}
    )
    assert errors == puts
    names = [s.name for s in checkpoint_spans(exporter.get_finished_spans())]
    assert sorted(names) == sorted(
        f"{n.SPAN_CHECKPOINT} {c}" for c in saver.calls if c != "put"
    )
    observed = sum(
        sample.value
        for metric in registry.collect()
        if metric.name == "langgraph_checkpoint_duration_seconds"
        for sample in metric.samples
        if sample.name.endswith("_count")
    )
    assert observed == len(saver.calls)
    provider.shutdown()


# --- stores -------------------------------------------------------------------------


def test_store_calls_from_a_node_nest_under_its_task_span(tracing: Any) -> None:
    """get/put/search/delete/list_namespaces from node code: spans under the task."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(store=InMemoryStore()), tracer_provider=provider)
    traced.invoke({"log": []})
    spans = exporter.get_finished_spans()
    (task_a,) = by_name(spans, f"{n.SPAN_TASK} a")
    stores = store_spans(spans)
    assert [s.name.split()[1] for s in sorted(stores, key=start_ns)] == [
        "put",
        "get",
        "search",
        "list_namespaces",
        "delete",
    ]
    for span in stores:
        assert parent_of(span, spans) is task_a
        attrs = span.attributes or {}
        assert attrs[n.ATTR_STORE_CLASS] == "InMemoryStore"
        assert attrs[n.ATTR_STORE_OPERATION] == span.name.split()[1]


def test_store_spans_count_search_results(tracing: Any) -> None:
    """search and list_namespaces spans carry how many items they returned."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(store=InMemoryStore()), tracer_provider=provider)
    traced.invoke({"log": []})
    spans = exporter.get_finished_spans()
    (search,) = by_name(spans, f"{n.SPAN_STORE} search")
    (listing,) = by_name(spans, f"{n.SPAN_STORE} list_namespaces")
    assert (search.attributes or {})[n.ATTR_STORE_RESULTS] == 1
    assert (listing.attributes or {})[n.ATTR_STORE_RESULTS] == 1
    (put,) = by_name(spans, f"{n.SPAN_STORE} put")
    assert n.ATTR_STORE_RESULTS not in (put.attributes or {})


async def test_async_node_store_calls_nest_under_its_task_span(tracing: Any) -> None:
    """An async node's injected store: aput/asearch spans under the task span."""
    provider, exporter = tracing

    async def a(state: S, *, store: BaseStore) -> dict[str, Any]:
        await store.aput(("users",), "k", {"v": SECRET})
        await store.asearch(("users",))
        return {"log": ["a"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_edge(START, "a")
    traced = lg_otel.instrument(
        g.compile(store=InMemoryStore()), tracer_provider=provider
    )
    await traced.ainvoke({"log": []})
    spans = exporter.get_finished_spans()
    (task,) = by_name(spans, f"{n.SPAN_TASK} a")
    assert sorted(s.name for s in store_spans(spans)) == [
        f"{n.SPAN_STORE} put",
        f"{n.SPAN_STORE} search",
    ]
    for span in store_spans(spans):
        assert parent_of(span, spans) is task


def test_the_node_sees_an_instance_of_the_users_store_class() -> None:
    """get_store() in a node returns an instance of the user's store class."""
    seen: list[Any] = []
    store = InMemoryStore()

    def a(state: S) -> dict[str, Any]:
        seen.append(get_store())
        return {"log": ["a"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_edge(START, "a")
    lg_otel.instrument(g.compile(store=store)).invoke({"log": []})
    assert isinstance(seen[0], InMemoryStore)
    assert seen[0] is not store
    seen[0].put(("x",), "k", {"v": 1})
    assert store.get(("x",), "k") is not None  # the user's store holds it


def test_no_key_value_or_namespace_reaches_telemetry(tracing: Any) -> None:
    """Keys, values, namespaces and thread ids stay out of checkpoint/store spans."""
    provider, exporter = tracing
    traced = lg_otel.instrument(
        linear(InMemorySaver(), InMemoryStore()), tracer_provider=provider
    )
    traced.invoke({"log": [SECRET]}, {"configurable": {"thread_id": SECRET}})
    spans = exporter.get_finished_spans()
    calls = checkpoint_spans(spans) + store_spans(spans)
    assert len(store_spans(spans)) == 5
    for span in calls:
        assert SECRET not in all_text(span), span.name


# --- metrics ------------------------------------------------------------------------


def _otel_points(
    reader: InMemoryMetricReader, name: str, data: Any = None
) -> list[HistogramDataPoint]:
    """``name``'s points in ``data``, else in a collection made now (which hands
    each exemplar out once: collect once to read several histograms')."""
    data = data if data is not None else reader.get_metrics_data()
    points: list[HistogramDataPoint] = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    points += list(metric.data.data_points)
    return points


def _metered_run(
    provider: Any, store: BaseStore | None = None
) -> tuple[CollectorRegistry, InMemoryMetricReader]:
    """One run of ``linear`` on an ``InMemorySaver`` (and ``store``), its
    metrics on both paths: (the Prometheus registry, the OTel reader)."""
    registry, reader = CollectorRegistry(), InMemoryMetricReader()
    traced = lg_otel.instrument(
        linear(InMemorySaver(), store),
        tracer_provider=provider,
        registry=registry,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    traced.invoke({"log": []}, thread_config())
    return registry, reader


def test_each_checkpoint_call_is_one_observation_on_both_paths(tracing: Any) -> None:
    """langgraph.checkpoint.duration: one observation per span, per operation."""
    provider, exporter = tracing
    registry, reader = _metered_run(provider)
    spans = checkpoint_spans(exporter.get_finished_spans())
    points = _otel_points(reader, n.METRIC_CHECKPOINT_DURATION)
    for operation in ("get_tuple", "put", "put_writes"):
        expected = len(by_name(spans, f"{n.SPAN_CHECKPOINT} {operation}"))
        labels = {
            "langgraph_graph": "cp",
            "langgraph_checkpoint_operation": operation,
            "langgraph_checkpoint_saver": "InMemorySaver",
            "langgraph_status": "ok",
        }
        count = registry.get_sample_value(
            "langgraph_checkpoint_duration_seconds_count", labels
        )
        assert count == expected, operation
        (point,) = [
            p
            for p in points
            if (p.attributes or {}).get(n.LABEL_CHECKPOINT_OPERATION) == operation
        ]
        assert point.count == expected
        assert dict(point.attributes or {}) == {
            n.LABEL_GRAPH: "cp",
            n.LABEL_CHECKPOINT_OPERATION: operation,
            n.LABEL_CHECKPOINT_SAVER: "InMemorySaver",
            n.LABEL_STATUS: "ok",
        }


def test_call_duration_exemplars_name_the_calls_own_spans(tracing: Any) -> None:
    """Both call histograms' exemplars, on both metric paths, name a span of
    that very operation that was exported (the call's own, not its run's)."""
    # Exemplars are in the OpenMetrics exposition only.
    from prometheus_client.openmetrics.exposition import generate_latest

    provider, exporter = tracing
    registry, reader = _metered_run(provider, InMemoryStore())
    spans = {
        (f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}"): s.name
        for s in exporter.get_finished_spans()
    }
    seen: set[str] = set()
    text = generate_latest(registry).decode()  # type: ignore[no-untyped-call]
    for line in text.splitlines():
        if " # {" not in line or not line.startswith(
            ("langgraph_checkpoint_duration", "langgraph_store_duration")
        ):
            continue
        operation = line.split('_operation="')[1].split('"')[0]
        trace_id = line.split('trace_id="')[1].split('"')[0]
        span_id = line.split('span_id="')[1].split('"')[0]
        kind = n.SPAN_CHECKPOINT if "checkpoint" in line.split("{")[0] else n.SPAN_STORE
        assert spans[(trace_id, span_id)] == f"{kind} {operation}", line
        seen.add(f"{kind} {operation}")
    assert {f"{n.SPAN_CHECKPOINT} put", f"{n.SPAN_STORE} search"} <= seen
    otel = 0
    data = reader.get_metrics_data()
    for name, kind in (
        (n.METRIC_CHECKPOINT_DURATION, n.SPAN_CHECKPOINT),
        (n.METRIC_STORE_DURATION, n.SPAN_STORE),
    ):
        for point in _otel_points(reader, name, data):
            attributes = point.attributes or {}
            operation = str(
                attributes.get(n.LABEL_CHECKPOINT_OPERATION)
                or attributes.get(n.LABEL_STORE_OPERATION)
            )
            for exemplar in point.exemplars:
                ids = (f"{exemplar.trace_id:032x}", f"{exemplar.span_id:016x}")
                assert spans[ids] == f"{kind} {operation}"
                otel += 1
    # Each operation's on both paths (a slow call can add one in another bucket).
    assert otel >= len(seen)


def test_call_histograms_use_the_fine_buckets(tracing: Any) -> None:
    """Both call histograms: 0.5 ms doubling to 8.192 s, on both metric paths."""
    provider, _ = tracing
    registry, reader = _metered_run(provider, InMemoryStore())
    assert n.CALL_DURATION_BUCKETS[0] == 0.0005
    assert n.CALL_DURATION_BUCKETS[-1] == 8.192
    for metric, family in (
        (n.METRIC_CHECKPOINT_DURATION, "langgraph_checkpoint_duration_seconds"),
        (n.METRIC_STORE_DURATION, "langgraph_store_duration_seconds"),
    ):
        for point in _otel_points(reader, metric):
            assert tuple(point.explicit_bounds) == n.CALL_DURATION_BUCKETS
        bounds = {
            sample.labels["le"]
            for collected in registry.collect()
            if collected.name == family
            for sample in collected.samples
            if sample.name.endswith("_bucket")
        }
        assert bounds == {*(repr(b) for b in n.CALL_DURATION_BUCKETS), "+Inf"}


def test_store_duration_is_labelled_by_graph_operation_and_status(
    tracing: Any,
) -> None:
    """langgraph.store.duration: one observation per store call, with its labels."""
    provider, _ = tracing
    registry = CollectorRegistry()
    traced = lg_otel.instrument(
        linear(store=InMemoryStore()), tracer_provider=provider, registry=registry
    )
    traced.invoke({"log": []})
    for operation in ("put", "get", "search", "list_namespaces", "delete"):
        labels = {
            "langgraph_graph": "cp",
            "langgraph_store_operation": operation,
            "langgraph_status": "ok",
        }
        count = registry.get_sample_value(
            "langgraph_store_duration_seconds_count", labels
        )
        assert count == 1, operation


def test_a_failed_call_is_observed_with_status_error(tracing: Any) -> None:
    """Each failing put is one observation labelled langgraph_status=error."""
    provider, _ = tracing
    registry = CollectorRegistry()
    saver = FailingSaver()
    traced = lg_otel.instrument(
        linear(saver), tracer_provider=provider, registry=registry
    )
    with pytest.raises(Boom):
        traced.invoke({"log": []}, thread_config(), durability="sync")
    labels = {
        "langgraph_graph": "cp",
        "langgraph_checkpoint_operation": "put",
        "langgraph_checkpoint_saver": "FailingSaver",
        "langgraph_status": "error",
    }
    count = registry.get_sample_value(
        "langgraph_checkpoint_duration_seconds_count", labels
    )
    assert count == len(saver.raised) >= 1


# --- state methods --------------------------------------------------------------------


def test_get_state_calls_go_under_the_current_span(tracing: Any) -> None:
    """get_state() outside a run: checkpoint get_tuple under the caller's span."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(InMemorySaver()), tracer_provider=provider)
    config = thread_config()
    traced.invoke({"log": []}, config)
    exporter.clear()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        state = traced.get_state(config)
    assert state.values == {"log": ["a", "b"]}
    spans = exporter.get_finished_spans()
    (request,) = by_name(spans, "request")
    (get,) = by_name(spans, f"{n.SPAN_CHECKPOINT} get_tuple")
    assert parent_of(get, spans) is request
    assert by_name(spans, f"{n.SPAN_RUN} cp") == []


def test_get_state_history_is_one_list_span_under_the_current_span(
    tracing: Any,
) -> None:
    """get_state_history(): one checkpoint list span, ended when exhausted."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(InMemorySaver()), tracer_provider=provider)
    config = thread_config()
    traced.invoke({"log": []}, config)
    exporter.clear()
    with provider.get_tracer("test").start_as_current_span("request"):
        history = list(traced.get_state_history(config))
    assert len(history) == 4
    spans = exporter.get_finished_spans()
    (listing,) = by_name(spans, f"{n.SPAN_CHECKPOINT} list")
    assert parent_of(listing, spans) is by_name(spans, "request")[0]


def test_a_history_iterator_closed_early_ends_its_span_once(tracing: Any) -> None:
    """Stopping after the first snapshot still ends the list span, once, ok."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(InMemorySaver()), tracer_provider=provider)
    config = thread_config()
    traced.invoke({"log": []}, config)
    exporter.clear()
    # A generator (what LangGraph returns), though typed as an Iterator.
    history = cast(
        Generator[StateSnapshot, None, None], traced.get_state_history(config)
    )
    next(history)
    history.close()
    (listing,) = by_name(exporter.get_finished_spans(), f"{n.SPAN_CHECKPOINT} list")
    assert (listing.attributes or {})[n.ATTR_STATUS] == n.STATUS_OK


def test_update_state_calls_go_under_the_current_span(tracing: Any) -> None:
    """update_state(): its get_tuple and put spans under the caller's span."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(InMemorySaver()), tracer_provider=provider)
    config = thread_config()
    traced.invoke({"log": []}, config)
    exporter.clear()
    with provider.get_tracer("test").start_as_current_span("request"):
        traced.update_state(config, {"log": ["edited"]}, as_node="b")
    spans = exporter.get_finished_spans()
    (request,) = by_name(spans, "request")
    calls = checkpoint_spans(spans)
    assert {s.name for s in calls} >= {
        f"{n.SPAN_CHECKPOINT} get_tuple",
        f"{n.SPAN_CHECKPOINT} put",
    }
    for span in calls:
        assert parent_of(span, spans) is request
    assert traced.get_state(config).values["log"][-1] == "edited"


async def test_async_state_methods_are_traced_under_the_current_span(
    tracing: Any,
) -> None:
    """aget_state, aget_state_history and aupdate_state: spans under the caller's."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(InMemorySaver()), tracer_provider=provider)
    config = thread_config()
    await traced.ainvoke({"log": []}, config)
    exporter.clear()
    with provider.get_tracer("test").start_as_current_span("request"):
        state = await traced.aget_state(config)
        history = [s async for s in traced.aget_state_history(config)]
        await traced.aupdate_state(config, {"log": ["edited"]}, as_node="b")
    assert state.values == {"log": ["a", "b"]}
    assert len(history) == 4
    spans = exporter.get_finished_spans()
    (request,) = by_name(spans, "request")
    names = {s.name for s in checkpoint_spans(spans)}
    assert names >= {
        f"{n.SPAN_CHECKPOINT} get_tuple",
        f"{n.SPAN_CHECKPOINT} list",
        f"{n.SPAN_CHECKPOINT} put",
    }
    for span in checkpoint_spans(spans):
        assert parent_of(span, spans) is request


def test_state_of_a_subgraph_namespace_reads_the_same(tracing: Any) -> None:
    """get_state(subgraphs=True) and the history read what the bare graph reads."""
    provider, _ = tracing
    saver = InMemorySaver()
    bare = nested(saver)
    traced = lg_otel.instrument(bare, tracer_provider=provider)
    config = thread_config()
    traced.invoke({"log": []}, config)
    assert repr(traced.get_state(config, subgraphs=True)) == repr(
        bare.get_state(config, subgraphs=True)
    )
    history = list(bare.get_state_history(config))
    assert [repr(s) for s in traced.get_state_history(config)] == [
        repr(s) for s in history
    ]


# --- real databases -----------------------------------------------------------------


def test_sqlite_saver_calls_are_traced_and_sqlite_spans_nest_under_them(
    tracing: Any, tmp_path: Any
) -> None:
    """SqliteSaver: checkpoint spans, and each SQL statement's span nests under one."""
    provider, exporter = tracing
    tracer = provider.get_tracer("sqlite-instrumentation")
    conn = sqlite3.connect(tmp_path / "cp.db", check_same_thread=False)
    # A database instrumentation in miniature: one span per statement, made in
    # the calling context, as the OTel sqlite3/dbapi instrumentations do.
    conn.set_trace_callback(
        lambda sql: tracer.start_span(f"sqlite {sql.split()[0].upper()}").end()
    )
    saver = SqliteSaver(conn)
    traced = lg_otel.instrument(linear(saver), tracer_provider=provider)
    config = thread_config()
    assert traced.invoke({"log": []}, config) == {"log": ["a", "b"]}
    spans = exporter.get_finished_spans()
    sql = [s for s in spans if s.name.startswith("sqlite ")]
    assert sql
    for span in sql:
        parent = parent_of(span, spans)
        assert parent is not None
        assert parent.name.startswith(f"{n.SPAN_CHECKPOINT} "), span.name
    puts = by_name(spans, f"{n.SPAN_CHECKPOINT} put")
    assert any(parent_of(s, spans) in puts for s in sql)
    conn.close()


def test_the_span_a_saver_reads_while_it_runs_is_its_calls_span(
    tracing: Any,
) -> None:
    """A saver that writes on the current span: it lands on ``checkpoint put``,
    whose times are the call's own, and a span it starts nests under it."""
    from opentelemetry import trace

    provider, exporter = tracing
    tracer = provider.get_tracer("saver-instrumentation")
    bounds: list[tuple[int, int]] = []

    class Annotating(InMemorySaver):
        def put(self, *args: Any, **kwargs: Any) -> Any:
            before = time.time_ns()
            time.sleep(0.02)  # so a span started only now would show it
            current = trace.get_current_span()
            assert current.is_recording()
            current.set_attribute("saver.note", "seen")
            with tracer.start_as_current_span("db put"):
                result = super().put(*args, **kwargs)
            bounds.append((before, time.time_ns()))
            return result

    traced = lg_otel.instrument(linear(Annotating()), tracer_provider=provider)
    assert traced.invoke({"log": []}, thread_config()) == {"log": ["a", "b"]}
    spans = exporter.get_finished_spans()
    puts = by_name(spans, f"{n.SPAN_CHECKPOINT} put")
    assert len(puts) == len(bounds) >= 2
    for put, (before, after) in zip(
        sorted(puts, key=start_ns), sorted(bounds), strict=True
    ):
        assert (put.attributes or {})["saver.note"] == "seen"
        assert (put.attributes or {})[n.ATTR_STATUS] == n.STATUS_OK
        # Started when the call began, not when the saver first read the span
        # 20 ms later (5 ms of slack for the wall clock's own corrections).
        assert start_ns(put) <= before + 5_000_000
        assert (put.end_time or 0) >= after - 5_000_000
    for db in by_name(spans, "db put"):
        assert parent_of(db, spans) in puts
    # The calls whose span nobody read have theirs too.
    assert len(by_name(spans, f"{n.SPAN_CHECKPOINT} put_writes")) >= 2


async def test_async_sqlite_saver_calls_are_traced(tracing: Any, tmp_path: Any) -> None:
    """AsyncSqliteSaver: every aget_tuple/aput/aput_writes is a span of the run."""
    provider, exporter = tracing
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.db")) as saver:
        traced = lg_otel.instrument(linear(saver), tracer_provider=provider)
        config = thread_config()
        assert await traced.ainvoke({"log": []}, config) == {"log": ["a", "b"]}
        state = await traced.aget_state(config)
    assert state.values == {"log": ["a", "b"]}
    spans = exporter.get_finished_spans()
    calls = checkpoint_spans(spans)
    assert {(s.attributes or {})[n.ATTR_CHECKPOINT_SAVER] for s in calls} == {
        "AsyncSqliteSaver"
    }
    assert {s.name.split()[1] for s in calls} >= {"get_tuple", "put", "put_writes"}


# --- concurrency ----------------------------------------------------------------------


async def test_twenty_concurrent_runs_keep_their_own_parentage(tracing: Any) -> None:
    """20 astream runs at once: every call span sits in its own run's tree."""
    provider, exporter = tracing

    async def a(state: S, *, store: BaseStore) -> dict[str, Any]:
        await asyncio.sleep(0.005)
        await store.aput(("runs",), str(uuid.uuid4()), {"v": 1})
        return {"log": ["a"]}

    async def b(state: S) -> dict[str, Any]:
        await asyncio.sleep(0.005)
        return {"log": ["b"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    traced = lg_otel.instrument(
        g.compile(checkpointer=InMemorySaver(), store=InMemoryStore(), name="many"),
        tracer_provider=provider,
    )

    async def one() -> None:
        async for _ in traced.astream({"log": []}, thread_config()):
            pass

    await asyncio.gather(*(one() for _ in range(20)))
    spans = exporter.get_finished_spans()
    runs = {s.context.trace_id: s for s in by_name(spans, f"{n.SPAN_RUN} many")}
    assert len(runs) == 20
    per_run: dict[int, int] = {}
    for span in checkpoint_spans(spans):
        assert parent_of(span, spans) is runs[span.context.trace_id]
        per_run[span.context.trace_id] = per_run.get(span.context.trace_id, 0) + 1
    assert len(set(per_run.values())) == 1
    for span in store_spans(spans):
        parent = parent_of(span, spans)
        assert parent is not None
        assert parent.name == f"{n.SPAN_TASK} a"
        assert parent.context.trace_id == span.context.trace_id
    assert len(store_spans(spans)) == 20


def test_a_runs_call_records_are_freed_without_the_garbage_collector(
    tracing: Any,
) -> None:
    """After a run (saver, store, a history read), no call record is left alive
    once nothing refers to it: no reference cycle (a stand-in span that holds its
    record, say) leaves them, and their run, to the garbage collector."""
    import gc

    from lg_otel._records import CheckpointRecord, StoreRecord

    provider, _ = tracing
    traced = lg_otel.instrument(
        linear(InMemorySaver(), store=InMemoryStore()), tracer_provider=provider
    )
    config = thread_config()
    traced.invoke({"log": []}, config)  # warm: classes and caches made

    def records() -> list[Any]:
        kinds = (CheckpointRecord, StoreRecord)
        return [o for o in gc.get_objects() if type(o) in kinds]

    gc.collect()
    gc.disable()
    try:
        # Records other tests left referenced (a kept exception, say) stay.
        before = records()
        traced.invoke({"log": []}, config)
        list(traced.get_state_history(config))
        alive = [r for r in records() if not any(r is b for b in before)]
        assert alive == []
    finally:
        gc.enable()
