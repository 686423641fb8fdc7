"""The span tree of each graph shape matches the graph's structure exactly."""

from __future__ import annotations

import asyncio
import operator
import time
import uuid
from collections import Counter
from typing import Annotated, Any, Literal

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy, RetryPolicy
from opentelemetry.trace import SpanKind, StatusCode
from typing_extensions import TypedDict

import lg_otel
from lg_otel import _names as n
from tests.conftest import (
    assert_caught_failure,
    attrs_of,
    by_name,
    end_ns,
    start_ns,
    tree,
)
from tests.graphs import SHAPES, Boom, Shape


def _drive(graph: Any, shape: Shape, mode: str) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
    for inp in shape.inputs:
        try:
            if mode == "invoke":
                graph.invoke(inp, config)
            elif mode == "stream":
                for _ in graph.stream(inp, config, stream_mode=["updates", "messages"]):
                    pass
            else:

                async def go(inp: Any = inp) -> None:
                    async for _ in graph.astream(inp, config, stream_mode="values"):
                        pass

                asyncio.run(go())
        except Boom:
            pass


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
@pytest.mark.parametrize("mode", ["invoke", "stream", "astream"])
def test_span_counts_and_parents(shape: Shape, mode: str, tracing: Any) -> None:
    """One run span per call, one task span per node execution, right parents."""
    provider, exporter = tracing
    graph = lg_otel.instrument(shape.build(), tracer_provider=provider)
    _drive(graph, shape, mode)
    spans = exporter.get_finished_spans()
    names = Counter(s.name for s in spans)
    runs = names.pop(f"{n.SPAN_RUN} {shape.name}")
    assert runs == len(shape.inputs)
    tasks = {
        k.removeprefix(f"{n.SPAN_TASK} "): v
        for k, v in names.items()
        if k.startswith(n.SPAN_TASK)
    }
    assert tasks == shape.tasks
    llm = sum(v for k, v in names.items() if k.startswith(n.OP_CHAT))
    tools = sum(v for k, v in names.items() if k.startswith(n.SPAN_TOOL))
    assert (llm, tools) == (shape.llm_calls, shape.tool_calls)
    # Every span is in one of the run traces, and every non-run span has a parent
    # that was exported too: no orphans, no duplicates.
    ids = {s.context.span_id for s in spans}
    assert len(ids) == len(spans)
    for s in spans:
        if not s.name.startswith(n.SPAN_RUN):
            assert s.parent is not None, s.name
            assert s.parent.span_id in ids, s.name


def test_nested_subgraph_tree(tracing: Any) -> None:
    """Subgraph tasks nest under the task of the node that runs the subgraph."""
    provider, exporter = tracing
    graph = lg_otel.instrument(SHAPES[4].build(), tracer_provider=provider)
    graph.invoke({"log": []})
    assert tree(exporter.get_finished_spans()) == sorted(
        [
            "invoke_workflow nested <- None",
            "invoke_node pre <- invoke_workflow nested",
            "invoke_node mid <- invoke_workflow nested",
            "invoke_node inner <- invoke_node mid",
            "invoke_node leaf <- invoke_node inner",
            "invoke_node after <- invoke_node mid",
            "invoke_node post <- invoke_workflow nested",
        ]
    )


def test_nested_subgraph_tree_with_subgraph_stream(tracing: Any) -> None:
    """With subgraphs=True the tree is the same (stream and hook agree)."""
    provider, exporter = tracing
    graph = lg_otel.instrument(SHAPES[4].build(), tracer_provider=provider)
    for _ in graph.stream({"log": []}, subgraphs=True, stream_mode="updates"):
        pass
    rows = tree(exporter.get_finished_spans())
    assert "invoke_node leaf <- invoke_node inner" in rows
    assert "invoke_node after <- invoke_node mid" in rows
    assert len(rows) == 7


def test_agent_llm_and_tool_spans(tracing: Any) -> None:
    """LLM spans are CLIENT children of their task; tool spans carry name and id."""
    provider, exporter = tracing
    graph = lg_otel.instrument(SHAPES[5].build(), tracer_provider=provider)
    graph.invoke(SHAPES[5].inputs[0])
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    chats = by_name(spans, "chat simulated-chat")
    assert len(chats) == 2
    for chat in chats:
        assert chat.kind == SpanKind.CLIENT
        assert chat.parent is not None
        assert by_id[chat.parent.span_id].name == "invoke_node model"
        assert attrs_of(chat)[n.ATTR_OPERATION_NAME] == "chat"
        assert attrs_of(chat)[n.ATTR_PROVIDER_NAME] == "simulated"
        assert attrs_of(chat)[n.ATTR_REQUEST_MODEL] == "simulated-chat"
    tools = {
        s.attributes[n.ATTR_TOOL_NAME]: s
        for s in spans
        if s.name.startswith(n.SPAN_TOOL)
    }
    assert set(tools) == {"add", "multiply"}
    assert tools["add"].attributes[n.ATTR_TOOL_CALL_ID] == "call-add"
    for tool_span in tools.values():
        assert tool_span.parent is not None
        assert by_id[tool_span.parent.span_id].name == "invoke_node tools"


