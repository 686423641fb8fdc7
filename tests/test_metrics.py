"""The metrics sink against real backends: prometheus_client and the OTel SDK."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Span
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, Histogram
from prometheus_client.openmetrics.exposition import generate_latest

from lg_otel import _metrics
from lg_otel import _names as n
from lg_otel._metrics import MetricsSink
from lg_otel._records import (
    SPAN_SLOT,
    CheckpointRecord,
    LlmRecord,
    RunRecord,
    TaskRecord,
)
from tests.conftest import meter_provider_for, report_from_fork

S = 1_000_000_000  # ns per second
#: Prometheus labels of the model call made by :func:`full_run`.
LLM = {
    "gen_ai_operation_name": "chat",
    "gen_ai_provider_name": "openai",
    "gen_ai_request_model": "gpt-x",
    "langgraph_graph": "g",
    "langgraph_node": "agent",
}


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh prometheus_client registry."""
    return CollectorRegistry()


@pytest.fixture
def otel(metric_path: str) -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    """A MeterProvider with an in-memory reader, shut down after the test."""
    reader = InMemoryMetricReader()
    provider = meter_provider_for(metric_path, reader)
    yield provider, reader
    provider.shutdown()


@pytest.fixture
def tracer_provider() -> Iterator[TracerProvider]:
    """An SDK TracerProvider that samples everything (spans go nowhere)."""
    provider = TracerProvider()
    yield provider
    provider.shutdown()


@pytest.fixture
def sink(
    registry: CollectorRegistry, otel: tuple[MeterProvider, InMemoryMetricReader]
) -> MetricsSink:
    """A sink recording on both paths."""
    return MetricsSink(meter_provider=otel[0], registry=registry)


def run_record(graph: str = "g", start_ns: int = 0) -> RunRecord:
    """A run record as the tracker makes it."""
    return RunRecord(graph=graph, thread_id=None, start_ns=start_ns)


def llm_record(task_id: str | None = "t1", **fields: Any) -> LlmRecord:
    """A finished streamed chat call: 1 s to first chunk, 4 chunks over 3 s."""
    values: dict[str, Any] = {
        "call_id": "c1",
        "task_id": task_id,
        # The tracker names the node of the task the call runs in.
        "node": "agent" if task_id is not None else None,
        "operation": n.OP_CHAT,
        "model": "gpt-x",
        "provider": "openai",
        "start_ns": 1 * S,
        "first_chunk_ns": 2 * S,
        "last_chunk_ns": 5 * S,
        "chunks": 4,
        "input_tokens": 10,
        "output_tokens": 30,
        "end_ns": 6 * S,
        "status": n.STATUS_OK,
    }
    values.update(fields)
    return LlmRecord(**values)


def full_run(sink: MetricsSink, *, spans: dict[str, Span] | None = None) -> RunRecord:
    """Drive one run: a task ``agent`` that makes one model call, then a failed one."""
    spans = spans or {}
    run = run_record()
    if "run" in spans:
        run.slots["span"] = spans["run"]
    sink.run_started(run)
    task = TaskRecord(task_id="t1", name="agent", parent_task_id=None, start_ns=0)
    if "task" in spans:
        task.slots["span"] = spans["task"]
    sink.task_started(run, task)
    llm = llm_record()
    if "llm" in spans:
        llm.slots["span"] = spans["llm"]
    sink.llm_ended(run, llm)
    failed = llm_record(
        call_id="c2",
        first_chunk_ns=None,
        last_chunk_ns=None,
        chunks=0,
        input_tokens=None,
        output_tokens=None,
        status=n.STATUS_ERROR,
        error=TimeoutError("slow"),
    )
    sink.llm_ended(run, failed)
    run.first_token_ns = 2 * S + S // 2
    sink.run_first_token(run)
    task.end_ns, task.status = 7 * S, n.STATUS_OK
    sink.task_ended(run, task)
    run.end_ns, run.status, run.consumer_wait_ns = 8 * S, n.STATUS_OK, S // 4
    sink.run_ended(run)
    return run


