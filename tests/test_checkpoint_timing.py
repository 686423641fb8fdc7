"""Checkpoint spans and histograms time the saver within 5 ms, in every durability.

A saver subclass whose ``put`` takes a known 30 ms (measured inside the saver: the
truth) against the span and the histogram observation of each of its calls; and
where, relative to the node tasks, each durability mode puts its saves.
"""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.pregel import Pregel
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from prometheus_client import CollectorRegistry

import lg_otel
from lg_otel import _names as n
from tests.conftest import (
    by_name,
    duration_s,
    end_ns,
    meter_provider_for,
    start_ns,
    thread_config,
)

TOLERANCE = 0.005
PUT_DELAY = 0.03
pytestmark = pytest.mark.usefixtures("no_gc_pauses")


class S(TypedDict):
    """A log of visited nodes."""

    log: Annotated[list[str], operator.add]


class SlowSaver(InMemorySaver):
    """Each put (sync or async) takes 30 ms; ``took`` holds what each one took."""

    def __init__(self) -> None:
        super().__init__()
        self.took: list[float] = []

    def put(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        time.sleep(PUT_DELAY)
        result = super().put(*args, **kwargs)
        self.took.append(time.perf_counter() - started)
        return result

    async def aput(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        await asyncio.sleep(PUT_DELAY)
        result = InMemorySaver.put(self, *args, **kwargs)
        self.took.append(time.perf_counter() - started)
        return result


def two_steps(saver: SlowSaver, use_async: bool = False) -> Pregel[Any, Any, Any, Any]:
    """a (20 ms) -> b (60 ms)."""
    g = StateGraph(S)
    for name, delay in (("a", 0.02), ("b", 0.06)):
        if use_async:

            async def node(state: S, delay: float = delay, name: str = name) -> Any:
                await asyncio.sleep(delay)
                return {"log": [name]}

        else:

            def node(state: S, delay: float = delay, name: str = name) -> Any:  # type: ignore[misc]
                time.sleep(delay)
                return {"log": [name]}

        g.add_node(name, node)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    return g.compile(checkpointer=saver, name="timed")


def _puts(spans: Any) -> list[ReadableSpan]:
    return sorted(
        by_name(spans, f"{n.SPAN_CHECKPOINT} put"), key=lambda s: s.start_time or 0
    )


def _histogram(reader: InMemoryMetricReader) -> HistogramDataPoint:
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != n.METRIC_CHECKPOINT_DURATION:
                    continue
                for point in metric.data.data_points:
                    attrs = point.attributes or {}
                    if attrs.get(n.LABEL_CHECKPOINT_OPERATION) == "put":
                        return point  # type: ignore[return-value]
    raise AssertionError("no put observations")


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_put_spans_and_observations_match_the_savers_time(
    tracing: Any, use_async: bool, metric_path: str
) -> None:
    """Every put span and histogram observation is within 5 ms of the saver's time."""
    provider, exporter = tracing
    saver = SlowSaver()
    registry, reader = CollectorRegistry(), InMemoryMetricReader()
    traced = lg_otel.instrument(
        two_steps(saver, use_async),
        tracer_provider=provider,
        registry=registry,
        meter_provider=meter_provider_for(metric_path, reader),
    )
    config = thread_config()
    if use_async:
        asyncio.run(traced.ainvoke({"log": []}, config, durability="sync"))
    else:
        traced.invoke({"log": []}, config, durability="sync")
    puts = _puts(exporter.get_finished_spans())
    assert len(puts) == len(saver.took) == 4
    # Saves run one after another under "sync": span order is call order.
    for span, took in zip(puts, saver.took, strict=True):
        assert took <= duration_s(span) <= took + TOLERANCE, (duration_s(span), took)
    point = _histogram(reader)
    assert point.count == 4
    assert min(saver.took) <= point.min <= min(saver.took) + TOLERANCE
    assert max(saver.took) <= point.max <= max(saver.took) + TOLERANCE
    labels = {
        "langgraph_graph": "timed",
        "langgraph_checkpoint_operation": "put",
        "langgraph_checkpoint_saver": "SlowSaver",
        "langgraph_status": "ok",
    }
    total = registry.get_sample_value(
        "langgraph_checkpoint_duration_seconds_sum", labels
    )
    assert total is not None
    assert sum(saver.took) <= total <= sum(saver.took) + 4 * TOLERANCE


def _traced(tracing: Any, saver: SlowSaver) -> tuple[Any, Any]:
    provider, exporter = tracing
    return lg_otel.instrument(two_steps(saver), tracer_provider=provider), exporter


def test_async_durability_save_overlaps_the_next_task(tracing: Any) -> None:
    """durability="async": the save after a runs while b runs, and its span shows it."""
    traced, exporter = _traced(tracing, SlowSaver())
    traced.invoke({"log": []}, thread_config(), durability="async")
    spans = exporter.get_finished_spans()
    (a,) = by_name(spans, f"{n.SPAN_TASK} a")
    (b,) = by_name(spans, f"{n.SPAN_TASK} b")
    after_a = [p for p in _puts(spans) if start_ns(p) >= end_ns(a)]
    assert after_a
    save = after_a[0]
    assert start_ns(save) < end_ns(b)
    assert end_ns(save) > start_ns(b)


def test_sync_durability_save_ends_before_the_next_task_starts(tracing: Any) -> None:
    """durability="sync": the save after a ends before b starts."""
    traced, exporter = _traced(tracing, SlowSaver())
    traced.invoke({"log": []}, thread_config(), durability="sync")
    spans = exporter.get_finished_spans()
    (a,) = by_name(spans, f"{n.SPAN_TASK} a")
    (b,) = by_name(spans, f"{n.SPAN_TASK} b")
    after_a = [p for p in _puts(spans) if start_ns(p) >= end_ns(a)]
    assert end_ns(after_a[0]) <= start_ns(b)
    assert duration_s(after_a[0]) >= PUT_DELAY


def test_exit_durability_saves_once_after_the_last_task(tracing: Any) -> None:
    """durability="exit": one save, after the last task, inside the run span."""
    saver = SlowSaver()
    traced, exporter = _traced(tracing, saver)
    traced.invoke({"log": []}, thread_config(), durability="exit")
    spans = exporter.get_finished_spans()
    (b,) = by_name(spans, f"{n.SPAN_TASK} b")
    (run,) = by_name(spans, f"{n.SPAN_RUN} timed")
    (save,) = _puts(spans)
    assert start_ns(save) >= end_ns(b)
    assert end_ns(save) <= end_ns(run)
    assert saver.took[0] <= duration_s(save) <= saver.took[0] + TOLERANCE