def test_error_marks_task_and_run(tracing: Any) -> None:
    """A raising node: ERROR, error.type, one exception event; on task and run."""
    provider, exporter = tracing
    graph = lg_otel.instrument(SHAPES[8].build(), tracer_provider=provider)
    with pytest.raises(Boom):
        graph.invoke({"log": []})
    spans = exporter.get_finished_spans()
    for name in ("invoke_node boom", "invoke_workflow failing"):
        (span,) = by_name(spans, name)
        assert span.status.status_code == StatusCode.ERROR
        assert attrs_of(span)[n.ATTR_ERROR_TYPE] == "Boom"
        assert attrs_of(span)[n.ATTR_STATUS] == n.STATUS_ERROR
        assert [e.name for e in span.events] == ["exception"]
    (ok,) = by_name(spans, "invoke_node ok")
    assert ok.status.status_code == StatusCode.UNSET
    assert attrs_of(ok)[n.ATTR_STATUS] == n.STATUS_OK


def test_interrupt_is_not_an_error_and_resume_links(tracing: Any) -> None:
    """interrupt(): status unset, an event, interrupted; the resumed run links back."""
    provider, exporter = tracing
    shape = SHAPES[7]
    graph = lg_otel.instrument(shape.build(), tracer_provider=provider)
    thread = str(uuid.uuid4())
    config: RunnableConfig = {"configurable": {"thread_id": thread}}
    graph.invoke(shape.inputs[0], config)
    first = exporter.get_finished_spans()
    (run1,) = by_name(first, "invoke_workflow human")
    (ask1,) = by_name(first, "invoke_node ask")
    for span in (run1, ask1):
        assert span.status.status_code == StatusCode.UNSET
        assert attrs_of(span)[n.ATTR_STATUS] == n.STATUS_INTERRUPTED
        assert [e.name for e in span.events] == [n.EVENT_INTERRUPT]
    assert attrs_of(run1)[n.ATTR_CONVERSATION_ID] == thread
    exporter.clear()
    graph.invoke(shape.inputs[1], config)
    (run2,) = by_name(exporter.get_finished_spans(), "invoke_workflow human")
    assert attrs_of(run2)[n.ATTR_STATUS] == n.STATUS_OK
    assert [link.context.span_id for link in run2.links] == [run1.context.span_id]
    assert attrs_of(run2)[n.ATTR_CONVERSATION_ID] == thread


def test_run_span_is_child_of_callers_span(tracing: Any) -> None:
    """The run span nests under the span current when the caller calls the graph."""
    provider, exporter = tracing
    graph = lg_otel.instrument(SHAPES[0].build(), tracer_provider=provider)
    with provider.get_tracer("app").start_as_current_span("POST /chat") as request:
        graph.invoke({"log": []})
    (run,) = by_name(exporter.get_finished_spans(), "invoke_workflow linear")
    assert run.parent is not None
    assert run.parent.span_id == request.get_span_context().span_id


async def test_async_run_span_is_child_of_callers_span(tracing: Any) -> None:
    """Same under asyncio, with the caller's span current at astream()."""
    provider, exporter = tracing
    graph = lg_otel.instrument(SHAPES[1].build(), tracer_provider=provider)
    with provider.get_tracer("app").start_as_current_span("POST /chat") as request:
        async for _ in graph.astream({"log": []}):
            pass
    (run,) = by_name(exporter.get_finished_spans(), "invoke_workflow fanout")
    assert run.parent is not None
    assert run.parent.span_id == request.get_span_context().span_id


def test_task_attributes(tracing: Any) -> None:
    """Task spans carry node, step, task id, triggers and checkpoint namespace."""
    provider, exporter = tracing
    graph = lg_otel.instrument(SHAPES[0].build(), tracer_provider=provider)
    graph.invoke({"log": []})
    (b,) = by_name(exporter.get_finished_spans(), "invoke_node b")
    attrs = attrs_of(b)
    assert attrs[n.ATTR_NODE] == "b"
    assert attrs[n.ATTR_STEP] == 2
    assert attrs[n.ATTR_TRIGGERS] == ("branch:to:b",)
    assert attrs[n.ATTR_CHECKPOINT_NS] == f"b:{attrs[n.ATTR_TASK_ID]!s}"
    assert not [k for k in attrs if k.startswith("gen_ai.")]


class _Log(TypedDict):
    log: Annotated[list[str], operator.add]