def exposition(registry: CollectorRegistry) -> str:
    """The registry in OpenMetrics text (the format that carries exemplars)."""
    text: bytes = generate_latest(registry)  # type: ignore[no-untyped-call]
    return text.decode()


def otel_points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    """The data points of OTel metric ``name`` (empty when it recorded nothing)."""
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_task_duration_on_both_paths(
    sink: MetricsSink, registry: CollectorRegistry, otel: Any
) -> None:
    """A task's duration lands under graph, node and status on both paths."""
    full_run(sink)
    labels = {
        "langgraph_graph": "g",
        "langgraph_node": "agent",
        "langgraph_namespace": "",
        "langgraph_status": "ok",
    }
    assert registry.get_sample_value("langgraph_task_duration_seconds_sum", labels) == 7
    (point,) = otel_points(otel[1], n.METRIC_TASK_DURATION)
    assert dict(point.attributes) == {
        n.LABEL_GRAPH: "g",
        n.LABEL_NODE: "agent",
        n.LABEL_STATUS: "ok",
    }
    assert (point.sum, point.count) == (7, 1)


def test_run_duration_and_consumer_wait(
    sink: MetricsSink, registry: CollectorRegistry, otel: Any
) -> None:
    """A run records its duration by status and its consumer wait by graph."""
    full_run(sink)
    status = {"langgraph_graph": "g", "langgraph_status": "ok"}
    assert registry.get_sample_value("langgraph_run_duration_seconds_sum", status) == 8
    wait = registry.get_sample_value(
        "langgraph_stream_consumer_wait_seconds_sum", {"langgraph_graph": "g"}
    )
    assert wait == 0.25
    (point,) = otel_points(otel[1], n.METRIC_CONSUMER_WAIT)
    assert (dict(point.attributes), point.sum) == ({n.LABEL_GRAPH: "g"}, 0.25)


def test_run_time_to_first_token(
    sink: MetricsSink, registry: CollectorRegistry, otel: Any
) -> None:
    """Run TTFT is the run start to the first token handed to the caller."""
    full_run(sink)
    ttft = registry.get_sample_value(
        "langgraph_run_time_to_first_token_seconds_sum", {"langgraph_graph": "g"}
    )
    assert ttft == 2.5
    (point,) = otel_points(otel[1], n.METRIC_RUN_TTFT)
    assert point.sum == 2.5


def test_runs_active_rises_and_falls(
    sink: MetricsSink, registry: CollectorRegistry, otel: Any
) -> None:
    """runs.active counts a run while it is in flight and drops it at its end."""
    run = run_record()
    sink.run_started(run)
    labels = {"langgraph_graph": "g"}
    assert registry.get_sample_value("langgraph_runs_active", labels) == 1
    assert otel_points(otel[1], n.METRIC_RUNS_ACTIVE)[0].value == 1
    run.end_ns, run.status = S, n.STATUS_OK
    sink.run_ended(run)
    assert registry.get_sample_value("langgraph_runs_active", labels) == 0
    assert otel_points(otel[1], n.METRIC_RUNS_ACTIVE)[0].value == 0


def test_run_never_started_does_not_drive_active_negative(
    sink: MetricsSink, registry: CollectorRegistry
) -> None:
    """A run whose run_started failed is not subtracted from runs.active."""
    sink.run_started(run_record())
    orphan = run_record()
    orphan.end_ns, orphan.status = S, n.STATUS_OK
    sink.run_ended(orphan)
    assert (
        registry.get_sample_value("langgraph_runs_active", {"langgraph_graph": "g"})
        == 1
    )


def test_llm_duration_labels_with_node(
    sink: MetricsSink, registry: CollectorRegistry, otel: Any
) -> None:
    """A model call's duration carries operation, provider, model, graph and node."""
    full_run(sink)
    ok = {**LLM, "error_type": ""}
    assert (
        registry.get_sample_value("gen_ai_client_operation_duration_seconds_sum", ok)
        == 5
    )
    attrs = [dict(p.attributes) for p in otel_points(otel[1], n.METRIC_LLM_DURATION)]
    assert {
        n.LABEL_OPERATION: "chat",
        n.LABEL_PROVIDER: "openai",
        n.LABEL_MODEL: "gpt-x",
        n.LABEL_GRAPH: "g",
        n.LABEL_NODE: "agent",
    } in attrs


