"""The ``interrupt`` span event says which node paused the run, and (opted in) why."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.pregel import Pregel
from langgraph.types import Command, Interrupt, interrupt

import lg_otel
from lg_otel import _names as n
from lg_otel._parse import TaskResult, parse_task
from tests.conftest import thread_config
from tests.graphs import S, _visit, human

QUESTION = {"question": "approve the refund?", "amount": 120}


def _ask(state: S) -> Any:
    return {"log": [f"answer:{interrupt(QUESTION)}"]}


def _in_subgraph() -> Pregel[Any, Any, Any, Any]:
    """review (subgraph review_graph: ask, which interrupts)."""
    sub = StateGraph(S)
    sub.add_node("ask", _ask)
    sub.add_edge(START, "ask")
    g = StateGraph(S)
    g.add_node("review", sub.compile(name="review_graph"))
    g.add_edge(START, "review")
    return g.compile(name="outer", checkpointer=InMemorySaver())


def _two_at_once() -> Pregel[Any, Any, Any, Any]:
    """START -> ask_a, ask_b in parallel, each interrupting."""
    g = StateGraph(S)
    for name in ("ask_a", "ask_b"):
        g.add_node(name, _ask)
        g.add_edge(START, name)
    return g.compile(name="pair", checkpointer=InMemorySaver())


def _run(
    graph: Pregel[Any, Any, Any, Any],
    tracing: Any,
    use_async: bool,
    inputs: Any = None,
    config: RunnableConfig | None = None,
    **settings: Any,
) -> list[Interrupt]:
    """Stream one run; returns the Interrupt objects the caller received."""
    provider, _ = tracing
    traced = lg_otel.instrument(
        graph,
        tracer_provider=provider,
        registry=False,
        config=lg_otel.Config(**settings),
    )
    config = config or thread_config()
    inputs = {"log": []} if inputs is None else inputs
    seen: list[Interrupt] = []

    def keep(chunk: Any) -> None:
        seen.extend(chunk.get("__interrupt__", ()))

    if use_async:

        async def drain() -> None:
            async for chunk in traced.astream(inputs, config, stream_mode="updates"):
                keep(chunk)

        asyncio.run(drain())
    else:
        for chunk in traced.stream(inputs, config, stream_mode="updates"):
            keep(chunk)
    return seen


def _event(span: Any) -> dict[str, Any]:
    (event,) = [e for e in span.events if e.name == n.EVENT_INTERRUPT]
    return dict(event.attributes or {})


def _span(exporter: Any, name: str) -> Any:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_task_event_names_node_task_and_interrupt(
    tracing: Any, use_async: bool
) -> None:
    """The interrupted task's event: its node, task id, LangGraph's interrupt id."""
    (raised,) = _run(human(), tracing, use_async)
    task = _span(tracing[1], "invoke_node ask")
    assert _event(task) == {
        n.ATTR_NODE: "ask",
        n.ATTR_TASK_ID: task.attributes[n.ATTR_TASK_ID],
        n.ATTR_INTERRUPT_ID: raised.id,
        n.ATTR_INTERRUPT_COUNT: 1,
    }


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_run_event_names_the_interrupting_task(tracing: Any, use_async: bool) -> None:
    """The run span's event carries the same node, task id and interrupt id."""
    (raised,) = _run(human(), tracing, use_async)
    task = _span(tracing[1], "invoke_node ask")
    run = _span(tracing[1], "invoke_workflow human")
    assert _event(run) == _event(task)
    assert _event(run)[n.ATTR_INTERRUPT_ID] == raised.id


def test_no_value_without_opt_in(tracing: Any) -> None:
    """Content capture off (the default): the interrupt's value goes nowhere."""
    _run(_in_subgraph(), tracing, False)
    for span in tracing[1].get_finished_spans():
        for event in span.events:
            assert n.ATTR_INTERRUPT_VALUE not in (event.attributes or {})
            assert "refund" not in json.dumps(dict(event.attributes or {}))


@pytest.mark.parametrize("mode", [n.CAPTURE_SPAN_ONLY, n.CAPTURE_EVENT_ONLY])
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_value_as_json_when_opted_in(tracing: Any, use_async: bool, mode: str) -> None:
    """Capture on: the value as JSON, on the task's and the run's events."""
    _run(_in_subgraph(), tracing, use_async, capture_content=mode)
    for name in ("invoke_node ask", "invoke_workflow outer"):
        value = _event(_span(tracing[1], name))[n.ATTR_INTERRUPT_VALUE]
        assert json.loads(value) == QUESTION, name


