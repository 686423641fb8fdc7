"""``langgraph.namespace`` and ``langgraph.subgraph.name`` on task spans; the label."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.pregel import Pregel
from langgraph.types import Command, Send, interrupt
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

import lg_otel
from lg_otel import _names as n
from lg_otel._parse import namespace_of
from tests.conftest import attrs_of, thread_config
from tests.graphs import S, _visit, nested

TASK = "langgraph_task_duration_seconds_count"
#: Each node of tests.graphs.nested -> the subgraph path that leads to it.
NESTED = {
    "pre": None,
    "mid": None,
    "inner": "mid",
    "leaf": "mid|inner",
    "after": "mid",
    "post": None,
}


def _spans(exporter: Any) -> dict[str, Any]:
    """Task spans by node name (each node runs once in these graphs)."""
    spans = {}
    for span in exporter.get_finished_spans():
        if span.name.startswith(f"{n.SPAN_TASK} "):
            assert span.attributes[n.ATTR_NODE] not in spans
            spans[span.attributes[n.ATTR_NODE]] = span
    return spans


def _drive(graph: Any, use_async: bool, *inputs: Any, **kwargs: Any) -> None:
    if not use_async:
        for value in inputs:
            for _ in graph.stream(value, **kwargs):
                pass
        return

    async def drain() -> None:
        for value in inputs:
            async for _ in graph.astream(value, **kwargs):
                pass

    asyncio.run(drain())


def _two_plans() -> Pregel[Any, Any, Any, Any]:
    """research (subgraph: plan) -> write (subgraph: plan): two nodes named plan."""

    def sub(name: str) -> Pregel[Any, Any, Any, Any]:
        g = StateGraph(S)
        g.add_node("plan", _visit("plan"))
        g.add_edge(START, "plan")
        return g.compile(name=name)

    g = StateGraph(S)
    g.add_node("research", sub("research_graph"))
    g.add_node("write", sub("write_graph"))
    g.add_edge(START, "research")
    g.add_edge("research", "write")
    return g.compile(name="two_plans")


def test_namespace_of_drops_task_ids_and_the_task_itself() -> None:
    """A checkpoint namespace becomes the node names above the task, ids left out."""
    assert namespace_of("plan:1f0e") == ""
    assert namespace_of("research:1f0e|plan:2a9b") == "research"
    assert namespace_of("a:1|b:2|c:3") == "a|b"
    # A checkpointer=True subgraph's own namespace keeps no task ids.
    assert namespace_of("research|plan:2a9b") == "research"
    assert namespace_of("a:1|research|plan:2a9b") == "a|research"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("subgraphs", [False, True], ids=["top", "subgraphs"])
def test_nested_tasks_carry_their_namespace(
    tracing: Any, use_async: bool, subgraphs: bool
) -> None:
    """Each task span of the nested shape has the path of parent node names."""
    provider, exporter = tracing
    graph = lg_otel.instrument(nested(), tracer_provider=provider, registry=False)
    _drive(graph, use_async, {"log": []}, subgraphs=subgraphs)
    spans = _spans(exporter)
    assert set(spans) == set(NESTED)
    for node, namespace in NESTED.items():
        assert spans[node].attributes.get(n.ATTR_NAMESPACE) == namespace, node


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_subgraph_name_on_the_node_that_runs_it(tracing: Any, use_async: bool) -> None:
    """The task span of a subgraph node carries the subgraph's compiled name."""
    provider, exporter = tracing
    graph = lg_otel.instrument(nested(), tracer_provider=provider, registry=False)
    _drive(graph, use_async, {"log": []})
    names = {
        node: span.attributes.get(n.ATTR_SUBGRAPH_NAME)
        for node, span in _spans(exporter).items()
    }
    assert names == {
        "pre": None,
        "mid": "mid_graph",
        "inner": "inner_graph",
        "leaf": None,
        "after": None,
        "post": None,
    }


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_subgraph_called_from_node_code(tracing: Any, use_async: bool) -> None:
    """A graph a function node invokes: its name on the node, the node in the path."""
    provider, exporter = tracing
    inner = nested()
    g = StateGraph(S)
    if use_async:

        async def research(state: S) -> Any:
            return await inner.ainvoke(state)

    else:

        def research(state: S) -> Any:  # type: ignore[misc]
            return inner.invoke(state)

    g.add_node("research", research)
    g.add_edge(START, "research")
    graph = lg_otel.instrument(
        g.compile(name="outer"), tracer_provider=provider, registry=False
    )
    _drive(graph, use_async, {"log": []})
    spans = _spans(exporter)
    assert spans["research"].attributes[n.ATTR_SUBGRAPH_NAME] == "nested"
    assert n.ATTR_NAMESPACE not in spans["research"].attributes
    assert spans["pre"].attributes[n.ATTR_NAMESPACE] == "research"
    assert spans["leaf"].attributes[n.ATTR_NAMESPACE] == "research|mid|inner"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_send_fanout_inside_a_subgraph(tracing: Any, use_async: bool) -> None:
    """Tasks a Send fans out inside a subgraph carry the subgraph node's name."""
    provider, exporter = tracing
    sub = StateGraph(S)
    sub.add_node("split", _visit("split"))
    sub.add_node("work", _visit("work"))
    sub.add_edge(START, "split")
    sub.add_conditional_edges(
        "split", lambda s: [Send("work", {"log": [str(i)]}) for i in range(3)]
    )
    g = StateGraph(S)
    g.add_node("research", sub.compile(name="fan"))
    g.add_edge(START, "research")
    graph = lg_otel.instrument(
        g.compile(name="outer"), tracer_provider=provider, registry=False
    )
    _drive(graph, use_async, {"log": []})
    works = [
        s for s in exporter.get_finished_spans() if s.name == f"{n.SPAN_TASK} work"
    ]
    assert len(works) == 3
    assert {s.attributes[n.ATTR_NAMESPACE] for s in works} == {"research"}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_resumed_subgraph_task_keeps_its_namespace(
    tracing: Any, use_async: bool
) -> None:
    """An interrupt inside a subgraph, then a resume: both attempts carry the path."""
    provider, exporter = tracing

    def ask(state: S) -> Any:
        return {"log": [f"answer:{interrupt('approve?')}"]}

    sub = StateGraph(S)
    sub.add_node("ask", ask)
    sub.add_edge(START, "ask")
    g = StateGraph(S)
    g.add_node("review", sub.compile(name="review_graph"))
    g.add_edge(START, "review")
    graph = lg_otel.instrument(
        g.compile(name="outer", checkpointer=InMemorySaver()),
        tracer_provider=provider,
        registry=False,
    )
    _drive(graph, use_async, {"log": []}, Command(resume="yes"), config=thread_config())
    asks = [s for s in exporter.get_finished_spans() if s.name == f"{n.SPAN_TASK} ask"]
    assert len(asks) == 2
    assert {s.attributes[n.ATTR_NAMESPACE] for s in asks} == {"review"}


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_same_named_nodes_are_two_series(use_async: bool) -> None:
    """Two nodes named plan in two subgraphs: one task series each, by namespace."""
    registry = CollectorRegistry()
    graph = lg_otel.instrument(_two_plans(), registry=registry)
    _drive(graph, use_async, {"log": []})
    for namespace in ("research", "write"):
        labels = {
            "langgraph_graph": "two_plans",
            "langgraph_node": "plan",
            "langgraph_namespace": namespace,
            "langgraph_status": "ok",
        }
        assert registry.get_sample_value(TASK, labels) == 1, namespace