def test_llm_error_adds_error_type(
    sink: MetricsSink, registry: CollectorRegistry, otel: Any
) -> None:
    """A failed model call carries error.type = the exception's qualified name."""
    full_run(sink)
    failed = {**LLM, "error_type": "TimeoutError"}
    assert (
        registry.get_sample_value(
            "gen_ai_client_operation_duration_seconds_count", failed
        )
        == 1
    )
    types = [
        p.attributes.get(n.LABEL_ERROR_TYPE)
        for p in otel_points(otel[1], n.METRIC_LLM_DURATION)
    ]
    assert sorted(types, key=str) == [None, "TimeoutError"]


def test_llm_streaming_figures(sink: MetricsSink, registry: CollectorRegistry) -> None:
    """TTFC, mean chunk gap and output tokens/s come from the chunk times."""
    full_run(sink)
    value = registry.get_sample_value
    assert value("gen_ai_client_operation_time_to_first_chunk_seconds_sum", LLM) == 1
    # 4 chunks over 3 s: one observation of the mean gap.
    assert value("langgraph_llm_time_per_output_chunk_seconds_sum", LLM) == 1
    assert value("langgraph_llm_time_per_output_chunk_seconds_count", LLM) == 1
    assert value("langgraph_llm_output_tokens_per_second_sum", LLM) == 10


def test_tokens_per_second_falls_back_to_chunks(
    sink: MetricsSink, registry: CollectorRegistry
) -> None:
    """Without reported output tokens, tokens/s counts chunks."""
    run = run_record()
    sink.llm_ended(run, llm_record(task_id=None, output_tokens=None))
    labels = {**LLM, "langgraph_node": n.LABEL_UNKNOWN}
    rate = registry.get_sample_value(
        "langgraph_llm_output_tokens_per_second_sum", labels
    )
    assert rate == pytest.approx(4 / 3)


def test_token_usage_only_when_reported(
    sink: MetricsSink, registry: CollectorRegistry
) -> None:
    """Token usage records reported counts by type and nothing for unreported ones."""
    full_run(sink)
    name = "gen_ai_client_token_usage_sum"
    assert registry.get_sample_value(name, {**LLM, "gen_ai_token_type": "input"}) == 10
    assert registry.get_sample_value(name, {**LLM, "gen_ai_token_type": "output"}) == 30
    count = registry.get_sample_value(
        "gen_ai_client_token_usage_count", {**LLM, "gen_ai_token_type": "input"}
    )
    assert count == 1  # the failed call reported nothing


def test_single_chunk_has_no_rate_or_gap(
    sink: MetricsSink, registry: CollectorRegistry
) -> None:
    """One chunk gives TTFC but neither a chunk gap nor a rate."""
    run = run_record()
    llm = llm_record(task_id=None, chunks=1, last_chunk_ns=2 * S)
    sink.llm_ended(run, llm)
    labels = {**LLM, "langgraph_node": n.LABEL_UNKNOWN}
    value = registry.get_sample_value
    assert value("gen_ai_client_operation_time_to_first_chunk_seconds_count", labels)
    assert value("langgraph_llm_time_per_output_chunk_seconds_count", labels) is None
    assert value("langgraph_llm_output_tokens_per_second_count", labels) is None


def test_unknown_provider_model_and_node(
    sink: MetricsSink, registry: CollectorRegistry
) -> None:
    """Missing provider, model or task become ``unknown``."""
    run = run_record()
    llm = llm_record(task_id="nope", provider=None, model=None, node=None)
    sink.llm_ended(run, llm)
    labels = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": n.LABEL_UNKNOWN,
        "gen_ai_request_model": n.LABEL_UNKNOWN,
        "langgraph_graph": "g",
        "langgraph_node": n.LABEL_UNKNOWN,
        "error_type": "",
    }
    assert (
        registry.get_sample_value(
            "gen_ai_client_operation_duration_seconds_count", labels
        )
        == 1
    )


