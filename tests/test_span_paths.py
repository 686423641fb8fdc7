"""Both span paths: when each is taken, and that they export the same spans."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util._once import Once
from typing_extensions import TypedDict

import lg_otel
from lg_otel import _batch, _tap
from lg_otel import _names as n
from lg_otel._spanpath import FinishedSpans, RecordedSpan, SpanPath
from tests.conftest import (
    _UUID,
    OnStartProcessor,
    attrs_of,
    instrumentation,
    normalise,
    provider_for,
)
from tests.graphs import SHAPES, Shape
from tests.typed_graphs import TYPED_SHAPES

#: Attributes whose values are measured times: equal in kind, not in value.
TIMED = {n.ATTR_TIME_TO_FIRST_CHUNK, n.ATTR_CONSUMER_WAIT}


def _chosen(provider: Any) -> bool:
    """Whether lg_otel's span path for this provider is the finished-span one."""
    tracer = provider.get_tracer("t")
    return SpanPath(tracer, provider).current().finished


class BatchSubclass(BatchSpanProcessor):
    """A subclass of the batch processor: it might act in on_start."""


class Custom(Sampler):
    """A sampler of the user's own."""

    def should_sample(self, *args: Any, **kwargs: Any) -> Any:
        """Delegate to always-on."""
        return ALWAYS_ON.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        """Its name."""
        return "custom"


def _with(*processors: Any, **kwargs: Any) -> TracerProvider:
    provider = TracerProvider(**kwargs)
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def _simple() -> SimpleSpanProcessor:
    return SimpleSpanProcessor(InMemorySpanExporter())


#: The remote-parent samplers of a ParentBased, left None (not a Sampler) on purpose.
_NO_SAMPLER: Any = None


@pytest.mark.parametrize(
    ("make", "finished"),
    [
        (lambda: _with(_simple()), True),
        (lambda: _with(BatchSpanProcessor(InMemorySpanExporter())), True),
        (lambda: _with(), True),
        (lambda: _with(_simple(), sampler=ALWAYS_OFF), True),
        (lambda: _with(_simple(), sampler=TraceIdRatioBased(0.5)), True),
        (lambda: _with(_simple(), sampler=ParentBasedTraceIdRatio(0.5)), True),
        (lambda: _with(_simple(), OnStartProcessor()), False),
        (lambda: _with(BatchSubclass(InMemorySpanExporter())), False),
        (lambda: _with(_simple(), sampler=Custom()), False),
        (
            lambda: _with(
                _simple(),
                sampler=ParentBased(
                    ALWAYS_ON, _NO_SAMPLER, _NO_SAMPLER, ALWAYS_OFF, ALWAYS_OFF
                ),
            ),
            False,
        ),
        (lambda: trace.NoOpTracerProvider(), False),
    ],
    ids=[
        "simple",
        "batch",
        "no-processor",
        "always-off",
        "ratio",
        "parent-ratio",
        "on-start-processor",
        "batch-subclass",
        "custom-sampler",
        "parent-based-custom-child",
        "other-provider",
    ],
)
def test_path_choice(make: Any, finished: bool) -> None:
    """The finished-span path only where it is equivalent to the SDK's."""
    assert _chosen(make()) is finished


def test_static_sampler_of_the_sdk_counts_as_following() -> None:
    """ALWAYS_ON/ALWAYS_OFF are the SDK's StaticSampler instances."""
    assert isinstance(ALWAYS_ON, StaticSampler)
    assert _chosen(_with(_simple(), sampler=ALWAYS_ON))


def test_adding_a_processor_switches_path_for_the_next_run() -> None:
    """A processor added after instrument() is seen by the next run."""
    provider, _ = provider_for("finished")
    path = SpanPath(provider.get_tracer("t"), provider)
    assert path.current().finished
    provider.add_span_processor(OnStartProcessor())
    assert not path.current().finished


