"""Shared fixtures: in-memory tracing; helpers to drive graphs and read span trees."""

from __future__ import annotations

import gc
import os
import re
import select
import signal
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import (
    ReadableSpan,
    Span,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode

from lg_otel import _names as n

if TYPE_CHECKING:
    from typing import Unpack

    from langchain_core.runnables import RunnableConfig

    from lg_otel._instrument import GraphInstrumentation


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Each test starts with structlog unconfigured (capture_logs() leaves it set)."""
    import structlog

    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _no_span_left_current() -> Iterator[None]:
    """No test leaves a span current for the tests after it (rule 1 for the caller).

    A leak here made later tests' runs children of a stale span, far from its cause;
    this names the test that left it, then puts the context back.
    """
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    before = otel_context.get_current()
    yield
    left = trace.get_current_span()
    if left.get_span_context().is_valid and left is not trace.get_current_span(before):
        otel_context.attach(before)
        pytest.fail(f"the test left a span current: {left!r}")


@pytest.fixture
def no_gc_pauses() -> Iterator[None]:
    """No garbage-collector pause lands inside a timed run.

    A full collection (tens of ms with the objects earlier tests leave) holds the GIL
    and delays whichever thread is about to record a timestamp: that is the host's
    pause, not lg_otel's arithmetic, which is what these tests check. Likewise the
    GIL's switch interval is shortened while the test runs.
    """
    gc.collect()
    gc.disable()
    # A thread waiting for the GIL waits up to the switch interval (5 ms by default)
    # before it may record its timestamp: scheduling noise of the same size as the
    # tolerance, not lg_otel's arithmetic.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    yield
    sys.setswitchinterval(interval)
    gc.enable()


class OnStartProcessor(SpanProcessor):
    """A processor with ``on_start`` logic: lg_otel must use the public-API path."""

    def __init__(self) -> None:
        self.started = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Count the start (real work in on_start, as a vendor processor does)."""
        self.started += 1


class RaisingOnEnd(SpanProcessor):
    """A processor that raises as every span ends (an exporter's bug, say)."""

    def on_end(self, span: ReadableSpan) -> None:
        """Fail, as a broken processor would."""
        raise RuntimeError("processor down")


#: The two ways lg_otel produces spans: recorded and emitted finished (a plain SDK
#: set-up), or through the tracer's API (here: because of an on_start processor).
SPAN_PATHS = ("finished", "api")
#: Test modules whose tests run on both span paths.
BOTH_PATHS = {
    "test_accuracy",
    "test_call_paths",
    "test_context",
    "test_differential",
    "test_functional_tasks",
    "test_never_break_host",
    "test_privacy",
    "test_reliability",
    "test_span_paths",
    "test_span_tree",
    "test_task_next",
}


#: The two ways lg_otel records an OTel histogram: bound to the SDK's aggregations
#: (a plain SDK MeterProvider), or through ``Histogram.record`` (here: because the
#: provider is a subclass of the SDK's, as a vendor's distribution may be).
METRIC_PATHS = ("bound", "api")
#: Test modules whose tests run on both metric paths.
BOTH_METRIC_PATHS = {
    "test_checkpoint_timing",
    "test_histograms",
    "test_metrics",
    "test_metrics_graph",
}


#: Where a run learns how each task ended: from the per-run hook alone (the
#: default), or also from the ``tasks`` stream mode (the path of a graph with a node
#: cache, and of a caller who streams ``tasks`` itself).
TASK_SOURCES = ("hook", "stream")
#: Test modules whose tests run with both task sources.
BOTH_TASK_SOURCES = {
    "test_accuracy",
    "test_context",
    "test_differential",
    "test_first_chunk",
    "test_functional_tasks",
    "test_interrupt_event",
    "test_logs",
    "test_never_break_host",
    "test_reliability",
    "test_span_tree",
    "test_task_next",
}


#: When a run's sinks hear of its checkpointer and store calls: from the span batch
#: after each call ended (the default), or during each call.
CALL_PATHS = ("deferred", "inline")
#: Test modules whose tests run on both call paths.
BOTH_CALL_PATHS = {
    "test_checkpoint_differential",
    "test_checkpoint_timing",
    "test_checkpoints",
    "test_postgres",
    "test_span_paths",
    "test_task_next",
}


@pytest.fixture(autouse=True)
def call_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which call path the test's runs take."""
    from lg_otel import _instrument

    path = str(getattr(request, "param", CALL_PATHS[0]))
    before = _instrument.DEFER_CALLS
    _instrument.DEFER_CALLS = path == "deferred"
    yield path
    _instrument.DEFER_CALLS = before


@pytest.fixture(autouse=True)
def task_source(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which task source the test's runs take."""
    from lg_otel import _tap

    source = str(getattr(request, "param", TASK_SOURCES[0]))
    before = _tap.ALWAYS_STREAM_TASKS
    _tap.ALWAYS_STREAM_TASKS = source == "stream"
    yield source
    _tap.ALWAYS_STREAM_TASKS = before


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Run the ``tasks``-mode source on the recorded span path only.

    The task source decides when a task ends, the span path how its span is
    made: the two are independent, so the cross product would only repeat tests.
    """
    dropped = [item for item in items if _api_and_stream(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not _api_and_stream(item)]


def _api_and_stream(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("span_path") == "api" and params.get("task_source") == "stream"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests that take ``span_path`` / ``metric_path`` on both paths in the
    listed modules, and every test of the listed modules with both task sources
    and on both call paths."""
    module = metafunc.module.__name__.rpartition(".")[2]
    if module in BOTH_TASK_SOURCES and "task_source" in metafunc.fixturenames:
        metafunc.parametrize("task_source", TASK_SOURCES, indirect=True)
    if module in BOTH_CALL_PATHS and "call_path" in metafunc.fixturenames:
        metafunc.parametrize("call_path", CALL_PATHS, indirect=True)
    if "span_path" in metafunc.fixturenames:
        paths = SPAN_PATHS if module in BOTH_PATHS else SPAN_PATHS[:1]
        metafunc.parametrize("span_path", paths, indirect=True)
    if "metric_path" in metafunc.fixturenames:
        paths = METRIC_PATHS if module in BOTH_METRIC_PATHS else METRIC_PATHS[:1]
        metafunc.parametrize("metric_path", paths, indirect=True)


class VendorMeterProvider(MeterProvider):
    """A subclass of the SDK's provider: lg_otel must record through the API."""


@pytest.fixture
def metric_path(request: pytest.FixtureRequest) -> str:
    """Which metric path the test's meter provider makes lg_otel take."""
    return str(getattr(request, "param", METRIC_PATHS[0]))


def meter_provider_for(
    path: str, *readers: MetricReader, **kwargs: Any
) -> MeterProvider:
    """An SDK meter provider with ``readers``, set up so lg_otel takes ``path``."""
    cls = MeterProvider if path == "bound" else VendorMeterProvider
    return cls(metric_readers=list(readers), **kwargs)


@pytest.fixture
def span_path(request: pytest.FixtureRequest) -> str:
    """Which span path the test's provider makes lg_otel take."""
    return str(getattr(request, "param", SPAN_PATHS[0]))


def provider_for(
    path: str, *processors: SpanProcessor, span_limits: SpanLimits | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A provider exporting to memory, set up so lg_otel takes ``path``.

    ``processors`` come first (they see spans before the exporter).
    """
    provider = TracerProvider(span_limits=span_limits)
    if path == "api":
        provider.add_span_processor(OnStartProcessor())
    for processor in processors:
        provider.add_span_processor(processor)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def tracing(span_path: str) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A TracerProvider exporting to memory, shut down after the test."""
    provider, exporter = provider_for(span_path)
    yield provider, exporter
    provider.shutdown()


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX32 = re.compile(r"\b[0-9a-f]{32}\b")
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")


def types_of(value: Any, depth: int = 0) -> str:
    """The Python types of a payload, recursively through containers and models.

    ``repr`` alone can hide a changed type: a dict subclass, a NamedTuple or a model
    with a dict-like repr reads the same as the plain value, and ``==`` holds
    between some of them (``{'a': 1} == A(a=1)`` for a few types).
    """
    name = type(value).__qualname__
    if depth > 8:  # deep enough for any state; bounded against cycles
        return name
    depth += 1
    if isinstance(value, dict):
        inner = ",".join(f"{k!r}:{types_of(v, depth)}" for k, v in value.items())
        return f"{name}{{{inner}}}"
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return f"{name}[{','.join(types_of(v, depth) for v in items)}]"
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict) and not isinstance(value, type):
        inner = ",".join(
            f"{k}:{types_of(v, depth)}"
            for k, v in fields.items()
            if not k.startswith("_")
        )
        return f"{name}({inner})"
    return name


def normalise(value: Any) -> str:
    """A repr with ids and timestamps replaced, plus the payload's types, for
    comparing two runs' outputs."""
    text = f"{value!r} :: {types_of(value)}"
    text = _UUID.sub("<id>", text)
    text = _HEX32.sub("<hex>", text)
    return _TS.sub("<ts>", text)


def thread_config(**extra: Unpack[RunnableConfig]) -> RunnableConfig:
    """A config with a fresh thread id."""
    return {"configurable": {"thread_id": str(uuid.uuid4())}, **extra}


def tree(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> list[str]:
    """Each span as 'name <- parent name', sorted (structure without timing)."""
    by_id = {s.context.span_id: s for s in spans}
    rows = []
    for s in spans:
        parent = by_id.get(s.parent.span_id) if s.parent else None
        rows.append(f"{s.name} <- {parent.name if parent else None}")
    return sorted(rows)


def by_name(spans: Any, name: str) -> list[ReadableSpan]:
    """Spans with exactly this name."""
    return [s for s in spans if s.name == name]


def duration_s(span: ReadableSpan) -> float:
    """A finished span's duration in seconds."""
    assert span.end_time is not None
    assert span.start_time is not None
    return (span.end_time - span.start_time) / 1e9


def start_ns(span: ReadableSpan) -> int:
    """A finished span's start time (ns since the epoch)."""
    assert span.start_time is not None
    return span.start_time


def end_ns(span: ReadableSpan) -> int:
    """A finished span's end time (ns since the epoch)."""
    assert span.end_time is not None
    return span.end_time


_V_co = TypeVar("_V_co", covariant=True)


class HasAttributes(Protocol[_V_co]):
    """A span, link, event or metric point: its ``attributes`` are typed Optional."""

    @property
    def attributes(self) -> Mapping[str, _V_co] | None: ...


def attrs_of(item: HasAttributes[_V_co]) -> Mapping[str, _V_co]:
    """The attributes of a finished span, a link or a point (the SDK sets them)."""
    assert item.attributes is not None
    return item.attributes


def instrumentation(graph: object) -> GraphInstrumentation:
    """lg_otel's state behind an instrumented graph (its class's ``_lg_otel``).

    Not part of the graph's public type: ``instrument()`` returns the graph's type.
    """
    cls: Any = type(graph)
    instr: GraphInstrumentation = cls._lg_otel
    return instr


def assert_caught_failure(spans: Any, failed: str, caller: str) -> None:
    """Task ``failed`` raised ``Boom`` inside task ``caller``, which caught it and
    slept 50 ms before returning: the failed span nests under the caller's, is an
    error of type ``Boom``, and keeps its own end time; the caller is ok."""
    (child,) = by_name(spans, f"{n.SPAN_TASK} {failed}")
    (parent,) = by_name(spans, f"{n.SPAN_TASK} {caller}")
    assert child.parent is not None
    assert child.parent.span_id == parent.context.span_id
    assert attrs_of(child)[n.ATTR_STATUS] == n.STATUS_ERROR
    assert attrs_of(child)[n.ATTR_ERROR_TYPE] == "Boom"
    assert child.status.status_code is StatusCode.ERROR
    assert end_ns(parent) - end_ns(child) >= 45_000_000
    assert attrs_of(parent)[n.ATTR_STATUS] == n.STATUS_OK


def report_from_fork(report: Callable[[], str]) -> str:
    """Fork; the child answers ``report()`` and leaves at once; its answer.

    A child that gives no answer in 30 s (stuck in a fork handler, say) is killed
    and the answer says so, so the test fails instead of hanging.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never goes back into the test run
        try:
            os.write(write, report().encode())
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 30)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    answer = os.read(read, 100).decode() if ready else "no answer in 30 s"
    os.close(read)
    os.waitpid(pid, 0)
    return answer