def test_value_is_truncated_and_redacted(tracing: Any) -> None:
    """The value follows the content policy: redaction first, then truncation."""
    _run(
        _in_subgraph(),
        tracing,
        False,
        capture_content=n.CAPTURE_SPAN_ONLY,
        max_content_length=25,
        redact=lambda text: text.replace("question", "QUESTION"),
    )
    value = _event(_span(tracing[1], "invoke_node ask"))[n.ATTR_INTERRUPT_VALUE]
    assert value.startswith('{"QUESTION"')
    assert len(value) == 25
    assert len(json.dumps(QUESTION)) > 25


@pytest.mark.parametrize("subgraphs", [False, True], ids=["top", "subgraphs"])
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_interrupt_inside_a_subgraph(
    tracing: Any, use_async: bool, subgraphs: bool
) -> None:
    """Inside a subgraph: the run's event names the inner node; each task its own."""
    provider, exporter = tracing
    traced = lg_otel.instrument(_in_subgraph(), tracer_provider=provider)
    config = thread_config()
    if use_async:

        async def drain() -> None:
            async for _ in traced.astream({"log": []}, config, subgraphs=subgraphs):
                pass

        asyncio.run(drain())
    else:
        for _ in traced.stream({"log": []}, config, subgraphs=subgraphs):
            pass
    (raised,) = traced.get_state(config).interrupts
    ask = _span(exporter, "invoke_node ask")
    review = _span(exporter, "invoke_node review")
    run = _span(exporter, "invoke_workflow outer")
    assert _event(run)[n.ATTR_NODE] == "ask"
    assert _event(run)[n.ATTR_TASK_ID] == ask.attributes[n.ATTR_TASK_ID]
    assert _event(review)[n.ATTR_NODE] == "review"
    assert _event(review)[n.ATTR_TASK_ID] == review.attributes[n.ATTR_TASK_ID]
    for span in (ask, review, run):
        assert _event(span)[n.ATTR_INTERRUPT_ID] == raised.id
        assert _event(span)[n.ATTR_INTERRUPT_COUNT] == 1


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_parallel_interrupts_are_counted_on_the_run(
    tracing: Any, use_async: bool
) -> None:
    """Two tasks interrupting in one step: each its own id; the run counts two."""
    raised = _run(_two_at_once(), tracing, use_async)
    assert len(raised) == 2
    ids = {
        _event(_span(tracing[1], f"invoke_node {name}"))[n.ATTR_INTERRUPT_ID]
        for name in ("ask_a", "ask_b")
    }
    assert ids == {i.id for i in raised}
    run = _event(_span(tracing[1], "invoke_workflow pair"))
    assert run[n.ATTR_INTERRUPT_COUNT] == 2
    assert run[n.ATTR_NODE] in ("ask_a", "ask_b")
    assert run[n.ATTR_INTERRUPT_ID] in ids


def test_resumed_run_has_no_interrupt_event(tracing: Any) -> None:
    """After Command(resume=...), the resumed run and its tasks carry no event."""
    graph = human()
    config = thread_config()
    _run(graph, tracing, False, config=config)
    tracing[1].clear()
    _run(graph, tracing, False, Command(resume="yes"), config=config)
    spans = tracing[1].get_finished_spans()
    assert {s.name for s in spans} >= {"invoke_workflow human", "invoke_node ask"}
    assert not [e for s in spans for e in s.events if e.name == n.EVENT_INTERRUPT]


def test_static_breakpoint_event_has_no_task(tracing: Any) -> None:
    """interrupt_before: the run pauses with no task raising; the event says 0."""
    g = StateGraph(S)
    g.add_node("prepare", _visit("prepare"))
    g.add_node("finish", _visit("finish"))
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "finish")
    graph = g.compile(
        name="brake", checkpointer=InMemorySaver(), interrupt_before=["finish"]
    )
    _run(graph, tracing, False)
    run = _span(tracing[1], "invoke_workflow brake")
    assert run.attributes[n.ATTR_STATUS] == n.STATUS_INTERRUPTED
    assert _event(run) == {n.ATTR_INTERRUPT_COUNT: 0}


def test_parse_task_reads_interrupt_objects_and_dicts() -> None:
    """A tasks result's interrupts give ids and values, as objects or dicts."""
    as_object = Interrupt(value="v1", id="id-1")
    payload = {
        "id": "t",
        "name": "ask",
        "error": None,
        "result": None,
        "interrupts": [as_object, {"value": "v2", "id": "id-2"}],
    }
    event = parse_task(payload)
    assert isinstance(event, TaskResult)
    assert event.interrupts == 2
    assert event.interrupt_ids == ("id-1", "id-2")
    assert event.interrupt_values == ("v1", "v2")