def test_missing_times_are_skipped(
    sink: MetricsSink, registry: CollectorRegistry
) -> None:
    """Records without end times record nothing and raise nothing."""
    run = run_record()
    task = TaskRecord(task_id="t", name="a", parent_task_id=None, start_ns=0)
    sink.task_started(run, task)
    sink.task_ended(run, task)
    sink.llm_ended(run, llm_record(end_ns=None, first_chunk_ns=None, chunks=0))
    sink.run_ended(run)
    names = {s.name for m in registry.collect() for s in m.samples}
    assert "langgraph_task_duration_seconds_count" not in names
    assert "gen_ai_client_operation_duration_seconds_count" not in names
    assert "langgraph_run_duration_seconds_count" not in names


def test_buckets_are_floats(sink: MetricsSink, registry: CollectorRegistry) -> None:
    """Bucket bounds expose as floats, from the names module."""
    full_run(sink)
    text = exposition(registry)
    assert 'le="1.28"' in text
    assert "gen_ai_client_token_usage_bucket{" in text
    assert text.count('le="1.0"') >= 2  # token and token-rate buckets start at 1.0


def test_prometheus_exemplar_carries_span_ids(
    sink: MetricsSink, registry: CollectorRegistry, tracer_provider: TracerProvider
) -> None:
    """Histogram observations carry the trace and span id of the span they describe."""
    tracer = tracer_provider.get_tracer("test")
    spans = {k: tracer.start_span(k) for k in ("run", "task", "llm")}
    full_run(sink, spans=spans)
    text = exposition(registry)
    for span in spans.values():
        ctx = span.get_span_context()
        assert f'trace_id="{ctx.trace_id:032x}"' in text
        assert f'span_id="{ctx.span_id:016x}"' in text


def test_unsampled_span_gives_no_exemplar(
    sink: MetricsSink, registry: CollectorRegistry
) -> None:
    """An unsampled span attaches no exemplar."""
    provider = TracerProvider(sampler=ALWAYS_OFF)
    span = provider.get_tracer("test").start_span("task")
    full_run(sink, spans={"task": span})
    assert "trace_id" not in exposition(registry)
    provider.shutdown()


def test_otel_exemplar_from_span_context(
    sink: MetricsSink, otel: Any, tracer_provider: TracerProvider
) -> None:
    """The OTel path passes the span's context, so the SDK attaches an exemplar."""
    span = tracer_provider.get_tracer("test").start_span("task")
    full_run(sink, spans={"task": span})
    (point,) = otel_points(otel[1], n.METRIC_TASK_DURATION)
    ctx = span.get_span_context()
    assert [(e.trace_id, e.span_id) for e in point.exemplars] == [
        (ctx.trace_id, ctx.span_id)
    ]


def _series(registry: CollectorRegistry) -> set[tuple[Any, ...]]:
    """Every sample as (family, type, unit, sample, labels, value), OTel extras out."""
    rows = set()
    for family in registry.collect():
        head = (family.name, family.type, family.unit)
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = {
                k: float(v) if k == "le" else v  # OTel writes 67108864.0, not 6.7e+07
                for k, v in sample.labels.items()
                # An empty label is an absent one to Prometheus (the OTel path omits
                # it: langgraph_namespace of a top-level task).
                if not k.startswith("otel_scope_") and v != ""
            }
            rows.add((*head, sample.name, frozenset(labels.items()), sample.value))
    return rows