@pytest.mark.parametrize("path", ["finished", "api"])
def test_a_processor_added_mid_run_gets_the_spans_that_end_after(path: str) -> None:
    """As the SDK's fan-out does: a processor added while a run is in flight gets
    every span that ends after it was added (here: b's and c's, and the run's;
    one added in c, c's and the run's), however late lg_otel hands them over."""
    provider, exporter = provider_for(path)
    late, later = InMemorySpanExporter(), InMemorySpanExporter()

    def add(state: Any) -> Any:
        provider.add_span_processor(SimpleSpanProcessor(late))
        return {}

    def add_again(state: Any) -> Any:
        provider.add_span_processor(SimpleSpanProcessor(later))
        return {}

    g = StateGraph(LateState)
    g.add_node("a", lambda state: {})
    g.add_node("b", add)
    g.add_node("c", add_again)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    graph = lg_otel.instrument(g.compile(name="late"), tracer_provider=provider)
    graph.invoke({"x": 0})
    assert sorted(s.name for s in late.get_finished_spans()) == [
        f"{n.SPAN_TASK} b",
        f"{n.SPAN_TASK} c",
        f"{n.SPAN_RUN} late",
    ]
    assert sorted(s.name for s in later.get_finished_spans()) == [
        f"{n.SPAN_TASK} c",
        f"{n.SPAN_RUN} late",
    ]
    assert len(exporter.get_finished_spans()) == 4
    provider.shutdown()


class LateState(TypedDict):
    """One key, nobody writes it."""

    x: int


def test_global_provider_set_after_instrument_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A graph instrumented before the app sets the global provider traces later."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    graph = lg_otel.instrument(SHAPES[0].build())
    provider, exporter = provider_for("finished")
    trace.set_tracer_provider(provider)
    graph.invoke({"log": []})
    assert len(exporter.get_finished_spans()) == 1 + sum(SHAPES[0].tasks.values())
    assert instrumentation(graph) is not None


# --- the two paths export the same spans ---------------------------------------


def _value(key: str, value: Any) -> Any:
    if key in TIMED:
        return type(value).__name__
    if key == n.ATTR_INTERRUPT_ID:  # LangGraph's interrupt ids: fresh in each run
        return "<id>"
    # Task ids (and the namespaces built from them) are fresh uuids in each run.
    return _UUID.sub("<id>", value) if isinstance(value, str) else value


def _fields(spans: Sequence[ReadableSpan]) -> list[dict[str, Any]]:
    """Every exported field of each span, ids replaced by the span's position.

    Ordered by name, then attributes, then start: LangGraph hands each
    ``put_writes`` and ``put`` to background threads, and any of them may start
    first (also under ``durability="sync"``: the input's ``put_writes`` can start
    after the first node ran), so an order by start differs by run. Spans of one
    name and the same attributes are alike in every compared field.
    """
    order = sorted(
        spans,
        key=lambda s: (
            s.name,
            repr([(k, _value(k, v)) for k, v in sorted(attrs_of(s).items())]),
            s.start_time or 0,
        ),
    )
    index = {s.context.span_id: i for i, s in enumerate(order)}
    rows = []
    for span in order:
        assert span.context is not None
        rows.append(
            {
                "name": span.name,
                "kind": span.kind,
                "parent": index.get(span.parent.span_id, "outside")
                if span.parent
                else None,
                "parent_remote": span.parent.is_remote if span.parent else None,
                "flags": int(span.context.trace_flags),
                "trace_state": span.context.trace_state.to_header(),
                "remote": span.context.is_remote,
                "attributes": {
                    k: _value(k, v) for k, v in sorted(attrs_of(span).items())
                },
                "events": [
                    (
                        e.name,
                        {k: _value(k, v) for k, v in (e.attributes or {}).items()},
                        e.dropped_attributes,
                    )
                    for e in span.events
                ],
                "links": [
                    (index.get(link.context.span_id, "outside"), dict(attrs_of(link)))
                    for link in span.links
                ],
                "status": (span.status.status_code, span.status.description),
                "resource": dict(span.resource.attributes),
                "resource_schema": span.resource.schema_url,
                "scope": span.instrumentation_scope,
                "dropped": (
                    span.dropped_attributes,
                    span.dropped_events,
                    span.dropped_links,
                ),
                "timed": (span.start_time or 0) <= (span.end_time or 0),
            }
        )
    return rows


