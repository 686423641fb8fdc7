"""Reliability under load: concurrent runs, a soak, failing back-ends, stale state."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from prometheus_client import CollectorRegistry, Histogram
from typing_extensions import TypedDict

import lg_otel
from lg_otel import _names as n
from lg_otel.testing import SimulatedChatModel
from tests.conftest import RaisingOnEnd, instrumentation, provider_for


class State(TypedDict, total=False):
    """Per-run state: the run's own id travels through every node."""

    run: str
    log: list[str]
    messages: list[Any]


def busy_graph(use_async: bool = True) -> Any:
    """fan-out (3 branches) -> sub (subgraph of 2) -> chat (streams 5 chunks)."""
    model = SimulatedChatModel(
        messages=itertools.cycle(["one two three"]), chunk_delay=0.001
    )

    def step(name: str) -> Any:
        async def anode(state: State) -> Any:
            await asyncio.sleep(0.001)
            return {}

        def node(state: State) -> Any:
            time.sleep(0.001)
            return {}

        return anode if use_async else node

    sub = StateGraph(State)
    sub.add_node("s1", step("s1"))
    sub.add_node("s2", step("s2"))
    sub.add_edge(START, "s1")
    sub.add_edge("s1", "s2")

    async def achat(state: State) -> Any:
        await model.ainvoke([HumanMessage(state["run"])])
        return {}

    def chat(state: State) -> Any:
        model.invoke([HumanMessage(state["run"])])
        return {}

    g = StateGraph(State)
    for name in ("a", "b", "c"):
        g.add_node(name, step(name))
        g.add_edge(START, name)
    g.add_node("sub", sub.compile())
    g.add_node("chat", achat if use_async else chat)
    g.add_edge(["a", "b", "c"], "sub")
    g.add_edge("sub", "chat")
    g.add_edge("chat", END)
    return g.compile(name="busy")


#: Spans per run of busy_graph: run, 6 tasks at the top (a, b, c, sub, chat) +
#: 2 inside sub, and 1 chat span.
PER_RUN = Counter(
    {
        "invoke_workflow busy": 1,
        "invoke_node a": 1,
        "invoke_node b": 1,
        "invoke_node c": 1,
        "invoke_node sub": 1,
        "invoke_node s1": 1,
        "invoke_node s2": 1,
        "invoke_node chat": 1,
        "chat simulated-chat": 1,
    }
)
PARENT = {
    "invoke_node a": "invoke_workflow busy",
    "invoke_node b": "invoke_workflow busy",
    "invoke_node c": "invoke_workflow busy",
    "invoke_node sub": "invoke_workflow busy",
    "invoke_node chat": "invoke_workflow busy",
    "invoke_node s1": "invoke_node sub",
    "invoke_node s2": "invoke_node sub",
    "chat simulated-chat": "invoke_node chat",
}


def assert_traces(spans: Sequence[ReadableSpan], runs: int) -> None:
    """One trace per run, each with exactly the expected spans and parents."""
    traces: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        traces[span.context.trace_id].append(span)
    assert len(traces) == runs
    for members in traces.values():
        assert Counter(s.name for s in members) == PER_RUN
        by_id = {s.context.span_id: s for s in members}
        for span in members:
            if span.name in PARENT:
                assert span.parent is not None
                assert by_id[span.parent.span_id].name == PARENT[span.name]


class Backends:
    """Tracing and metrics backends for one test."""

    def __init__(self, span_path: str) -> None:
        self.tracer_provider, self.exporter = provider_for(span_path)
        self.registry = CollectorRegistry()
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def instrument(self, graph: Any) -> Any:
        return lg_otel.instrument(
            graph,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            registry=self.registry,
        )

    def count(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def assert_counts(b: Backends, graph: Any, runs: int) -> None:
    """Run, task and chunk counts equal what happened; nothing left in flight."""
    ok = {"langgraph_graph": "busy", "langgraph_status": "ok"}
    assert b.count("langgraph_run_duration_seconds_count", **ok) == runs
    for node in ("a", "b", "c", "sub", "s1", "s2", "chat"):
        count = b.count(
            "langgraph_task_duration_seconds_count",
            **ok,
            langgraph_node=node,
            langgraph_namespace="sub" if node in ("s1", "s2") else "",
        )
        assert count == runs, node
    assert b.count("langgraph_runs_active", langgraph_graph="busy") == 0
    assert instrumentation(graph).active.count == 0
    assert instrumentation(graph).errors.total() == 0


def test_200_concurrent_astream_runs(span_path: str) -> None:
    """200 concurrent astream runs in one loop: separate, complete, exact traces."""
    b = Backends(span_path)
    graph = b.instrument(busy_graph())

    async def one(i: int) -> None:
        async for _ in graph.astream(
            {"run": f"run-{i}"}, stream_mode=["updates", "messages"]
        ):
            pass

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(200)))

    asyncio.run(main())
    assert_traces(b.exporter.get_finished_spans(), 200)
    assert_counts(b, graph, 200)


def test_eight_threads_invoking(span_path: str) -> None:
    """8 threads each invoking 15 times: 120 separate, complete traces."""
    b = Backends(span_path)
    graph = b.instrument(busy_graph(use_async=False))
    failures: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(15):
                graph.invoke({"run": f"t{t}-{i}"})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert_traces(b.exporter.get_finished_spans(), 120)
    assert_counts(b, graph, 120)