def test_names_match_otel_prometheus_translation(registry: CollectorRegistry) -> None:
    """Both paths expose the same families, samples and labels (one set of PromQL)."""
    translated = CollectorRegistry()
    reader = PrometheusMetricReader(disable_target_info=True, registry=translated)
    provider = MeterProvider(metric_readers=[reader])
    try:
        both = [
            MetricsSink(meter_provider=provider, use_prometheus=False),
            MetricsSink(registry=registry, use_otel=False),
        ]
        for one in both:
            full_run(one)
            one.count_internal_error(n.COMPONENT_SPANS)
        ours, theirs = _series(registry), _series(translated)
        assert {row[0] for row in ours} == {row[0] for row in theirs}
        assert ours == theirs
    finally:
        provider.shutdown()


def test_cardinality_cap(registry: CollectorRegistry) -> None:
    """Node names beyond the cap become ``other``: at most cap + 1 values."""
    sink = MetricsSink(registry=registry, use_otel=False, max_label_values=50)
    run = run_record()
    for i in range(1000):
        task = TaskRecord(
            task_id=f"t{i}", name=f"node{i}", parent_task_id=None, start_ns=0
        )
        sink.task_started(run, task)
        task.end_ns, task.status = S, n.STATUS_OK
        sink.task_ended(run, task)
    sink.run_ended(run)  # task durations are recorded in a batch by then
    nodes = {
        s.labels["langgraph_node"]
        for m in registry.collect()
        for s in m.samples
        if s.name == "langgraph_task_duration_seconds_count"
    }
    assert len(nodes) == 51
    assert n.LABEL_OTHER in nodes
    other = {
        "langgraph_graph": "g",
        "langgraph_node": "other",
        "langgraph_namespace": "",
        "langgraph_status": "ok",
    }
    count = registry.get_sample_value("langgraph_task_duration_seconds_count", other)
    assert count == 950


def test_cardinality_cap_is_thread_safe(registry: CollectorRegistry) -> None:
    """Concurrent new values never exceed the cap."""
    sink = MetricsSink(registry=registry, use_otel=False, max_label_values=10)
    run = run_record()

    def many(prefix: str) -> None:
        for i in range(200):
            sink.llm_ended(run, llm_record(task_id=None, model=f"{prefix}{i}"))

    threads = [threading.Thread(target=many, args=(str(k),)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    models = {
        s.labels["gen_ai_request_model"]
        for m in registry.collect()
        for s in m.samples
        if s.name == "gen_ai_client_operation_duration_seconds_count"
    }
    assert len(models) == 11


def test_registering_twice_shares_series(registry: CollectorRegistry) -> None:
    """A second sink on the same registry reuses its metrics and shares counts."""
    first = MetricsSink(registry=registry, use_otel=False)
    second = MetricsSink(registry=registry, use_otel=False)
    full_run(first)
    full_run(second)
    labels = {"langgraph_graph": "g", "langgraph_status": "ok"}
    count = registry.get_sample_value("langgraph_run_duration_seconds_count", labels)
    assert count == 2


def _gauge(registry: CollectorRegistry, name: str) -> None:
    Gauge(name, "someone else's", registry=registry)


def _histogram(registry: CollectorRegistry, name: str) -> None:
    Histogram(name, "someone else's", ["other_label"], registry=registry)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (_gauge, "langgraph_runs_active"),
        (_gauge, "langgraph_run_duration_seconds"),
        (_histogram, "langgraph_run_duration_seconds"),
    ],
)
def test_conflicting_metric_raises(
    registry: CollectorRegistry, make: Any, name: str
) -> None:
    """A different metric already holding one of our names fails at construction."""
    make(registry, name)
    with pytest.raises(ValueError, match=name):
        MetricsSink(registry=registry, use_otel=False)


def test_clash_on_derived_name_raises(registry: CollectorRegistry) -> None:
    """A metric clashing with a derived series name fails at construction too."""
    Gauge("langgraph_task_duration_seconds_count", "x", registry=registry)
    with pytest.raises(ValueError, match="langgraph_task_duration_seconds"):
        MetricsSink(registry=registry, use_otel=False)