def _run_shape(shape: Shape, path: str, invoke: bool = False) -> list[dict[str, Any]]:
    resource = Resource.create({"service.name": "compare"})
    provider, exporter = provider_for(path)
    provider._resource = resource  # the same resource on both sides
    graph = lg_otel.instrument(shape.build(), tracer_provider=provider)
    config: RunnableConfig = {"configurable": {"thread_id": "compare"}}
    for inp in shape.inputs:
        try:
            if invoke:
                graph.invoke(inp, config)
                continue
            for _ in graph.stream(inp, config, stream_mode=["updates", "messages"]):
                pass
        except Exception:  # noqa: BLE001 - the failing shape raises; spans compared
            pass
    spans = exporter.get_finished_spans()
    provider.shutdown()
    return _fields(spans)


@pytest.mark.parametrize("shape", SHAPES + TYPED_SHAPES, ids=lambda s: s.name)
def test_both_paths_export_the_same_spans(shape: Shape) -> None:
    """Every example graph: both paths export equal spans, field by field."""
    finished = _canonical(_run_shape(shape, "finished"), stacks=True)
    api = _canonical(_run_shape(shape, "api"), stacks=True)
    assert len(finished) == len(api)
    for got, want in zip(finished, api, strict=True):
        assert got == want, got["name"]


# --- user code inside a node ---------------------------------------------------


class St(TypedDict, total=False):
    """State of the one-node graph."""

    x: int
    recording: bool


def _user_graph(body: Any) -> Any:
    def work(state: St) -> dict[str, Any]:
        span = trace.get_current_span()
        body(span)
        return {"x": 1, "recording": span.is_recording()}

    g = StateGraph(St)
    g.add_node("work", work)
    g.add_edge(START, "work")
    return g.compile(name="user")


