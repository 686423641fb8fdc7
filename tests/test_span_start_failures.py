"""A span that fails to start costs that span alone, never the rest of the run's."""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from prometheus_client import CollectorRegistry

import lg_otel
from lg_otel import _names as n
from tests.conftest import by_name, normalise, thread_config
from tests.graphs import SHAPES, Shape

AGENT = next(s for s in SHAPES if s.name == "agent")
NESTED = next(s for s in SHAPES if s.name == "nested")


class FailingStart(SpanProcessor):
    """Raises in on_start for spans whose name starts with a prefix ('' = all)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.attempted: list[str] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.attempted.append(span.name)
        if span.name.startswith(self.prefix):
            raise RuntimeError(f"on_start broke on {span.name}")

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing: only the start fails."""


def _provider(failing: FailingStart) -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    provider.add_span_processor(failing)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _drive(graph: Any, shape: Shape) -> list[str]:
    config = thread_config()
    out: list[str] = []
    for inp in shape.inputs:
        out.extend(normalise(c) for c in graph.stream(inp, config))
    return out


def _expected_spans(shape: Shape) -> int:
    return 1 + sum(shape.tasks.values()) + shape.llm_calls + shape.tool_calls


def test_every_span_is_attempted_when_every_start_fails() -> None:
    """on_start always raising: every span is still attempted, each failure counted."""
    failing = FailingStart()
    provider, exporter = _provider(failing)
    registry = CollectorRegistry()
    traced = lg_otel.instrument(
        AGENT.build(), tracer_provider=provider, registry=registry
    )
    assert _drive(traced, AGENT) == _drive(AGENT.build(), AGENT)
    assert len(failing.attempted) == _expected_spans(AGENT)
    assert exporter.get_finished_spans() == ()
    errors = registry.get_sample_value(
        "lg_otel_internal_errors_total", {"component": n.COMPONENT_SPANS}
    )
    assert errors == _expected_spans(AGENT)
    provider.shutdown()


def test_failed_run_span_leaves_tasks_under_the_callers_span() -> None:
    """Only the run span fails: tasks go under the caller's span, calls under tasks."""
    failing = FailingStart(n.SPAN_RUN)
    provider, exporter = _provider(failing)
    traced = lg_otel.instrument(AGENT.build(), tracer_provider=provider)
    tracer = provider.get_tracer("caller")
    with tracer.start_as_current_span("request") as request:
        _drive(traced, AGENT)
    spans = exporter.get_finished_spans()
    assert len(spans) == _expected_spans(AGENT)  # the request, and all but the run
    tasks = [s for s in spans if s.name.startswith(n.SPAN_TASK)]
    assert len(tasks) == sum(AGENT.tasks.values())
    caller = request.get_span_context().span_id
    assert {t.parent.span_id for t in tasks if t.parent} == {caller}
    task_ids = {t.context.span_id for t in tasks}
    calls = [s for s in spans if s not in tasks and s.name != "request"]
    assert len(calls) == AGENT.llm_calls + AGENT.tool_calls
    assert all(c.parent is not None and c.parent.span_id in task_ids for c in calls)
    provider.shutdown()


def test_failed_subgraph_task_span_leaves_inner_tasks_under_the_run() -> None:
    """The task running a subgraph fails to start: inner tasks nest under the run."""
    failing = FailingStart(f"{n.SPAN_TASK} mid")
    provider, exporter = _provider(failing)
    traced = lg_otel.instrument(NESTED.build(), tracer_provider=provider)
    _drive(traced, NESTED)
    spans = exporter.get_finished_spans()
    assert not by_name(spans, f"{n.SPAN_TASK} mid")
    (run,) = [s for s in spans if s.name.startswith(n.SPAN_RUN)]
    inner = by_name(spans, f"{n.SPAN_TASK} inner")
    assert inner
    assert inner[0].parent is not None
    assert inner[0].parent.span_id == run.context.span_id
    leaf = by_name(spans, f"{n.SPAN_TASK} leaf")
    assert leaf
    assert leaf[0].parent is not None
    assert leaf[0].parent.span_id == inner[0].context.span_id
    provider.shutdown()


def test_user_span_in_a_node_whose_span_failed_nests_under_the_run() -> None:
    """A span user code starts in a node whose task span failed nests one level up."""
    from langgraph.graph import START, StateGraph
    from typing_extensions import TypedDict

    class St(TypedDict, total=False):
        x: int

    failing = FailingStart(f"{n.SPAN_TASK} work")
    provider, exporter = _provider(failing)
    user_tracer = provider.get_tracer("user-code")

    def work(state: St) -> dict[str, Any]:
        with user_tracer.start_as_current_span("user work"):
            return {"x": 1}

    g = StateGraph(St)
    g.add_node("work", work)
    g.add_edge(START, "work")
    traced = lg_otel.instrument(g.compile(name="g"), tracer_provider=provider)
    traced.invoke({"x": 0})
    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.name.startswith(n.SPAN_RUN)]
    (user,) = by_name(spans, "user work")
    assert user.parent is not None
    assert user.parent.span_id == run.context.span_id
    provider.shutdown()