def test_internal_errors_counter(
    sink: MetricsSink, registry: CollectorRegistry, otel: Any
) -> None:
    """count_internal_error counts by component on both paths."""
    sink.count_internal_error(n.COMPONENT_SPANS)
    sink.count_internal_error(n.COMPONENT_SPANS)
    total = registry.get_sample_value(
        "lg_otel_internal_errors_total", {"component": "spans"}
    )
    assert total == 2
    (point,) = otel_points(otel[1], n.METRIC_INTERNAL_ERRORS)
    assert (dict(point.attributes), point.value) == ({n.LABEL_COMPONENT: "spans"}, 2)


def test_otel_path_can_be_off(registry: CollectorRegistry, otel: Any) -> None:
    """use_otel=False records nothing through the meter provider."""
    full_run(MetricsSink(meter_provider=otel[0], registry=registry, use_otel=False))
    assert otel_points(otel[1], n.METRIC_RUN_DURATION) == []


def test_prometheus_path_can_be_off(registry: CollectorRegistry, otel: Any) -> None:
    """use_prometheus=False registers nothing in the registry."""
    sink = MetricsSink(meter_provider=otel[0], registry=registry, use_prometheus=False)
    full_run(sink)
    assert list(registry.collect()) == []
    assert otel_points(otel[1], n.METRIC_RUN_DURATION)


@pytest.fixture
def global_registry() -> Iterator[CollectorRegistry]:
    """prometheus_client's REGISTRY, with whatever the test added removed after."""
    before = set(REGISTRY._collector_to_names)
    yield REGISTRY
    for collector in set(REGISTRY._collector_to_names) - before:
        REGISTRY.unregister(collector)


def test_default_registry_is_global(global_registry: CollectorRegistry) -> None:
    """registry=None means REGISTRY; building a second sink there reuses the series."""
    labels = {"langgraph_graph": "g", "langgraph_status": "ok"}
    name = "langgraph_run_duration_seconds_count"
    before = global_registry.get_sample_value(name, labels) or 0
    full_run(MetricsSink(use_otel=False))
    full_run(MetricsSink(use_otel=False))
    assert global_registry.get_sample_value(name, labels) == before + 2


def test_plain_prometheus_observation_matches_observe(
    sink: MetricsSink, registry: CollectorRegistry, tracer_provider: TracerProvider
) -> None:
    """A plain observation updates the child's sum and bucket directly; the
    exposition is what prometheus_client's own observe() gives, at every bucket
    edge, between edges, past the last, and for infinity and NaN (which take
    observe() itself). With a sampled span the exemplar's bucket is reused."""
    reference_registry = CollectorRegistry()
    reference = Histogram(
        "langgraph_task_duration_seconds",
        "reference",
        [
            "langgraph_graph",
            "langgraph_node",
            "langgraph_namespace",
            "langgraph_status",
        ],
        buckets=n.DURATION_BUCKETS,
        registry=reference_registry,
    ).labels("g", "agent", "", "ok")
    series = sink._task_duration
    child = series.child(("g", "agent", "", "ok"))
    assert child.prom_buckets is not None  # the direct path is the one under test
    edges = list(n.DURATION_BUCKETS)
    values = [0.0, -1.0, *edges, *(e * 1.5 for e in edges), 1e9]
    values += [float("inf"), float("nan")]
    span = tracer_provider.get_tracer("test").start_span("task")
    for value in values:
        for with_span in (None, span, span):  # the second: no exemplar this second
            series.observe_child(child, value, with_span, None)
            reference.observe(max(value, 0.0) if value == value else value)

    def samples(reg: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels.get("le", "")): s.value
            for metric in reg.collect()
            if metric.name == "langgraph_task_duration_seconds"
            for s in metric.samples
            if not s.name.endswith("_created")
        }

    ours, theirs = samples(registry), samples(reference_registry)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == value or (value != value and ours[key] != ours[key]), key


