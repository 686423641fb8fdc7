"""Functional-API ``@task`` calls: one span each, under the task that called it,
timed from its own start to its own end, and current while it runs."""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Annotated, Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.func import entrypoint, task
from langgraph.graph import START, StateGraph
from langgraph.types import RetryPolicy, Send
from opentelemetry import trace
from typing_extensions import TypedDict

import lg_otel
from lg_otel import _names as n
from lg_otel._records import NullSink, RunRecord, TaskRecord
from lg_otel._tracker import RunTracker
from tests.conftest import (
    assert_caught_failure,
    attrs_of,
    by_name,
    end_ns,
    start_ns,
    tree,
)
from tests.graphs import Boom


class _V(TypedDict):
    v: int


class _Sum(TypedDict):
    v: Annotated[int, operator.add]


def _with_caller(where: str, caller: Any) -> Any:
    """A graph whose one task (or entrypoint) is ``caller``, at ``where``."""
    if where == "entrypoint":
        return entrypoint()(lambda v: caller({"v": v})["v"])
    g = StateGraph(_V)
    g.add_node("node", caller)
    g.add_edge(START, "node")
    if where == "node":
        return g.compile(name="calls")
    outer = StateGraph(_V)
    outer.add_node("outer", g.compile(name="sub"))
    outer.add_edge(START, "outer")
    return outer.compile(name="calls")


def _drive(graph: Any, mode: str, value: Any) -> Any:
    if mode == "invoke":
        return graph.invoke(value)
    if mode == "stream":
        return list(graph.stream(value, stream_mode="updates"))

    async def go() -> Any:
        return [part async for part in graph.astream(value, stream_mode="updates")]

    return asyncio.run(go())


@pytest.mark.parametrize("mode", ["invoke", "stream", "astream"])
@pytest.mark.parametrize("where", ["entrypoint", "node", "subgraph"])
def test_task_calls_nest_under_the_task_that_called_them(
    where: str, mode: str, tracing: Any
) -> None:
    """A node calls ``double``, which calls ``inner`` and a chat model: each call is
    one span under its caller, lasting as long as it ran, and the user's attribute
    set inside ``double`` lands on ``double``'s span."""
    provider, exporter = tracing
    model = GenericFakeChatModel(messages=iter([AIMessage(content="hi")] * 3))

    @task
    def inner(x: int) -> int:
        time.sleep(0.02)
        return x + 1

    @task
    def double(x: int) -> int:
        trace.get_current_span().set_attribute("user.k", "v")
        model.invoke("hello")
        return 2 * inner(x).result()

    def caller(state: dict[str, int]) -> dict[str, int]:
        return {"v": double(state["v"]).result()}

    graph = lg_otel.instrument(_with_caller(where, caller), tracer_provider=provider)
    _drive(graph, mode, 2 if where == "entrypoint" else {"v": 2})
    spans = exporter.get_finished_spans()
    (outer_call,) = by_name(
        spans, f"{n.SPAN_TASK} {'<lambda>' if where == 'entrypoint' else 'node'}"
    )
    (dbl,) = by_name(spans, f"{n.SPAN_TASK} double")
    (inn,) = by_name(spans, f"{n.SPAN_TASK} inner")
    chat = [s for s in spans if s.name.startswith(n.OP_CHAT)]
    assert len(chat) == 1
    assert dbl.parent is not None
    assert inn.parent is not None
    assert chat[0].parent is not None
    assert dbl.parent.span_id == outer_call.context.span_id
    assert inn.parent.span_id == dbl.context.span_id
    assert chat[0].parent.span_id == dbl.context.span_id
    # Each lasts as long as it ran: inner sleeps 20 ms, double waits for it.
    assert end_ns(inn) - start_ns(inn) >= 19_000_000
    assert start_ns(dbl) <= start_ns(inn)
    assert end_ns(inn) <= end_ns(dbl)
    assert start_ns(outer_call) <= start_ns(dbl)
    assert end_ns(dbl) <= end_ns(outer_call)
    assert attrs_of(dbl).get("user.k") == "v"
    assert "user.k" not in attrs_of(outer_call)
    assert "user.k" not in attrs_of(inn)
    # Same graph loop as the caller: same namespace.
    namespace = attrs_of(outer_call).get(n.ATTR_NAMESPACE)
    assert attrs_of(dbl).get(n.ATTR_NAMESPACE) == namespace
    assert attrs_of(inn).get(n.ATTR_NAMESPACE) == namespace
    assert all(attrs_of(s)[n.ATTR_STATUS] == n.STATUS_OK for s in (dbl, inn))


@pytest.mark.parametrize("where", ["node", "subgraph"])
def test_a_failed_task_call_its_caller_catches_ends_when_it_failed(
    where: str, tracing: Any
) -> None:
    """The caller catches its ``@task``'s exception and goes on for 50 ms: the
    call's span is an error ending when the call failed, not with its caller."""
    provider, exporter = tracing

    @task
    def bad(x: int) -> int:
        raise Boom("in a task")

    def caller(state: dict[str, int]) -> dict[str, int]:
        with pytest.raises(Boom):
            bad(state["v"]).result()
        time.sleep(0.05)
        return {"v": 1}

    graph = lg_otel.instrument(_with_caller(where, caller), tracer_provider=provider)
    assert graph.invoke({"v": 0}) == {"v": 1}
    assert_caught_failure(exporter.get_finished_spans(), "bad", "node")