def test_top_level_tasks_have_an_empty_namespace_label() -> None:
    """A top-level node's series has langgraph_namespace="" on the Prometheus path."""
    registry = CollectorRegistry()
    graph = lg_otel.instrument(_two_plans(), registry=registry)
    graph.invoke({"log": []})
    labels = {
        "langgraph_graph": "two_plans",
        "langgraph_node": "research",
        "langgraph_namespace": "",
        "langgraph_status": "ok",
    }
    assert registry.get_sample_value(TASK, labels) == 1


def test_namespace_attribute_on_the_otel_path() -> None:
    """OTel data points carry langgraph.namespace, absent (empty) at the top level."""
    reader = InMemoryMetricReader()
    graph = lg_otel.instrument(
        _two_plans(),
        meter_provider=MeterProvider(metric_readers=[reader]),
        registry=False,
    )
    graph.invoke({"log": []})
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        (attrs_of(p)[n.LABEL_NODE], attrs_of(p).get(n.LABEL_NAMESPACE))
        for r in data.resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
        if m.name == n.METRIC_TASK_DURATION
        for p in m.data.data_points
    }
    assert points == {
        ("research", None),
        ("write", None),
        ("plan", "research"),
        ("plan", "write"),
    }


def test_namespace_label_is_capped() -> None:
    """Past max_label_values distinct paths, the namespace label becomes other."""
    registry = CollectorRegistry()
    graph = lg_otel.instrument(
        _two_plans(), registry=registry, config=lg_otel.Config(max_label_values=1)
    )
    graph.invoke({"log": []})
    namespaces = {
        sample.labels["langgraph_namespace"]
        for family in registry.collect()
        for sample in family.samples
        if sample.name == TASK
    }
    assert namespaces == {"", "research", n.LABEL_OTHER}
