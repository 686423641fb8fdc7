"""Spans that user code creates inside a node are children of that node's task span."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from langgraph.graph import START, StateGraph
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

import lg_otel
from tests.conftest import by_name
from tests.graphs import S


def _graph(provider: Any, *, use_async: bool, via_thread: bool) -> Any:
    tracer = provider.get_tracer("user-code")

    def work(name: str) -> None:
        with tracer.start_as_current_span(f"user {name}"):
            time.sleep(0.002)

    g = StateGraph(S)
    for name in ("a", "b", "c"):
        if use_async and via_thread:

            async def node(state: S, name: str = name) -> Any:
                # asyncio.to_thread copies the context, as run_in_executor does
                await asyncio.to_thread(work, name)
                return {"log": [name]}

        elif use_async:

            async def node(state: S, name: str = name) -> Any:
                with tracer.start_as_current_span(f"user {name}"):
                    await asyncio.sleep(0.002)
                return {"log": [name]}

        else:

            def node(state: S, name: str = name) -> Any:  # type: ignore[misc]
                work(name)
                return {"log": [name]}

        g.add_node(name, node)
        g.add_edge(START, name)  # parallel branches
    g.add_node("then", _after(tracer))
    g.add_edge(["a", "b", "c"], "then")
    return g.compile(name="ctx")


def _after(tracer: trace.Tracer) -> Any:
    def then(state: S) -> Any:
        with tracer.start_as_current_span("user then"):
            pass
        return {"log": ["then"]}

    return then


def _assert_nested(spans: Any) -> None:
    by_id = {s.context.span_id: s for s in spans}
    for name in ("a", "b", "c", "then"):
        (user,) = by_name(spans, f"user {name}")
        assert user.parent is not None, name
        assert by_id[user.parent.span_id].name == f"invoke_node {name}"


@pytest.mark.parametrize("via_thread", [False, True], ids=["inline", "thread"])
def test_sync_parallel_nodes(via_thread: bool, tracing: Any) -> None:
    """Sync graph, parallel branches on LangGraph's thread pool."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _graph(provider, use_async=False, via_thread=via_thread),
        tracer_provider=provider,
    )
    graph.invoke({"log": []})
    _assert_nested(exporter.get_finished_spans())


@pytest.mark.parametrize("via_thread", [False, True], ids=["async", "to_thread"])
async def test_async_parallel_nodes(via_thread: bool, tracing: Any) -> None:
    """Async graph: async nodes, and async nodes handing work to a thread."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _graph(provider, use_async=True, via_thread=via_thread),
        tracer_provider=provider,
    )
    await graph.ainvoke({"log": []})
    _assert_nested(exporter.get_finished_spans())


async def test_sync_nodes_in_async_graph(tracing: Any) -> None:
    """Sync nodes of a graph run with ainvoke (LangGraph runs them in executors)."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _graph(provider, use_async=False, via_thread=False), tracer_provider=provider
    )
    await graph.ainvoke({"log": []})
    _assert_nested(exporter.get_finished_spans())


def test_caller_context_restored_after_each_chunk(tracing: Any) -> None:
    """Between chunks, the caller's current span is the caller's, never a task's."""
    provider, _ = tracing
    graph = lg_otel.instrument(
        _graph(provider, use_async=False, via_thread=False), tracer_provider=provider
    )
    with provider.get_tracer("app").start_as_current_span("request") as request:
        for _ in graph.stream({"log": []}, stream_mode="updates"):
            assert trace.get_current_span() is request
    assert trace.get_current_span() is not request


async def test_async_caller_context_restored_after_each_chunk(tracing: Any) -> None:
    """Same under asyncio, including a single task run inline by LangGraph."""
    provider, _ = tracing
    graph = lg_otel.instrument(
        _graph(provider, use_async=True, via_thread=False), tracer_provider=provider
    )
    with provider.get_tracer("app").start_as_current_span("request") as request:
        async for _ in graph.astream({"log": []}, stream_mode="updates"):
            assert trace.get_current_span() is request
    assert trace.get_current_span() is not request


def _baggage_graph() -> Any:
    def read(state: S) -> Any:
        return {"log": [str(baggage.get_baggage("tenant"))]}

    g = StateGraph(S)
    g.add_node("read", read)
    g.add_edge(START, "read")
    return g.compile(name="bag")


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_callers_baggage_reaches_the_nodes(use_async: bool, tracing: Any) -> None:
    """Making the task span current keeps what else the caller's context held."""
    provider, _ = tracing
    graph = lg_otel.instrument(_baggage_graph(), tracer_provider=provider)
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        if use_async:
            out = await graph.ainvoke({"log": []})
        else:
            out = graph.invoke({"log": []})
    finally:
        otel_context.detach(token)
    assert out == {"log": ["acme"]}


class _OtherRuntime(ContextVarsRuntimeContext):
    """Another runtime context (OTEL_PYTHON_CONTEXT can name one): a subclass, so
    lg_otel cannot assume what its attach() does."""


@pytest.mark.parametrize("runtime", ["contextvars", "other"])
def test_task_span_is_current_under_either_runtime_context(
    runtime: str, tracing: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under OTel's default runtime the task's context is set on its context
    variable directly; under any other runtime, through ``context.attach``.
    Either way user spans nest under the task span, and the caller's context is
    what it was."""
    if runtime == "other":
        monkeypatch.setattr(otel_context, "_RUNTIME_CONTEXT", _OtherRuntime())
    attached: list[object] = []
    real_attach = otel_context.attach

    def spy(ctx: otel_context.Context) -> object:
        attached.append(ctx)
        return real_attach(ctx)

    monkeypatch.setattr(otel_context, "attach", spy)
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _graph(provider, use_async=False, via_thread=False), tracer_provider=provider
    )
    before = otel_context.get_current()
    graph.invoke({"log": []})
    assert otel_context.get_current() == before
    _assert_nested(exporter.get_finished_spans())
    # The four user spans attach through the API on both; the tasks only on "other".
    assert len(attached) == (4 if runtime == "contextvars" else 8)