@pytest.mark.parametrize("where", ["node", "subgraph"])
def test_a_retried_task_call_is_one_span(where: str, tracing: Any) -> None:
    """A ``@task`` under a ``RetryPolicy`` fails once, then succeeds: one ok span
    over both attempts."""
    provider, exporter = tracing
    attempts: list[int] = []

    def once_failing(x: int) -> int:
        attempts.append(time.monotonic_ns())
        time.sleep(0.01)
        if len(attempts) == 1:
            raise ConnectionError("once")
        return x

    # Any: LangGraph's overload for task(retry_policy=...) binds no type variables.
    decorate: Any = task(
        name="flaky",
        retry_policy=RetryPolicy(max_attempts=3, initial_interval=0.02, jitter=False),
    )
    flaky = decorate(once_failing)

    def caller(state: dict[str, int]) -> dict[str, int]:
        return {"v": flaky(state["v"]).result()}

    graph = lg_otel.instrument(_with_caller(where, caller), tracer_provider=provider)
    assert graph.invoke({"v": 3}) == {"v": 3}
    assert len(attempts) == 2
    spans = exporter.get_finished_spans()
    (call,) = by_name(spans, f"{n.SPAN_TASK} flaky")
    assert attrs_of(call)[n.ATTR_STATUS] == n.STATUS_OK
    assert not call.events
    assert end_ns(call) - start_ns(call) >= attempts[1] - attempts[0] + 9_000_000
    rows = tree(spans)
    assert "invoke_node flaky <- invoke_node node" in rows


def test_a_sent_subgraph_named_like_its_node_is_one_span(tracing: Any) -> None:
    """A ``Send`` task is pushed too, and the run of a subgraph compiled with its
    node's name is named like the node and tagged ``seq:step:1``, as a ``@task``
    call's root is: inside a subgraph it is still one task span, with the
    subgraph's task under it."""
    provider, exporter = tracing

    def leaf(state: _Sum) -> dict[str, int]:
        return {"v": 1}

    deepest = StateGraph(_Sum)
    deepest.add_node("leaf", leaf)
    deepest.add_edge(START, "leaf")

    def fan(state: _Sum) -> list[Send]:
        return [Send("work", {"v": i}) for i in range(3)]

    inner = StateGraph(_Sum)
    inner.add_node("work", deepest.compile(name="work"))
    inner.add_conditional_edges(START, fan, ["work"])
    outer = StateGraph(_Sum)
    outer.add_node("outer", inner.compile(name="sub"))
    outer.add_edge(START, "outer")
    graph = lg_otel.instrument(outer.compile(name="sends"), tracer_provider=provider)
    graph.invoke({"v": 0})
    spans = exporter.get_finished_spans()
    rows = tree(spans)
    assert rows.count("invoke_node work <- invoke_node outer") == 3
    assert rows.count("invoke_node leaf <- invoke_node work") == 3
    for work in by_name(spans, f"{n.SPAN_TASK} work"):
        assert attrs_of(work)[n.ATTR_SUBGRAPH_NAME] == "work"
    assert len(rows) == 9  # with the subgraph's __start__ task


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_a_task_call_its_caller_does_not_wait_for_is_one_span(
    mode: str, tracing: Any
) -> None:
    """The caller returns without waiting for its ``@task`` call, which goes on for
    30 ms after it: still one span for the call, under the caller, as long as the
    call ran."""
    provider, exporter = tracing

    @task
    def late(x: int) -> int:
        time.sleep(0.03)
        return x

    def caller(state: dict[str, int]) -> dict[str, int]:
        late(state["v"])
        return {"v": 1}

    graph = lg_otel.instrument(_with_caller("node", caller), tracer_provider=provider)
    _drive(graph, mode, {"v": 0})
    spans = exporter.get_finished_spans()
    (call,) = by_name(spans, f"{n.SPAN_TASK} late")
    (node,) = by_name(spans, f"{n.SPAN_TASK} node")
    assert call.parent is not None
    assert call.parent.span_id == node.context.span_id
    assert end_ns(call) - start_ns(call) >= 29_000_000
    assert attrs_of(call)[n.ATTR_STATUS] == n.STATUS_OK


class _Ended(NullSink):
    """Keeps the tasks that end, in order."""

    def __init__(self) -> None:
        self.ended: list[TaskRecord] = []

    def task_ended(self, run: RunRecord, task: TaskRecord) -> None:
        self.ended.append(task)


@pytest.mark.parametrize("stream_tasks", [True, False])
def test_a_call_starting_after_its_caller_ended_ends_once(stream_tasks: bool) -> None:
    """The tracker alone: a ``@task`` call that starts after its caller has ended
    (no record left to ask) still ends exactly once, when the stream reports it
    if the stream reports tasks, else when it returns."""
    sink, ticks = _Ended(), iter(range(1_000, 10**9, 1_000))
    tracker = RunTracker(
        sink,
        lambda: next(ticks),
        graph="g",
        stream_has_subgraphs=False,
        stream_tasks=stream_tasks,
    )
    tracker.task_began("c", "node", None, 1, (), "node:c")
    tracker.task_returned("c", n.STATUS_OK)
    if stream_tasks:
        tracker.task_ok("c", "node", None)
    tracker.task_began(
        "t", "late", "c", 1, ("__pregel_push",), "node:c|late:t", pushed=True
    )
    tracker.task_returned("t", n.STATUS_OK)
    if stream_tasks:
        tracker.task_ok("t", "late", None)
    tracker.finish(n.STATUS_OK)
    assert [task.name for task in sink.ended] == ["node", "late"]
