"""``langgraph.run.time_to_first_chunk``: the caller's first item of any mode, timed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from prometheus_client import CollectorRegistry

import lg_otel
from lg_otel import _names as n
from tests.graphs import S

TOLERANCE = 0.005
FAMILY = "langgraph_run_time_to_first_chunk_seconds"
pytestmark = pytest.mark.usefixtures("no_gc_pauses")


def _tokens_graph(before: float, use_async: bool) -> Any:
    """think (sleeps ``before``) -> speak (writes 5 tokens with get_stream_writer)."""
    g = StateGraph(S)
    if use_async:

        async def think(state: S) -> Any:
            await asyncio.sleep(before)
            return {"log": ["think"]}

        async def speak(state: S) -> Any:
            write = get_stream_writer()
            for i in range(5):
                write({"token": f"t{i}"})
                await asyncio.sleep(0.01)
            return {"log": ["speak"]}

    else:

        def think(state: S) -> Any:  # type: ignore[misc]
            time.sleep(before)
            return {"log": ["think"]}

        def speak(state: S) -> Any:  # type: ignore[misc]
            write = get_stream_writer()
            for i in range(5):
                write({"token": f"t{i}"})
                time.sleep(0.01)
            return {"log": ["speak"]}

    g.add_node("think", think)
    g.add_node("speak", speak)
    g.add_edge(START, "think")
    g.add_edge("think", "speak")
    g.add_edge("speak", END)
    return g.compile(name="tokens")


class _Meters:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def instrument(self, graph: Any) -> Any:
        return lg_otel.instrument(
            graph, meter_provider=self.provider, registry=self.registry
        )

    def prom(self, suffix: str) -> float | None:
        return self.registry.get_sample_value(
            f"{FAMILY}_{suffix}", {"langgraph_graph": "tokens"}
        )

    def otel(self) -> list[HistogramDataPoint]:
        data = self.reader.get_metrics_data()
        return [
            point
            for resource in (data.resource_metrics if data else ())
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == n.METRIC_RUN_TTFC
            for point in metric.data.data_points
            if isinstance(point, HistogramDataPoint)
        ]


@pytest.fixture
def meters() -> _Meters:
    """Fresh metric backends for one test."""
    return _Meters()


@pytest.fixture(scope="module", autouse=True)
def _warm_up() -> None:
    """One untimed streamed run, sync and async: one-time set-up is not the graph's."""
    graph = lg_otel.instrument(_tokens_graph(0.0, False), registry=False)
    for _ in graph.stream({"log": []}, stream_mode="custom"):
        pass

    async def drain() -> None:
        agraph = lg_otel.instrument(_tokens_graph(0.0, True), registry=False)
        async for _ in agraph.astream({"log": []}, stream_mode="custom"):
            pass

    asyncio.run(drain())


@pytest.mark.parametrize("mode", ["custom", "updates"])
def test_sync_first_chunk_matches_the_callers_clock(meters: _Meters, mode: str) -> None:
    """Sync: the first custom token (or first update) out, on the caller's clock."""
    graph = meters.instrument(_tokens_graph(0.08, False))
    first: float | None = None
    started = time.perf_counter()
    for _ in graph.stream({"log": []}, stream_mode=mode):
        if first is None:
            first = time.perf_counter() - started
    assert first is not None
    assert first >= 0.08
    assert meters.prom("count") == 1
    assert meters.prom("sum") == pytest.approx(first, abs=TOLERANCE)


@pytest.mark.parametrize("mode", ["custom", "updates"])
async def test_async_first_chunk_matches_the_callers_clock(
    meters: _Meters, mode: str
) -> None:
    """Async: the first custom token (or first update) out, on the caller's clock."""
    graph = meters.instrument(_tokens_graph(0.08, True))
    first: float | None = None
    started = time.perf_counter()
    async for _ in graph.astream({"log": []}, stream_mode=mode):
        if first is None:
            first = time.perf_counter() - started
    assert first is not None
    assert first >= 0.08
    assert meters.prom("count") == 1
    assert meters.prom("sum") == pytest.approx(first, abs=TOLERANCE)


def test_first_chunk_on_the_otel_path(meters: _Meters) -> None:
    """The OTel histogram gets the same single observation, labelled by graph."""
    graph = meters.instrument(_tokens_graph(0.05, False))
    for _ in graph.stream({"log": []}, stream_mode=["custom", "updates"]):
        pass
    (point,) = meters.otel()
    assert point.count == 1
    assert dict(point.attributes or {}) == {n.LABEL_GRAPH: "tokens"}
    assert point.sum == pytest.approx(meters.prom("sum"))


def test_one_observation_per_streaming_call(meters: _Meters) -> None:
    """Many items out of one call: still one observation, the first item's."""
    graph = meters.instrument(_tokens_graph(0.0, False))
    items = list(graph.stream({"log": []}, stream_mode=["custom", "values"]))
    assert len(items) > 5
    assert meters.prom("count") == 1


def test_invoke_records_none(meters: _Meters) -> None:
    """invoke() is not a streaming call: no time to first chunk."""
    graph = meters.instrument(_tokens_graph(0.0, False))
    graph.invoke({"log": []})
    graph.batch([{"log": []}, {"log": []}])
    assert meters.prom("count") is None
    assert meters.otel() == []


async def test_ainvoke_records_none(meters: _Meters) -> None:
    """ainvoke() (and abatch()) are not streaming calls: no time to first chunk."""
    graph = meters.instrument(_tokens_graph(0.0, True))
    await graph.ainvoke({"log": []})
    await graph.abatch([{"log": []}, {"log": []}])
    assert meters.prom("count") is None
    assert meters.otel() == []


def test_stream_after_invoke_still_records(meters: _Meters) -> None:
    """The invoke() marker ends with the call: a later stream() is timed."""
    graph = meters.instrument(_tokens_graph(0.0, False))
    graph.invoke({"log": []})
    for _ in graph.stream({"log": []}, stream_mode="updates"):
        pass
    assert meters.prom("count") == 1