def tiny_graph() -> Any:
    """Two trivial nodes."""
    g = StateGraph(State)
    g.add_node("x", lambda s: {})
    g.add_node("y", lambda s: {})
    g.add_edge(START, "x")
    g.add_edge("x", "y")
    return g.compile(name="tiny")


def test_soak_10000_runs_leaves_no_state(span_path: str) -> None:
    """10,000 runs: no run in flight after each, bounded caches, exact counts."""
    b = Backends(span_path)
    b.tracer_provider = TracerProvider()  # spans go nowhere: this is about our state
    graph = b.instrument(tiny_graph())
    instr = instrumentation(graph)
    for i in range(10_000):
        graph.invoke({"run": str(i)}, {"configurable": {"thread_id": f"t{i}"}})
        assert instr.active.count == 0
    assert len(instr.links._by_thread) == 0  # no interrupted threads remembered
    ok = {"langgraph_graph": "tiny", "langgraph_status": "ok"}
    assert b.count("langgraph_run_duration_seconds_count", **ok) == 10_000
    assert instr.errors.total() == 0


class RaisingExporter(SpanExporter):
    """Every export raises."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionError("collector down")

    def shutdown(self) -> None:
        pass


def _latencies(graph: Any, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        graph.invoke({"messages": [HumanMessage("x")]})
        out.append(time.perf_counter() - started)
    return sorted(out)


def _chat() -> Any:
    model = SimulatedChatModel(
        messages=itertools.cycle(["a b"]), first_chunk_delay=0.005
    )

    def node(state: State) -> Any:
        model.invoke("x")
        return {}

    g = StateGraph(State)
    g.add_node("chat", node)
    g.add_edge(START, "chat")
    return g.compile(name="busy")


def _provider(kind: str) -> TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider()
    if kind == "healthy":
        provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    elif kind == "raising":
        provider.add_span_processor(SimpleSpanProcessor(RaisingExporter()))
    elif kind == "closed-port":
        exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", timeout=1)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@pytest.mark.parametrize("kind", ["raising", "closed-port", "silent"])
def test_failing_backend_leaves_output_and_latency(
    kind: str, monkeypatch: pytest.MonkeyPatch, no_gc_pauses: None
) -> None:
    """Raising exporter, closed port, silent endpoint: same output and latency."""
    # no_gc_pauses: late in a full suite a full collection takes 100-200 ms (the
    # heap holds what earlier tests left); one that landed on a timed run of the
    # broken side was that side's p99 (157 ms against a 71 ms bound, in CI).
    import logging
    import socket

    # The SDK logs each failed export with a traceback; pytest's capturing handler
    # formats it under the logging lock and stalls every other thread that logs for
    # ~100 ms. That is this harness's handler, not the exporter: keep it out.
    otel_logger = logging.getLogger("opentelemetry")
    monkeypatch.setattr(otel_logger, "handlers", [logging.NullHandler()])
    monkeypatch.setattr(otel_logger, "propagate", False)

    silent = None
    if kind == "silent":
        # Accepts connections and never answers.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        provider = TracerProvider()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces"
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=1))
        )
    else:
        provider = _provider(kind)
    healthy = lg_otel.instrument(_chat(), tracer_provider=_provider("healthy"))
    broken = lg_otel.instrument(_chat(), tracer_provider=provider)
    bare = _chat()
    out = [g.invoke({"messages": [HumanMessage("x")]}) for g in (bare, broken)]
    assert out[0] == out[1]
    # The exporter's first attempt pays one-time imports and connection set-up in
    # the SDK's worker thread; let that happen before anything is timed.
    _latencies(healthy, 5)
    _latencies(broken, 5)
    provider.force_flush(timeout_millis=3000)
    # Interleaved (A B A B ...) so this shared machine's drift hits both alike.
    good: list[float] = []
    bad: list[float] = []
    for _ in range(40):
        good += _latencies(healthy, 2)
        bad += _latencies(broken, 2)
    good.sort()
    bad.sort()
    assert bad[40] < good[40] * 1.5 + 0.002  # p50
    assert bad[79] < good[79] * 3 + 0.05  # p99 (of 80), generous: one outlier
    provider.shutdown()
    if silent is not None:
        silent.close()


def test_conflicting_registry_fails_at_instrument_time() -> None:
    """A registry holding a different metric of our name: ValueError at setup."""
    registry = CollectorRegistry()
    Histogram("langgraph_run_duration_seconds", "someone else's", registry=registry)
    with pytest.raises(ValueError, match="langgraph_run_duration_seconds"):
        lg_otel.instrument(tiny_graph(), registry=registry)


def test_raising_processor_loss_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A raising span processor: counted in lg_otel_internal_errors_total, logged."""
    provider = TracerProvider()
    provider.add_span_processor(RaisingOnEnd())
    registry = CollectorRegistry()
    graph = lg_otel.instrument(
        tiny_graph(), tracer_provider=provider, registry=registry
    )
    with caplog.at_level("DEBUG", logger="lg_otel"):
        graph.invoke({"run": "x"})
    errors = registry.get_sample_value(
        "lg_otel_internal_errors_total", {"component": n.COMPONENT_SPANS}
    )
    assert errors is not None
    assert errors > 0
    assert any("processor down" in r.getMessage() for r in caplog.records)