def _everything(registry: CollectorRegistry, reader: InMemoryMetricReader) -> Any:
    """The checkpoint histogram on both paths, NaN-aware and timestamps aside:
    Prometheus samples and exemplars, and OTel points with theirs."""
    prom = []
    for family in registry.collect():
        if family.name != "langgraph_checkpoint_duration_seconds":
            continue
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            exemplar = None
            if s.exemplar is not None:
                exemplar = (tuple(sorted(s.exemplar.labels.items())), s.exemplar.value)
            value = "nan" if s.value != s.value else s.value
            prom.append((s.name, tuple(sorted(s.labels.items())), value, exemplar))
    points = []
    for point in otel_points(reader, n.METRIC_CHECKPOINT_DURATION):
        exemplars = sorted((e.span_id, e.value) for e in point.exemplars)
        points.append(
            (
                tuple(sorted(point.attributes.items())),
                point.count,
                point.sum,
                tuple(point.bucket_counts),
                point.min,
                point.max,
                tuple(exemplars),
            )
        )
    return sorted(prom, key=repr), sorted(points, key=repr)


def _exemplar_spans(tracer_provider: TracerProvider) -> list[Span | None]:
    """No span, an unsampled span, and three sampled ones (each can make one)."""
    tracer = tracer_provider.get_tracer("test")
    sampled = [tracer.start_span(f"call {i}") for i in range(3)]
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_span("u")
    return [None, unsampled, *sampled]


def _recorded_both_ways(
    metric_path: str, observe: Callable[[MetricsSink, bool], None]
) -> tuple[list[Any], list[Any]]:
    """What both metric paths collect after ``observe(sink, batched)``: run on a
    fresh sink one by one (False) and batched (True), checked equal; returns
    (prometheus rows, OTel points)."""
    sides: list[tuple[list[Any], list[Any]]] = []
    for batched in (False, True):
        registry, reader = CollectorRegistry(), InMemoryMetricReader()
        provider = meter_provider_for(metric_path, reader)
        observe(MetricsSink(meter_provider=provider, registry=registry), batched)
        sides.append(_everything(registry, reader))
        provider.shutdown()
    alone, batched_side = sides
    assert batched_side == alone
    return alone