def _task_span(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    (task,) = [s for s in spans if s.name == f"{n.SPAN_TASK} work"]
    return task


def test_user_set_attribute_lands_on_the_task_span(tracing: Any) -> None:
    """trace.get_current_span().set_attribute in a node: on the exported task span."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _user_graph(lambda span: span.set_attribute("k", "v")),
        tracer_provider=provider,
    )
    assert graph.invoke({"x": 0})["recording"] is True
    assert attrs_of(_task_span(exporter.get_finished_spans()))["k"] == "v"


def test_user_events_status_and_exception_land_on_the_task_span(
    tracing: Any,
) -> None:
    """add_event, record_exception and set_status from user code are exported."""
    provider, exporter = tracing

    def body(span: Any) -> None:
        span.add_event("checkpoint", {"rows": 3})
        span.record_exception(ValueError("soft"))
        span.set_status(Status(StatusCode.ERROR, "user says"))
        span.set_attributes({"a": 1, "b": [1, 2]})

    graph = lg_otel.instrument(_user_graph(body), tracer_provider=provider)
    graph.invoke({"x": 0})
    task = _task_span(exporter.get_finished_spans())
    assert [e.name for e in task.events] == ["checkpoint", "exception"]
    assert dict(task.events[0].attributes or {}) == {"rows": 3}
    assert (task.events[1].attributes or {})["exception.type"] == "ValueError"
    assert task.status.status_code is StatusCode.ERROR
    assert task.status.description == "user says"
    assert attrs_of(task)["b"] == (1, 2)


def test_user_attributes_obey_the_providers_limits(span_path: str) -> None:
    """User attributes go through the provider's SpanLimits on both paths."""
    limits = SpanLimits(max_span_attributes=12, max_span_attribute_length=4)
    provider, exporter = provider_for(span_path, span_limits=limits)

    def body(span: Any) -> None:
        for i in range(20):
            span.set_attribute(f"user.{i}", "long value")

    graph = lg_otel.instrument(_user_graph(body), tracer_provider=provider)
    graph.invoke({"x": 0})
    task = _task_span(exporter.get_finished_spans())
    assert len(attrs_of(task)) == 12
    assert task.dropped_attributes > 0
    assert attrs_of(task)["user.19"] == "long"


def test_limits_give_equal_spans_on_both_paths() -> None:
    """Low limits: the same attributes survive, the same number are dropped."""
    rows = []
    for path in ("finished", "api"):
        limits = SpanLimits(max_span_attributes=5, max_attribute_length=3)
        provider, exporter = provider_for(path, span_limits=limits)
        graph = lg_otel.instrument(
            _user_graph(lambda span: span.set_attribute("user", "abcdef")),
            tracer_provider=provider,
        )
        graph.invoke({"x": 0})
        rows.append(_fields(exporter.get_finished_spans()))
    assert rows[0] == rows[1]


@pytest.mark.parametrize(
    "limits",
    [SpanLimits(max_span_attributes=2), SpanLimits(max_attribute_length=50)],
    ids=["attribute-count", "attribute-length"],
)
def test_checkpoint_spans_under_limits_are_equal_on_both_paths(
    limits: SpanLimits,
) -> None:
    """A checkpointer call's span ends in one step on the recorded path: under the
    provider's limits it keeps (and drops) exactly what an SDK span does."""
    rows = []
    for path in ("finished", "api"):
        provider, exporter = provider_for(path, span_limits=limits)
        g = StateGraph(St)
        g.add_node("work", lambda state: {"x": 1})
        g.add_edge(START, "work")
        graph = lg_otel.instrument(
            g.compile(checkpointer=InMemorySaver(), name="saved"),
            tracer_provider=provider,
        )
        # "sync": each checkpoint is saved before the next step starts (a task's
        # put_writes may still race the next put: _fields orders by name first).
        graph.invoke({"x": 0}, {"configurable": {"thread_id": "t"}}, durability="sync")
        spans = exporter.get_finished_spans()
        calls = [s for s in spans if s.name.startswith(n.SPAN_CHECKPOINT)]
        assert calls, "the run made no checkpointer call"
        rows.append(
            (_fields(spans), sorted((s.name, s.dropped_attributes) for s in calls))
        )
    assert rows[0] == rows[1]


class _Sub(str):
    """A str subclass: not a plain str to the recorded span's fast path."""


#: User calls whose edge cases an SDK span handles in its own way; each must give the
#: same exported task span on both paths. (limits, body)
_EDGE_CASES: dict[str, tuple[SpanLimits | None, Any]] = {
    # The SDK cleans a mapping as a whole: a non-string key is made a string.
    "set_attributes non-string key": (
        None,
        lambda span: span.set_attributes({1: "one", "ok": 2}),
    ),
    "set_attributes nested mapping": (
        None,
        lambda span: span.set_attributes({"m": {"a": 1}, "t": ("x", 2)}),
    ),
    # Sequences the SDK cleans: only a tuple of exact strs is stored as it is.
    "set_attribute tuples": (
        None,
        lambda span: [
            span.set_attribute("mixed", ("a", 1)),
            span.set_attribute("ints", (1, 2)),
            span.set_attribute("strs", ("a", "b")),
            span.set_attribute("sub", (_Sub("a"), "b")),
            span.set_attribute("list", ["a", "b"]),
        ],
    ),
    # A timestamp of 0 is the caller's, not "now".
    "add_event timestamp 0": (None, lambda span: span.add_event("e", None, 0)),
    "record_exception timestamp 0": (
        None,
        lambda span: span.record_exception(ValueError("x"), timestamp=0),
    ),
    # No event kept, every one counted as dropped.
    "max_events 0": (
        SpanLimits(max_events=0),
        lambda span: [span.add_event(f"e{i}") for i in range(3)],
    ),
}


@pytest.mark.parametrize("case", list(_EDGE_CASES))
def test_user_span_edge_cases_export_the_same_on_both_paths(case: str) -> None:
    """Each edge case of the Span API: the same task span, timestamps included."""
    limits, body = _EDGE_CASES[case]
    rows, stamps = [], []
    for path in ("finished", "api"):
        provider, exporter = provider_for(path, span_limits=limits)
        assert _chosen(provider) is (path == "finished")
        graph = lg_otel.instrument(_user_graph(body), tracer_provider=provider)
        graph.invoke({"x": 0})
        spans = exporter.get_finished_spans()
        rows.append(_fields(spans))
        stamps.append([e.timestamp == 0 for e in _task_span(spans).events])
    assert rows[0] == rows[1]
    assert stamps[0] == stamps[1]


def test_calls_on_an_ended_task_span_warn_as_the_sdk_does(
    span_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """set_status / update_name / set_attributes after the end: warned, not applied."""
    provider = TracerProvider()
    if span_path == "api":
        provider.add_span_processor(OnStartProcessor())
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    kept: list[Any] = []
    graph = lg_otel.instrument(_user_graph(kept.append), tracer_provider=provider)
    graph.invoke({"x": 0})
    (span,) = kept
    with caplog.at_level("WARNING", logger="opentelemetry.sdk.trace"):
        span.set_status(StatusCode.ERROR)
        span.update_name("renamed")
        span.set_attributes({"late": 1})
    warned = [r.getMessage() for r in caplog.records]
    assert "Tried calling set_status on an ended span." in warned
    assert "Tried calling update_name on an ended span." in warned
    assert "Setting attribute on ended span." in warned
    task = _task_span(exporter.get_finished_spans())
    assert task.status.status_code is StatusCode.UNSET
    assert "late" not in attrs_of(task)


def test_unsampled_run_exports_nothing_and_user_span_is_not_recording(
    span_path: str,
) -> None:
    """ALWAYS_OFF: no span at all, and the node sees a non-recording span."""
    provider = TracerProvider(sampler=ALWAYS_OFF)
    if span_path == "api":
        provider.add_span_processor(OnStartProcessor())
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    graph = lg_otel.instrument(
        _user_graph(lambda span: span.set_attribute("k", "v")),
        tracer_provider=provider,
    )
    assert graph.invoke({"x": 0})["recording"] is False
    assert exporter.get_finished_spans() == ()


def test_ratio_sampling_keeps_whole_trees(span_path: str) -> None:
    """Under a ratio sampler each run is exported whole or not at all."""
    provider, exporter = provider_for(span_path)
    provider.sampler = ParentBasedTraceIdRatio(0.5)
    shape = SHAPES[4]  # nested: tasks under tasks
    graph = lg_otel.instrument(shape.build(), tracer_provider=provider)
    for _ in range(40):
        graph.invoke({"log": []})
    spans = exporter.get_finished_spans()
    per_trace: dict[int, int] = {}
    for span in spans:
        per_trace[span.context.trace_id] = per_trace.get(span.context.trace_id, 0) + 1
    whole = 1 + sum(shape.tasks.values())
    assert set(per_trace.values()) == {whole}
    assert 0 < len(per_trace) < 40


def test_user_span_in_a_node_nests_under_the_task_span(tracing: Any) -> None:
    """A span user code starts in a node is a child of the task span."""
    provider, exporter = tracing
    tracer = provider.get_tracer("user")

    def body(span: Any) -> None:
        with tracer.start_as_current_span("inner"):
            pass

    graph = lg_otel.instrument(_user_graph(body), tracer_provider=provider)
    graph.invoke({"x": 0})
    spans = exporter.get_finished_spans()
    task = _task_span(spans)
    (inner,) = [s for s in spans if s.name == "inner"]
    assert inner.parent is not None
    assert inner.parent.span_id == task.context.span_id


def test_outputs_identical_on_both_paths(tracing: Any) -> None:
    """The caller's chunks are the bare graph's on either path."""
    provider, _ = tracing
    shape = SHAPES[5]
    bare = [normalise(c) for c in shape.build().stream(shape.inputs[0])]
    graph = lg_otel.instrument(shape.build(), tracer_provider=provider)
    assert [normalise(c) for c in graph.stream(shape.inputs[0])] == bare


@pytest.mark.parametrize("invoke", [True, False], ids=["invoke", "stream"])
@pytest.mark.parametrize("shape", SHAPES + TYPED_SHAPES, ids=lambda s: s.name)
def test_both_task_sources_export_the_same_spans(shape: Shape, invoke: bool) -> None:
    """Under invoke(), every example graph exports equal spans whether the hook
    alone ends its tasks or the ``tasks`` stream mode reports them too.

    One field may differ: an exception's stack trace, formatted when the task
    ends, has as many frames as the exception has passed through by then.
    """
    sides = []
    for stream_tasks in (False, True):
        _tap.ALWAYS_STREAM_TASKS = stream_tasks
        try:
            sides.append(_run_shape(shape, "finished", invoke=invoke))
        finally:
            _tap.ALWAYS_STREAM_TASKS = False
    hook, stream = (_canonical(side) for side in sides)
    assert len(hook) == len(stream)
    for got, want in zip(hook, stream, strict=True):
        assert got == want, got["name"]


def _canonical(
    rows: list[dict[str, Any]], stacks: bool = False
) -> list[dict[str, Any]]:
    """The rows in an order that does not depend on timing.

    Parallel tasks, and checkpoint calls beside them, start in a different order
    from run to run: each row names its parent (and links) by the names of its
    ancestors instead of a position, and the rows are sorted by their content.
    Stack traces are cut to their last line unless ``stacks``.
    """

    def ancestry(index: Any) -> Any:
        names = []
        while isinstance(index, int):
            names.append(rows[index]["name"])
            index = rows[index]["parent"]
        return (*names, index)

    out = [
        {
            **(row if stacks else _without_stacks(row)),
            "parent": ancestry(row["parent"]),
            "links": [(ancestry(target), attrs) for target, attrs in row["links"]],
        }
        for row in rows
    ]
    return sorted(out, key=repr)


def _without_stacks(row: dict[str, Any]) -> dict[str, Any]:
    """The row with each exception event's stack trace cut to its last line."""
    events = []
    for name, attributes, dropped in row["events"]:
        trace = attributes.get(n.ATTR_EXCEPTION_STACKTRACE)
        if isinstance(trace, str):
            attributes = {
                **attributes,
                n.ATTR_EXCEPTION_STACKTRACE: trace.rstrip().rpartition("\n")[2],
            }
        events.append((name, attributes, dropped))
    return {**row, "events": events}


def _watched(
    provider: Any, seen: list[set[str]], wait: bool, flush: bool = False
) -> Any:
    """first -> watcher on an InMemorySaver; the watcher notes the span names
    exported so far, polling (when ``wait``) up to 10 s for first's task span and
    the run's first saver call span; with ``flush``, after flushing the batches."""
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    wanted = {f"{n.SPAN_TASK} first", f"{n.SPAN_CHECKPOINT} get_tuple"}
    made: list[Any] = []

    def watcher(state: Any) -> Any:
        if flush:
            instrumentation(made[0]).flush()
        deadline = time.monotonic() + 10
        seen.append({s.name for s in exporter.get_finished_spans()})
        while wait and not wanted <= seen[-1] and time.monotonic() < deadline:
            time.sleep(0.01)
            seen.append({s.name for s in exporter.get_finished_spans()})
        return {}

    g = StateGraph(LateState)
    g.add_node("first", lambda state: {})
    g.add_node("watcher", watcher)
    g.add_edge(START, "first")
    g.add_edge("first", "watcher")
    graph = g.compile(name="watched", checkpointer=InMemorySaver())
    made.append(lg_otel.instrument(graph, tracer_provider=provider))
    return made[0], exporter, wanted


def test_recorded_spans_reach_the_processors_while_the_run_goes_on() -> None:
    """On the finished path a task's span, and a saver call's, are handed over in
    a batch: within the batch's interval even while their run is still going."""
    provider = TracerProvider()
    seen: list[set[str]] = []
    graph, _, wanted = _watched(provider, seen, wait=True)
    graph.invoke({"x": 0}, {"configurable": {"thread_id": "t"}})
    assert wanted <= seen[-1]
    assert len(seen) * 0.01 < 5 * _batch.FLUSH_INTERVAL_S + 1
    provider.shutdown()


def test_a_run_end_hands_over_every_batched_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no timer in reach, the run's end hands over its batched spans, before
    the run's own span: all are exported when ``invoke()`` returns."""
    monkeypatch.setattr(_batch, "FLUSH_INTERVAL_S", 3600.0)
    provider = TracerProvider()
    seen: list[set[str]] = []
    graph, exporter, wanted = _watched(provider, seen, wait=False)
    graph.invoke({"x": 0}, {"configurable": {"thread_id": "t"}})
    assert not wanted & seen[0]  # queued while the run went on
    names = [s.name for s in exporter.get_finished_spans()]
    assert wanted <= set(names)
    assert names[-1] == f"{n.SPAN_RUN} watched"
    assert names.count(f"{n.SPAN_TASK} first") == 1
    provider.shutdown()


def test_a_span_that_fails_to_emit_is_counted_and_the_rest_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batched span whose hand-over raises counts as a spans failure; the
    batch's other spans are still exported."""
    provider = TracerProvider()
    seen: list[set[str]] = []
    graph, exporter, _ = _watched(provider, seen, wait=False)
    emit = RecordedSpan.emit

    def failing(span: RecordedSpan, end: int, processors: Any, unused: Any) -> None:
        if span._name == f"{n.SPAN_TASK} first":
            raise RuntimeError("emit failed")
        emit(span, end, processors, unused)

    monkeypatch.setattr(RecordedSpan, "emit", failing)
    graph.invoke({"x": 0}, {"configurable": {"thread_id": "t"}})
    names = {s.name for s in exporter.get_finished_spans()}
    assert f"{n.SPAN_TASK} first" not in names
    assert {f"{n.SPAN_TASK} watcher", f"{n.SPAN_RUN} watched"} <= names
    assert instrumentation(graph).errors.counts == {n.COMPONENT_SPANS: 1}
    provider.shutdown()


def test_flush_hands_on_what_a_running_run_queued(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``flush()`` on the instrumentation hands on the batched spans at once."""
    monkeypatch.setattr(_batch, "FLUSH_INTERVAL_S", 3600.0)
    provider = TracerProvider()
    seen: list[set[str]] = []
    graph, _, _ = _watched(provider, seen, wait=False, flush=True)
    graph.invoke({"x": 0}, {"configurable": {"thread_id": "t"}})
    # The load before the first node surely ended (and was queued) by then.
    assert f"{n.SPAN_CHECKPOINT} get_tuple" in seen[0]
    provider.shutdown()


# --- saver and store calls: their spans emitted once they ended ---------------------


def _saved(provider: TracerProvider, saver: Any = None, body: Any = None) -> Any:
    """``work`` on a saver and a store; ``body()`` runs in the node."""
    from langgraph.store.memory import InMemoryStore

    def work(state: St) -> dict[str, Any]:
        if body is not None:
            body()
        return {"x": 1}

    g = StateGraph(St)
    g.add_node("work", work)
    g.add_edge(START, "work")
    return lg_otel.instrument(
        g.compile(
            checkpointer=saver if saver is not None else InMemorySaver(),
            store=InMemoryStore(),
            name="saved",
        ),
        tracer_provider=provider,
    )


def test_ratio_sampling_keeps_whole_trees_with_saver_and_store_calls(
    span_path: str,
) -> None:
    """Under a ratio sampler, a run's saver and store calls go with its tree:
    all of it exported, or none (their spans are made once they ended)."""
    from langgraph.config import get_store

    provider, exporter = provider_for(span_path)
    provider.sampler = ParentBasedTraceIdRatio(0.5)
    graph = _saved(provider, body=lambda: get_store().put(("ns",), "k", {"v": 1}))
    for _ in range(40):
        graph.invoke({"x": 0}, {"configurable": {"thread_id": str(uuid.uuid4())}})
    per_trace: dict[int, list[str]] = {}
    for span in exporter.get_finished_spans():
        per_trace.setdefault(span.context.trace_id, []).append(span.name)
    assert 0 < len(per_trace) < 40
    shapes = {tuple(sorted(names)) for names in per_trace.values()}
    assert len(shapes) == 1, shapes
    (names,) = shapes
    assert f"{n.SPAN_STORE} put" in names
    assert f"{n.SPAN_CHECKPOINT} put_writes" in names


def test_a_store_call_under_a_users_span_nests_under_it(span_path: str) -> None:
    """A store call made inside a span the node's code started is that span's
    child, on both span paths (not the task's, not the run's)."""
    from langgraph.config import get_store

    provider, exporter = provider_for(span_path)
    tracer = provider.get_tracer("user")

    def body() -> None:
        with tracer.start_as_current_span("mine"):
            get_store().put(("ns",), "k", {"v": 1})

    _saved(provider, body=body).invoke({"x": 0}, {"configurable": {"thread_id": "t"}})
    spans = exporter.get_finished_spans()
    (mine,) = [s for s in spans if s.name == "mine"]
    (put,) = [s for s in spans if s.name == f"{n.SPAN_STORE} put"]
    assert put.parent is not None
    assert put.parent.span_id == mine.context.span_id
    assert (put.attributes or {})[n.ATTR_STATUS] == n.STATUS_OK


def test_the_span_a_saver_kept_reads_as_its_calls_after_the_call(
    span_path: str,
) -> None:
    """A saver that keeps the current span and reads it only after the call (and
    the run) ended gets its call's span: the exported span's ids, not recording."""
    kept: list[Any] = []

    class Keeping(InMemorySaver):
        def put(self, *args: Any, **kwargs: Any) -> Any:
            kept.append(trace.get_current_span())
            return super().put(*args, **kwargs)

    provider, exporter = provider_for(span_path)
    _saved(provider, Keeping()).invoke({"x": 0}, {"configurable": {"thread_id": "t"}})
    puts = [s for s in exporter.get_finished_spans() if s.name.endswith(" put")]
    assert len(puts) == len(kept) >= 2
    ids = {(s.context.trace_id, s.context.span_id) for s in puts}
    read = [span.get_span_context() for span in kept]
    assert ids == {(ctx.trace_id, ctx.span_id) for ctx in read}
    assert not any(span.is_recording() for span in kept)


class _CountingIds(RandomIdGenerator):
    """An application's id generator: span ids counted up from 1."""

    def __init__(self) -> None:
        self.last = 0

    def generate_span_id(self) -> int:
        self.last += 1
        return self.last


def _checkpoint_span_ids(provider: TracerProvider, exporter: Any) -> list[int]:
    graph = lg_otel.instrument(
        StateGraph(St)
        .add_node("work", lambda state: {"x": 1})
        .add_edge(START, "work")
        .compile(checkpointer=InMemorySaver(), name="ids"),
        tracer_provider=provider,
    )
    graph.invoke({"x": 0}, {"configurable": {"thread_id": "t"}})
    calls = [
        s for s in exporter.get_finished_spans() if s.name.startswith(n.SPAN_CHECKPOINT)
    ]
    assert len(calls) >= 3, "the run made too few checkpointer calls"
    return [s.context.span_id for s in calls]


def test_checkpoint_spans_take_the_providers_own_id_generator() -> None:
    """The batched checkpoint spans' ids come from the provider's id generator
    when the application gave it its own (the SDK's default is made inline)."""
    ids = _CountingIds()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=ids)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert _chosen(provider)
    span_ids = _checkpoint_span_ids(provider, exporter)
    assert set(span_ids) <= set(range(1, ids.last + 1)), span_ids
    provider.shutdown()


def test_an_invalid_random_span_id_is_drawn_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the SDK's RandomIdGenerator: a draw of 0 (the invalid span id) is never
    the id of a span emitted finished; the span gets a valid one."""
    provider, exporter = provider_for("finished")
    maker = SpanPath(provider.get_tracer("t"), provider).current()
    assert isinstance(maker, FinishedSpans)
    run = maker.start("run", None, SpanKind.INTERNAL, {}, 1, root=True)
    parent = trace.set_span_in_context(run)
    draws = [0, 0]

    def getrandbits(k: int) -> int:
        return draws.pop() if draws else _getrandbits(k)

    _getrandbits = random.getrandbits
    monkeypatch.setattr(random, "getrandbits", getrandbits)
    targets: list[dict[str, Any]] = [{}, {}]
    missed = maker.emit_children(
        [("call", parent, {}, 2, 3, target) for target in targets], "span", "k", "v"
    )
    assert missed == []
    assert not draws, "the zeros were never drawn"
    span_ids = [target["span"].get_span_context().span_id for target in targets]
    assert all(0 < span_id < 1 << 64 for span_id in span_ids), span_ids
    assert [s.context.span_id for s in exporter.get_finished_spans()] == span_ids
    provider.shutdown()
