"""Metrics from real graph runs: every series on both paths, right values, labels."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any, cast

import pytest
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Send
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest
from typing_extensions import TypedDict

import lg_otel
from lg_otel import _batch
from lg_otel import _names as n
from lg_otel.testing import SimulatedChatModel
from tests.conftest import attrs_of, instrumentation, meter_provider_for
from tests.graphs import Boom, failing, human

TOL = 0.005
pytestmark = pytest.mark.usefixtures("no_gc_pauses")
SERIES = {
    "gen_ai_client_operation_time_to_first_chunk_seconds": "histogram",
    "langgraph_llm_time_per_output_chunk_seconds": "histogram",
    "langgraph_llm_max_chunk_gap_seconds": "histogram",
    "gen_ai_client_operation_duration_seconds": "histogram",
    "gen_ai_client_token_usage": "histogram",
    "langgraph_llm_output_tokens_per_second": "histogram",
    "langgraph_run_time_to_first_token_seconds": "histogram",
    "langgraph_run_time_to_first_chunk_seconds": "histogram",
    "langgraph_run_duration_seconds": "histogram",
    "langgraph_task_duration_seconds": "histogram",
    "langgraph_runs_active": "gauge",
    "langgraph_stream_consumer_wait_seconds": "histogram",
    "lg_otel_internal_errors": "counter",
}
LLM_LABELS = {
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "langgraph_graph",
    "langgraph_node",
}


class Meters:
    """A fresh registry and OTel meter provider, and a way to read both."""

    def __init__(self, path: str) -> None:
        self.registry = CollectorRegistry()
        self.reader = InMemoryMetricReader()
        self.provider = meter_provider_for(path, self.reader)

    def instrument(self, graph: Any, tracing: Any, **config: Any) -> Any:
        return lg_otel.instrument(
            graph,
            tracer_provider=tracing[0],
            meter_provider=self.provider,
            registry=self.registry,
            config=lg_otel.Config(**config),
        )

    def value(self, name: str, **labels: str) -> float:
        got = self.registry.get_sample_value(name, labels)
        assert got is not None, (name, labels)
        return got

    def otel_names(self) -> set[str]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return {
            metric.name
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }


@pytest.fixture
def meters(metric_path: str) -> Meters:
    """Fresh metric backends for one test."""
    return Meters(metric_path)


NODE_TRUTH: list[float] = []
MODEL: list[SimulatedChatModel] = []


def chat_graph(first: float, gap: float, work: float = 0.0, usage: bool = True) -> Any:
    """prefix_node -> chatbot (one model call after ``work`` seconds)."""
    model = SimulatedChatModel(
        messages=itertools.cycle(["alpha beta gamma delta epsilon"]),
        first_chunk_delay=first,
        chunk_delay=gap,
        report_usage=usage,
    )
    MODEL[:] = [model]
    for _ in SimulatedChatModel(messages=iter(["warm up"])).stream("hi"):
        pass  # langchain-core's one-time set-up is not the model's latency

    def prefix_node(state: MessagesState) -> Any:
        return {"messages": []}

    def chatbot(state: MessagesState) -> Any:
        started = time.perf_counter()
        time.sleep(work)
        out = {"messages": [model.invoke(state["messages"])]}
        NODE_TRUTH.append(time.perf_counter() - started)
        return out

    g = StateGraph(MessagesState)
    g.add_node("prefix_node", prefix_node)
    g.add_node("chatbot", chatbot)
    g.add_edge(START, "prefix_node")
    g.add_edge("prefix_node", "chatbot")
    g.add_edge("chatbot", END)
    return g.compile(name="chat")


def test_every_series_on_both_paths(meters: Meters, tracing: Any) -> None:
    """After one streamed run (and one internal error) every series exists on both."""
    graph = meters.instrument(chat_graph(0.0, 0.0), tracing)
    for _ in graph.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages"):
        pass
    instrumentation(graph).record_error(n.COMPONENT_PARSE, ValueError("test"))
    families = {m.name: m for m in meters.registry.collect()}
    for name, kind in SERIES.items():
        assert families[name].type == kind, name
    ttfc = families["gen_ai_client_operation_time_to_first_chunk_seconds"]
    assert set(ttfc.samples[0].labels) - {"le"} == LLM_LABELS
    otel = meters.otel_names()
    assert otel == {
        n.METRIC_TTFC,
        n.METRIC_LLM_TIME_PER_CHUNK,
        n.METRIC_LLM_MAX_CHUNK_GAP,
        n.METRIC_LLM_DURATION,
        n.METRIC_TOKEN_USAGE,
        n.METRIC_TOKENS_PER_SECOND,
        n.METRIC_RUN_TTFT,
        n.METRIC_RUN_TTFC,
        n.METRIC_RUN_DURATION,
        n.METRIC_TASK_DURATION,
        n.METRIC_RUNS_ACTIVE,
        n.METRIC_CONSUMER_WAIT,
        n.METRIC_INTERNAL_ERRORS,
    }


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_llm_figures_match_controlled_delays(
    use_async: bool, meters: Meters, tracing: Any
) -> None:
    """TTFC, per-chunk gap, duration, run TTFT and token rate match the delays."""
    first, gap, work = 0.2, 0.02, 0.1
    graph = meters.instrument(chat_graph(first, gap, work, usage=False), tracing)
    inputs = {"messages": [HumanMessage("hi")]}
    started = time.perf_counter()
    arrivals: list[float] = []

    async def consume() -> None:
        async for _ in graph.astream(inputs, stream_mode="messages"):
            arrivals.append(time.perf_counter())

    if use_async:
        asyncio.run(consume())
    else:
        for _ in graph.stream(inputs, stream_mode="messages"):
            arrivals.append(time.perf_counter())
    labels = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "simulated",
        "gen_ai_request_model": "simulated-chat",
        "langgraph_graph": "chat",
        "langgraph_node": "chatbot",
    }
    v = meters.value
    assert v("gen_ai_client_operation_time_to_first_chunk_seconds_count", **labels) == 1
    ttfc = v("gen_ai_client_operation_time_to_first_chunk_seconds_sum", **labels)
    # The model's own clock is the truth (the host may sleep longer than asked).
    assert MODEL[0].first_chunk_times[-1] >= first
    assert ttfc == pytest.approx(MODEL[0].first_chunk_times[-1], abs=TOL)
    per_chunk = v("langgraph_llm_time_per_output_chunk_seconds_sum", **labels)
    assert per_chunk == pytest.approx(gap, abs=TOL)
    duration = v(
        "gen_ai_client_operation_duration_seconds_sum", **labels, error_type=""
    )
    assert duration >= first + 8 * gap
    assert duration == pytest.approx(MODEL[0].stream_times[-1], abs=TOL)
    chunks = 9  # five words and four spaces
    rate = v("langgraph_llm_output_tokens_per_second_sum", **labels)
    assert rate == pytest.approx(chunks / (per_chunk * (chunks - 1)), rel=0.05)
    run_ttft = v(
        "langgraph_run_time_to_first_token_seconds_sum", langgraph_graph="chat"
    )
    # The caller's own clock: from the call to the first token part it received.
    assert run_ttft == pytest.approx(arrivals[0] - started, abs=TOL)
    assert run_ttft >= work + first
    task = v(
        "langgraph_task_duration_seconds_sum",
        langgraph_graph="chat",
        langgraph_node="chatbot",
        langgraph_namespace="",
        langgraph_status="ok",
    )
    assert task == pytest.approx(NODE_TRUTH[-1], abs=TOL)


def test_counts_are_exact(meters: Meters, tracing: Any) -> None:
    """Five runs: five run observations, ten task observations, five model calls."""
    graph = meters.instrument(chat_graph(0.0, 0.0), tracing)
    for _ in range(5):
        graph.invoke({"messages": [HumanMessage("hi")]})
    v = meters.value
    runs = v(
        "langgraph_run_duration_seconds_count",
        langgraph_graph="chat",
        langgraph_status="ok",
    )
    assert runs == 5
    for node in ("prefix_node", "chatbot"):
        assert (
            v(
                "langgraph_task_duration_seconds_count",
                langgraph_graph="chat",
                langgraph_node=node,
                langgraph_namespace="",
                langgraph_status="ok",
            )
            == 5
        )
    assert v("langgraph_runs_active", langgraph_graph="chat") == 0
    token_labels = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "simulated",
        "gen_ai_request_model": "simulated-chat",
        "langgraph_graph": "chat",
        "langgraph_node": "chatbot",
    }
    outputs = v(
        "gen_ai_client_token_usage_sum", **token_labels, gen_ai_token_type="output"
    )
    assert outputs == 5 * 9


def test_status_labels_for_every_outcome(meters: Meters, tracing: Any) -> None:
    """ok, error, interrupted and cancelled runs and tasks get their status label."""
    ok = meters.instrument(chat_graph(0.0, 0.0), tracing)
    ok.invoke({"messages": [HumanMessage("hi")]})
    bad = meters.instrument(failing(), tracing)
    with pytest.raises(Boom):
        bad.invoke({"log": []})
    paused = meters.instrument(human(), tracing)
    paused.invoke({"log": []}, {"configurable": {"thread_id": str(uuid.uuid4())}})
    stopped = meters.instrument(chat_graph(0.0, 0.05), tracing)

    async def cancel_mid_stream() -> None:
        async def consume() -> None:
            async for _ in stopped.astream(
                {"messages": [HumanMessage("hi")]}, stream_mode="messages"
            ):
                task.cancel()

        task = asyncio.create_task(consume())
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_mid_stream())
    v = meters.value
    for graph, status in [
        ("chat", "ok"),
        ("failing", "error"),
        ("human", "interrupted"),
        ("chat", "cancelled"),
    ]:
        assert (
            v(
                "langgraph_run_duration_seconds_count",
                langgraph_graph=graph,
                langgraph_status=status,
            )
            == 1
        ), (graph, status)
    for node, status in [("boom", "error"), ("ask", "interrupted"), ("ok", "ok")]:
        graph = "failing" if node != "ask" else "human"
        assert (
            v(
                "langgraph_task_duration_seconds_count",
                langgraph_graph=graph,
                langgraph_node=node,
                langgraph_namespace="",
                langgraph_status=status,
            )
            == 1
        ), node
    cancelled_chatbot = v(
        "langgraph_task_duration_seconds_count",
        langgraph_graph="chat",
        langgraph_node="chatbot",
        langgraph_namespace="",
        langgraph_status="cancelled",
    )
    assert cancelled_chatbot == 1


def test_consumer_wait_reflects_a_slow_caller(meters: Meters, tracing: Any) -> None:
    """A caller sleeping 20 ms per chunk: consumer_wait is the time it held them."""
    graph = meters.instrument(chat_graph(0.0, 0.0), tracing)
    chunks, held = 0, 0.0
    for _ in graph.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages"):
        received = time.perf_counter()
        chunks += 1
        time.sleep(0.02)
        # Measured, not assumed: a sleep overshoots on a busy machine.
        held += time.perf_counter() - received
    wait = meters.value(
        "langgraph_stream_consumer_wait_seconds_sum", langgraph_graph="chat"
    )
    assert chunks >= 5
    assert held <= wait <= held + 0.005 + 0.001 * chunks


class Fan(TypedDict):
    """State of the fan-out graph."""

    models: list[str]


def test_thousand_model_names_are_capped(meters: Meters, tracing: Any) -> None:
    """1,000 Send targets calling 1,000 model names: at most cap + 'other' values."""

    def plan(state: Fan) -> Any:
        return {}

    def route(state: Fan) -> list[Send]:
        return [Send("call", {"models": [m]}) for m in state["models"]]

    def call(state: Fan) -> Any:
        (name,) = state["models"]
        SimulatedChatModel(messages=iter(["hi"]), model_name=name).invoke("x")
        return {}

    g = StateGraph(Fan)
    g.add_node("plan", plan)
    g.add_node("call", call)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", route, ["call"])
    graph = meters.instrument(g.compile(name="fan"), tracing, max_label_values=50)
    graph.invoke({"models": [f"model-{i}" for i in range(1000)]})
    models = {
        sample.labels["gen_ai_request_model"]
        for family in meters.registry.collect()
        if family.name == "gen_ai_client_operation_duration_seconds"
        for sample in family.samples
    }
    assert len(models) == 51
    assert n.LABEL_OTHER in models
    other = meters.value(
        "gen_ai_client_operation_duration_seconds_count",
        gen_ai_operation_name="chat",
        gen_ai_provider_name="simulated",
        gen_ai_request_model="other",
        langgraph_graph="fan",
        langgraph_node="call",
        error_type="",
    )
    assert other == 950


def test_exemplars_carry_exported_trace_ids(meters: Meters, tracing: Any) -> None:
    """TTFT and task-duration exemplars name trace ids of spans that were exported."""
    _, exporter = tracing
    graph = meters.instrument(chat_graph(0.0, 0.0), tracing)
    for _ in graph.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages"):
        pass
    exported = {f"{s.context.trace_id:032x}" for s in exporter.get_finished_spans()}
    # prometheus_client leaves generate_latest unannotated.
    text = generate_latest(meters.registry).decode()  # type: ignore[no-untyped-call]
    seen = set()
    for line in text.splitlines():
        if " # {" in line and line.startswith(
            (
                "langgraph_run_time_to_first_token_seconds_bucket",
                "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
                "langgraph_task_duration_seconds_bucket",
            )
        ):
            trace_id = line.split('trace_id="')[1].split('"')[0]
            seen.add(line.split("{")[0])
            assert trace_id in exported
    assert len(seen) == 3


def _otel_count(reader: InMemoryMetricReader, name: str, **attrs: str) -> int:
    data = reader.get_metrics_data()
    counts = [
        cast(HistogramDataPoint, point).count
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
        if all(attrs_of(point).get(k) == v for k, v in attrs.items())
    ]
    return sum(counts)


@pytest.mark.parametrize("path", ["bound", "api"])
def test_global_meter_provider_set_after_instrument(
    monkeypatch: pytest.MonkeyPatch, tracing: Any, path: str
) -> None:
    """A graph instrumented before the app sets the global meter provider records
    on it from then on, on the path that provider takes (bound for the SDK's own),
    label sets seen before included."""
    from opentelemetry import metrics
    from opentelemetry.metrics import _internal as metrics_globals
    from opentelemetry.util._once import Once

    monkeypatch.setattr(metrics_globals, "_METER_PROVIDER", None)
    monkeypatch.setattr(metrics_globals, "_METER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(
        metrics_globals, "_PROXY_METER_PROVIDER", metrics_globals._ProxyMeterProvider()
    )
    graph = lg_otel.instrument(
        chat_graph(0.0, 0.0),
        tracer_provider=tracing[0],
        registry=CollectorRegistry(),
    )
    sink = instrumentation(graph).metrics
    assert sink is not None
    graph.invoke({"messages": [HumanMessage("hi")]})  # before: nowhere to go
    assert not sink._task_duration._bound
    reader = InMemoryMetricReader()
    provider = meter_provider_for(path, reader)
    metrics.set_meter_provider(provider)
    for _ in range(3):
        graph.invoke({"messages": [HumanMessage("hi")]})
    assert sink._task_duration._bound == (path == "bound")
    assert not sink._pending
    # The label sets resolved before the provider came were rebound as well.
    # Each child's record function (typed Optional; set once bound): Any to read it.
    children: dict[tuple[str, ...], Any] = sink._task_duration._children
    kinds = {c.record.__qualname__ for c in children.values()}
    bound, api = "recorders.<locals>.record", "api_recorder.<locals>.record"
    assert kinds == ({bound} if path == "bound" else {api})
    for node in ("prefix_node", "chatbot"):
        count = _otel_count(
            reader,
            n.METRIC_TASK_DURATION,
            **{n.LABEL_NODE: node, n.LABEL_STATUS: n.STATUS_OK},
        )
        assert count == 3, node
    assert _otel_count(reader, n.METRIC_RUN_DURATION) == 3
    provider.shutdown()


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("stop_early", [False, True], ids=["whole", "break"])
def test_first_token_and_chunk_reach_the_sinks_after_the_caller(
    stop_early: bool, use_async: bool, meters: Meters, tracing: Any
) -> None:
    """The first item's own bookkeeping never sits between its reading and the caller.

    The run's time to first chunk and first token are read as the item is handed
    over; the metrics hear of them only when the caller comes back for more (or the
    stream ends). Each is observed exactly once, also when the caller stops early.
    """
    graph = meters.instrument(chat_graph(0.0, 0.0), tracing)
    ttfc = "langgraph_run_time_to_first_chunk_seconds"
    ttft = "langgraph_run_time_to_first_token_seconds"

    def count(family: str) -> float:
        got = meters.registry.get_sample_value(
            f"{family}_count", {"langgraph_graph": "chat"}
        )
        return got or 0.0

    seen: list[tuple[str, float, float]] = []
    inputs = {"messages": [HumanMessage("hi")]}
    modes = ["updates", "messages"]

    def see(mode: str) -> bool:
        seen.append((mode, count(ttfc), count(ttft)))
        return stop_early and mode == "messages"

    async def consume() -> None:
        stream = graph.astream(inputs, stream_mode=modes)
        async for mode, _ in stream:
            if see(mode):
                break
        await stream.aclose()

    if use_async:
        asyncio.run(consume())
    else:
        stream = graph.stream(inputs, stream_mode=modes)
        for mode, _ in stream:
            if see(mode):
                break
        stream.close()
    # The first item is an update (prefix_node's): no token yet.
    assert seen[0] == ("updates", 0.0, 0.0)
    first_token = next(i for i, (mode, _, _) in enumerate(seen) if mode == "messages")
    # When the caller holds the first token, the first chunk (an earlier item) has
    # been observed, the token not yet.
    assert seen[first_token] == ("messages", 1.0, 0.0)
    assert all(row[2] == 1.0 for row in seen[first_token + 1 :])
    assert (count(ttfc), count(ttft)) == (1.0, 1.0)


def _recorded(meters: Meters) -> tuple[float, int, float, int]:
    """(Prometheus, OTel) counts of the ``first`` task and of the run's
    ``get_tuple`` saver calls, as the backends show them now."""
    first = {
        "langgraph_graph": "batched",
        "langgraph_node": "first",
        "langgraph_namespace": "",
        "langgraph_status": "ok",
    }
    loads = {
        "langgraph_graph": "batched",
        "langgraph_checkpoint_operation": "get_tuple",
        "langgraph_checkpoint_saver": "InMemorySaver",
        "langgraph_status": "ok",
    }
    get = meters.registry.get_sample_value
    return (
        get("langgraph_task_duration_seconds_count", first) or 0.0,
        _otel_count(meters.reader, n.METRIC_TASK_DURATION, **{n.ATTR_NODE: "first"}),
        get("langgraph_checkpoint_duration_seconds_count", loads) or 0.0,
        _otel_count(
            meters.reader,
            n.METRIC_CHECKPOINT_DURATION,
            **{n.ATTR_CHECKPOINT_OPERATION: "get_tuple"},
        ),
    )


def _batched_graph(
    meters: Meters, tracing: Any, seen: list[Any], wait: bool = True
) -> Any:
    """first -> watcher, on an InMemorySaver; the watcher records what the
    backends show of ``first`` and of the run's first saver call, polling (when
    ``wait``) up to 10 s for both paths to show them."""

    class State(TypedDict):
        n: int

    def first(state: State) -> Any:
        return {"n": state["n"] + 1}

    def watcher(state: State) -> Any:
        deadline = time.monotonic() + 10
        seen.append(_recorded(meters))
        while wait and seen[-1] != (1.0, 1, 1.0, 1) and time.monotonic() < deadline:
            time.sleep(0.01)
            seen.append(_recorded(meters))
        return {"n": state["n"] + 1}

    from langgraph.checkpoint.memory import InMemorySaver

    g = StateGraph(State)
    g.add_node("first", first)
    g.add_node("watcher", watcher)
    g.add_edge(START, "first")
    g.add_edge("first", "watcher")
    g.add_edge("watcher", END)
    compiled = g.compile(name="batched", checkpointer=InMemorySaver())
    return meters.instrument(compiled, tracing)


def test_batched_durations_are_recorded_while_the_run_goes_on(
    meters: Meters, tracing: Any
) -> None:
    """A node's duration and a saver call's reach both metric paths while the
    run is still going (the batch's timer records them), not only at its end."""
    seen: list[Any] = []
    graph = _batched_graph(meters, tracing, seen)
    graph.invoke({"n": 0}, {"configurable": {"thread_id": "t"}})
    # Recorded within the batch's interval, long before the 10 s the watcher waits.
    assert seen[-1] == (1.0, 1, 1.0, 1)
    assert len(seen) * 0.01 < 5 * _batch.FLUSH_INTERVAL_S + 1


def test_a_run_end_records_every_batched_duration(
    meters: Meters, tracing: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no timer in reach (an hour's interval), the run's end records every
    task and saver call it queued: all of them are in when ``invoke()`` returns."""
    monkeypatch.setattr(_batch, "FLUSH_INTERVAL_S", 3600.0)
    seen: list[Any] = []
    graph = _batched_graph(meters, tracing, seen, wait=False)
    graph.invoke({"n": 0}, {"configurable": {"thread_id": "t"}})
    assert seen == [(0.0, 0, 0.0, 0)]  # queued while the run went on
    assert _recorded(meters) == (1.0, 1, 1.0, 1)
    watcher = meters.value(
        "langgraph_task_duration_seconds_count",
        langgraph_graph="batched",
        langgraph_node="watcher",
        langgraph_namespace="",
        langgraph_status="ok",
    )
    assert watcher == 1