def test_held_observations_record_what_observe_child_records(
    metric_path: str, tracer_provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Observations held for a batch's ``observe_held()`` (a run's saver and store
    calls) end up exactly as if each had been observed alone, on both metric
    paths: buckets, counts, the same float sums, min/max, and exemplars.

    Among them, values the one-by-one path takes apart (negative, infinite,
    NaN), spans that make exemplars, unsampled ones, and an order that changes a
    float sum if an exemplar's value were added before the plain values held
    ahead of it (1 + 1 + 1e16 is not 1e16 + 1 + 1)."""
    # Every bucket's first sampled observation is its exemplar, however slow the
    # machine: the test is about which observations make one, not when.
    monkeypatch.setattr(_metrics, "EXEMPLAR_INTERVAL_NS", 10**18)
    spans = _exemplar_spans(tracer_provider)
    sampled = spans[2:]
    put = ("g", "put", "InMemorySaver", "ok")
    writes = ("g", "put_writes", "InMemorySaver", "ok")
    values = [0.0, 0.0003, 0.0021, 0.0021, 0.04, 0.7, 3.0, 0.1, 0.2, 0.3, -0.5]
    values += [float("inf"), float("nan"), 0.0021, 0.1]
    observations: list[tuple[tuple[str, ...], float, Span | None]] = [
        (labels, value, spans[(i + j) % len(spans)])
        for i, value in enumerate(values)
        for j, labels in enumerate((put, writes))
    ]
    # A label set of its own, so the last one's bucket has no exemplar yet.
    get = ("g", "get_tuple", "InMemorySaver", "ok")
    observations += [(get, 1.0, None), (get, 1.0, None), (get, 1e16, sampled[0])]

    def observe(sink: MetricsSink, held: bool) -> None:
        series = sink._checkpoint_duration
        for start in range(0, len(observations), 7):  # batches of 7
            for labels, value, span in observations[start : start + 7]:
                child = series.child(labels)
                if held:
                    series.held.append((child, value, span, None))
                else:
                    series.observe_child(child, value, span, None)
            series.observe_held()
            assert not series.held

    prom, points = _recorded_both_ways(metric_path, observe)
    assert len(points) == 3, points
    assert all(point[-1] for point in points), points
    assert sum(1 for row in prom if row[-1] is not None) >= 4, prom
    (big,) = [p for p in points if (n.ATTR_CHECKPOINT_OPERATION, "get_tuple") in p[0]]
    assert big[1:3] == (3, 1e16 + 2), "1 + 1 + 1e16 was summed in another order"


def test_a_batchs_calls_record_what_observe_child_records(
    metric_path: str, tracer_provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's checkpointer calls handed on together (``calls_done``) end up
    exactly as if each duration had been observed alone, on both metric paths:
    buckets, counts, float sums, min/max and exemplars. Among them: a call that
    ended before it began (clamped to 0), calls whose spans make exemplars,
    unsampled spans, an unfinished call (nothing recorded), and a call held
    before the batch (a cancelled one, handed on alone) whose value the sums add
    first (1 + 1 + 1e16 is not 1e16 + 1 + 1)."""
    monkeypatch.setattr(_metrics, "EXEMPLAR_INTERVAL_NS", 10**18)
    spans = _exemplar_spans(tracer_provider)
    durations = [0, 300_000, 2_100_000, 2_100_000, 40_000_000, 700_000_000]
    durations += [3 * 10**9, 100_000_000, 200_000_000, -500_000_000, 2_100_000]
    records = []
    for i, duration in enumerate(durations):
        for j, operation in enumerate(("put", "put_writes")):
            call = CheckpointRecord("g", operation, "InMemorySaver", 10**9)
            call.end_ns, call.status = 10**9 + duration, n.STATUS_OK
            span = spans[(i + j) % len(spans)]
            if span is not None:
                call.slots[SPAN_SLOT] = span
            records.append(call)
    unfinished = CheckpointRecord("g", "put", "InMemorySaver", 0)
    records.insert(5, unfinished)
    big = CheckpointRecord("g", "get_tuple", "InMemorySaver", 0)
    big.end_ns, big.status = 10**25, n.STATUS_OK
    one = ("g", "get_tuple", "InMemorySaver", "ok")

    def observe(sink: MetricsSink, batched: bool) -> None:
        series = sink._checkpoint_duration
        child = series.child(one)
        if batched:
            series.held.extend([(child, 1.0, None, None)] * 2)
            sink.calls_done(run_record(), [*records[:9], big])
            assert not series.held
            sink.calls_done(run_record(), records[9:])
        else:
            for value in (1.0, 1.0):
                series.observe_child(child, value, None, None)
            for call in [*records[:9], big, *records[9:]]:
                if call.end_ns is not None:
                    labels = (call.graph, call.operation, call.saver, "ok")
                    value = (call.end_ns - call.start_ns) / 1e9
                    span = call.slots.get(SPAN_SLOT)
                    series.observe_child(series.child(labels), value, span, None)

    prom, points = _recorded_both_ways(metric_path, observe)
    assert len(points) == 3, points
    assert sum(1 for row in prom if row[-1] is not None) >= 4, prom
    (got,) = [p for p in points if (n.ATTR_CHECKPOINT_OPERATION, "get_tuple") in p[0]]
    assert got[1:3] == (3, 1e16 + 2), "1 + 1 + 1e16 was summed in another order"


def test_a_forked_child_starts_with_nothing_held(sink: MetricsSink) -> None:
    """What a parent held for its batch it records itself: a forked child starts
    with none of it (each would count twice across processes), and queues its
    own observe_held() for what it holds next."""
    series = sink._checkpoint_duration
    child = series.child(("g", "put", "InMemorySaver", "ok"))
    series.held.append((child, 0.5, None, None))
    series.held_queued = True
    reported = report_from_fork(lambda: f"{len(series.held)} {series.held_queued}")
    assert reported == "0 False"
    assert len(series.held) == 1
    assert series.held_queued
    series.observe_held()
    assert not series.held_queued
    assert not series.held