@pytest.mark.parametrize("how", ["invoke", "updates", "updates-v2"])
def test_static_breakpoint_marks_the_run_interrupted(tracing: Any, how: str) -> None:
    """interrupt_before pauses the run: the run span says interrupted, not ok."""
    builder = StateGraph(_Log)
    builder.add_node("a", lambda state: {"log": ["a"]})
    builder.add_node("b", lambda state: {"log": ["b"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    provider, exporter = tracing
    graph = lg_otel.instrument(
        builder.compile(
            checkpointer=InMemorySaver(), interrupt_before=["b"], name="breakpoint"
        ),
        tracer_provider=provider,
    )
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
    if how == "invoke":
        graph.invoke({"log": []}, config)
    else:
        version: Literal["v1", "v2"] = "v2" if how.endswith("v2") else "v1"
        for _ in graph.stream(
            _Log(log=[]), config, stream_mode="updates", version=version
        ):
            pass
    spans = exporter.get_finished_spans()
    (run,) = by_name(spans, "invoke_workflow breakpoint")
    assert attrs_of(run)[n.ATTR_STATUS] == n.STATUS_INTERRUPTED
    assert by_name(spans, "invoke_node b") == []  # paused before it


class _Count(TypedDict):
    n: int


def test_a_caught_subgraph_failure_keeps_its_own_end(tracing: Any) -> None:
    """A subgraph task fails and the node running the subgraph catches it and goes
    on: the failed task's span (one) ends when it failed, with its error, not when
    its parent or the run ends."""
    provider, exporter = tracing

    def bad(state: _Count) -> dict[str, int]:
        raise Boom("inner")

    inner = StateGraph(_Count)
    inner.add_node("bad", bad)
    inner.add_edge(START, "bad")
    sub = inner.compile(name="inner")

    def outer(state: _Count) -> dict[str, int]:
        with pytest.raises(Boom):
            sub.invoke(state)
        time.sleep(0.05)
        return {"n": 1}

    g = StateGraph(_Count)
    g.add_node("outer", outer)
    g.add_edge(START, "outer")
    graph = lg_otel.instrument(g.compile(name="caught"), tracer_provider=provider)
    assert graph.invoke({"n": 0}) == {"n": 1}
    assert_caught_failure(exporter.get_finished_spans(), "bad", "outer")


@pytest.mark.parametrize("where", ["top", "subgraph"])
def test_a_retried_task_is_one_span_over_every_attempt(
    where: str, tracing: Any
) -> None:
    """A node under a ``RetryPolicy`` that fails once, then succeeds: one task
    span, status ok, lasting from the first attempt to the end of the last. At the
    top the stream's result for the task ends it; inside a subgraph (no stream
    result comes) a failed attempt's span waits for another attempt or the run's
    end instead of ending at once."""
    provider, exporter = tracing
    attempts: list[int] = []

    def flaky(state: _Count) -> dict[str, int]:
        attempts.append(time.monotonic_ns())
        time.sleep(0.01)
        if len(attempts) == 1:
            raise ConnectionError("once")  # retried by LangGraph's default policy
        return {"n": 1}

    g = StateGraph(_Count)
    g.add_node(
        "flaky",
        flaky,
        retry_policy=RetryPolicy(max_attempts=3, initial_interval=0.02, jitter=False),
    )
    g.add_edge(START, "flaky")
    if where == "top":
        compiled = g.compile(name="retry")
    else:
        outer = StateGraph(_Count)
        outer.add_node("inner", g.compile(name="inner"))
        outer.add_edge(START, "inner")
        compiled = outer.compile(name="retry")
    graph = lg_otel.instrument(compiled, tracer_provider=provider)
    assert graph.invoke({"n": 0}) == {"n": 1}
    assert len(attempts) == 2
    spans = exporter.get_finished_spans()
    (task,) = by_name(spans, f"{n.SPAN_TASK} flaky")
    assert attrs_of(task)[n.ATTR_STATUS] == n.STATUS_OK
    assert task.status.status_code is StatusCode.UNSET
    assert not task.events  # no exception recorded from the first attempt
    # Both attempts and the back-off between them, each attempt sleeping 10 ms.
    assert end_ns(task) - start_ns(task) >= attempts[1] - attempts[0] + 9_000_000
    (run,) = by_name(spans, f"{n.SPAN_RUN} retry")
    assert attrs_of(run)[n.ATTR_STATUS] == n.STATUS_OK


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_a_graph_with_a_node_cache_keeps_its_cache_hits_spans(
    mode: str, tracing: Any
) -> None:
    """A cache hit runs no node, so the hook never sees it: on a graph compiled
    with a cache lg_otel keeps asking for the ``tasks`` mode, and the second run's
    cached task still has a span (with either task source)."""
    provider, exporter = tracing
    calls: list[int] = []

    def add(state: _Count) -> dict[str, int]:
        calls.append(state["n"])
        return {"n": state["n"] + 1}

    g = StateGraph(_Count)
    g.add_node("add", add, cache_policy=CachePolicy())
    g.add_edge(START, "add")
    graph = lg_otel.instrument(
        g.compile(name="cached", cache=InMemoryCache()), tracer_provider=provider
    )
    for _ in range(2):
        if mode == "invoke":
            assert graph.invoke({"n": 1}) == {"n": 2}
        else:
            updates = list(graph.stream({"n": 1}))
            assert [update["add"] for update in updates] == [{"n": 2}]
    assert calls == [1]  # the second run was a cache hit
    spans = exporter.get_finished_spans()
    assert len(by_name(spans, f"{n.SPAN_TASK} add")) == 2
    assert len(by_name(spans, f"{n.SPAN_RUN} cached")) == 2
