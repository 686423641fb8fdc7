"""Failure injection: the caller sees what the bare graph gives; spans end once."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any, cast

import pytest
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import lg_otel
from lg_otel import _names as n
from lg_otel._parse import Part
from lg_otel._spanpath import FinishedSpans, RecordedSpan
from lg_otel._tap import _Plan
from tests.conftest import attrs_of, by_name, instrumentation, normalise, provider_for
from tests.graphs import SHAPES, Boom, S, chat, nested


class CountingProcessor(SpanProcessor):
    """Counts starts and ends per span, to prove every span ends exactly once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: dict[int, str] = {}
        self.ended: dict[int, int] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        with self.lock:
            self.started[span.context.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        with self.lock:
            self.ended[span.context.span_id] = (
                self.ended.get(span.context.span_id, 0) + 1
            )

    def assert_all_ended_once(self) -> None:
        assert self.started, "no span was started"
        assert set(self.ended) == set(self.started), "a started span never ended"
        assert set(self.ended.values()) == {1}, "a span ended more than once"


class FinishedCounter(CountingProcessor):
    """The same counts on the finished-span path, which has no on_start to watch.

    It watches lg_otel's own span recorder instead: every recorded span it starts,
    and every real end (a second ``end()`` is ignored, as the SDK ignores it).
    Every end goes through ``end_with`` (``end()`` included), so that is watched.
    """

    def watch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        start, end_with = FinishedSpans.start, RecordedSpan.end_with

        def counting_start(maker: FinishedSpans, *args: Any, **kwargs: Any) -> Any:
            span = start(maker, *args, **kwargs)
            if isinstance(span, RecordedSpan):
                with self.lock:
                    self.started[span.get_span_context().span_id] = span._name
            return span

        def counting_end(
            span: RecordedSpan,
            key: str | None,
            value: str,
            end_time: int | None,
            batch: Any = None,
        ) -> None:
            if span.is_recording():
                span_id = span.get_span_context().span_id
                with self.lock:
                    self.ended[span_id] = self.ended.get(span_id, 0) + 1
            end_with(span, key, value, end_time, batch)

        monkeypatch.setattr(FinishedSpans, "start", counting_start)
        monkeypatch.setattr(RecordedSpan, "end_with", counting_end)


@pytest.fixture
def counted(
    span_path: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[TracerProvider, InMemorySpanExporter, CountingProcessor]:
    """A provider with an in-memory exporter and a start/end counter."""
    if span_path == "api":
        counter = CountingProcessor()
        provider, exporter = provider_for(span_path, counter)
    else:
        counter = FinishedCounter()
        counter.watch(monkeypatch)
        provider, exporter = provider_for(span_path)
    return provider, exporter, counter


class RaisingExporter(SpanExporter):
    """An exporter whose every export raises."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionError("collector is down")

    def shutdown(self) -> None:
        pass


class RaisingProcessor(SpanProcessor):
    """A span processor that raises on start and end."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        raise RuntimeError("processor on_start")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("processor on_end")


def _outputs(graph: Any, inp: Any, **kwargs: Any) -> list[str]:
    out = []
    try:
        for chunk in graph.stream(inp, **kwargs):
            out.append(normalise(chunk))
    except Exception as exc:  # noqa: BLE001 - the exception is part of the output
        out.append(f"raised {type(exc).__name__}")
    return out


@pytest.mark.parametrize("bad", ["exporter", "processor"])
def test_raising_backend_changes_nothing(bad: str, span_path: str) -> None:
    """A raising exporter or processor: same output; failures counted, not raised."""
    provider, _ = provider_for(span_path)
    if bad == "exporter":
        provider.add_span_processor(SimpleSpanProcessor(RaisingExporter()))
    else:
        provider.add_span_processor(RaisingProcessor())
    for shape in SHAPES[:5]:
        bare = shape.build()
        traced = lg_otel.instrument(shape.build(), tracer_provider=provider)
        modes = ["updates", "messages", "custom"]
        assert _outputs(traced, shape.inputs[0], stream_mode=modes) == _outputs(
            bare, shape.inputs[0], stream_mode=modes
        )
    if bad == "processor":
        assert instrumentation(traced).errors.counts[n.COMPONENT_SPANS] > 0


def test_node_exception_is_the_same_object(counted: Any) -> None:
    """The caller gets the node's exception object itself, and every span ends once."""
    provider, _, counter = counted
    seen: list[BaseException] = []
    from langgraph.graph import START, StateGraph

    from tests.graphs import S

    err = Boom("the one")

    def boom(state: S) -> Any:
        seen.append(err)
        raise err

    g = StateGraph(S)
    g.add_node("boom", boom)
    g.add_edge(START, "boom")
    traced = lg_otel.instrument(g.compile(), tracer_provider=provider)
    with pytest.raises(Boom) as info:
        traced.invoke({"log": []})
    assert info.value is err
    counter.assert_all_ended_once()


def test_break_ends_every_span_once(counted: Any) -> None:
    """Breaking out of the loop mid-LLM-stream ends every started span once."""
    provider, exporter, counter = counted
    traced = lg_otel.instrument(chat(0.0, 0.001), tracer_provider=provider)
    # A generator (as LangGraph's own stream() is), though typed as an Iterator.
    gen = cast(
        Generator[Any, None, None],
        traced.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages"),
    )
    for i, _ in enumerate(gen):
        if i == 3:
            break
    gen.close()
    counter.assert_all_ended_once()
    (run,) = by_name(exporter.get_finished_spans(), "invoke_workflow chat")
    assert attrs_of(run)[n.ATTR_STATUS] == n.STATUS_CANCELLED
    assert instrumentation(traced).active.count == 0


def test_dropped_generator_is_finalised(counted: Any) -> None:
    """A generator simply dropped mid-stream is finalised when collected."""
    provider, _, counter = counted
    traced = lg_otel.instrument(chat(0.0, 0.001), tracer_provider=provider)
    gen = traced.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages")
    next(gen)
    next(gen)
    del gen
    gc.collect()
    counter.assert_all_ended_once()
    assert instrumentation(traced).active.count == 0


async def test_aclose_ends_every_span_once(counted: Any) -> None:
    """aclose() mid-stream ends every started span once, status cancelled."""
    provider, exporter, counter = counted
    traced = lg_otel.instrument(chat(0.0, 0.001), tracer_provider=provider)
    # An async generator (as LangGraph's own astream() is), typed as an AsyncIterator.
    agen = cast(
        AsyncGenerator[Any, None],
        traced.astream({"messages": [HumanMessage("hi")]}, stream_mode="messages"),
    )
    await agen.__anext__()
    await agen.__anext__()
    await agen.aclose()
    counter.assert_all_ended_once()
    (run,) = by_name(exporter.get_finished_spans(), "invoke_workflow chat")
    assert attrs_of(run)[n.ATTR_STATUS] == n.STATUS_CANCELLED


async def test_task_cancellation_mid_llm_stream(counted: Any) -> None:
    """Cancelling the consuming task mid LLM stream: CancelledError, spans end once."""
    provider, exporter, counter = counted
    traced = lg_otel.instrument(chat(0.0, 0.05), tracer_provider=provider)
    got: list[Any] = []

    async def consume() -> None:
        async for chunk in traced.astream(
            {"messages": [HumanMessage("hi")]}, stream_mode="messages"
        ):
            got.append(chunk)

    task = asyncio.create_task(consume())
    while len(got) < 3:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)  # let LangGraph's own cancelled tasks unwind
    counter.assert_all_ended_once()
    (run,) = by_name(exporter.get_finished_spans(), "invoke_workflow chat")
    assert attrs_of(run)[n.ATTR_STATUS] == n.STATUS_CANCELLED
    assert instrumentation(traced).active.count == 0


def test_keyboard_interrupt_propagates(counted: Any) -> None:
    """KeyboardInterrupt raised by the caller's loop body propagates unchanged."""
    provider, _, counter = counted
    traced = lg_otel.instrument(SHAPES[0].build(), tracer_provider=provider)

    def consume() -> None:
        for _ in traced.stream({"log": []}):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        consume()
    counter.assert_all_ended_once()


def test_malformed_parts_are_counted_not_raised(tracing: Any) -> None:
    """Unknown, malformed and odd stream parts are routed or dropped, never raised."""
    provider, _ = tracing
    traced = lg_otel.instrument(SHAPES[0].build(), tracer_provider=provider)
    instr = instrumentation(traced)
    from lg_otel._reshape import Request

    tracker, hook = instr.new_run(traced, {}, None, False)
    plan = _Plan(
        instr, Request("updates", False, "v2"), False, {}, {}, tracker, hook, traced
    )
    weird: list[Any] = [
        {"type": "tasks", "ns": (), "data": {"id": 3}},
        {"type": "tasks", "ns": (), "data": "nonsense"},
        {"type": "future_mode", "ns": (), "data": 1},
        {"ns": ()},
        ("not", "v2"),
        None,
        {"type": "updates", "ns": (), "data": {"a": 1}, "extra": True},
    ]
    routed = [plan.route(item) for item in weird]
    assert routed[-1] is weird[-1]  # the caller's own mode passes through unchanged
    assert instr.errors.counts[n.COMPONENT_PARSE] >= 4
    plan.finish(n.STATUS_OK, None)
    assert tracker.finished


def test_raising_clock_does_not_break_the_run() -> None:
    """Even a broken clock (telemetry internals failing) leaves the output intact."""
    provider = TracerProvider()
    shape = SHAPES[0]
    traced = lg_otel.instrument(shape.build(), tracer_provider=provider)
    instr = instrumentation(traced)
    calls = {"n": 0}

    def clock() -> int:
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError("clock broke")
        return time.perf_counter_ns()

    instr.clock = clock
    bare = shape.build()
    assert _outputs(traced, shape.inputs[0]) == _outputs(bare, shape.inputs[0])


def test_original_graph_is_untouched(tracing: Any) -> None:
    """The graph passed to instrument() keeps emitting nothing."""
    provider, exporter = tracing
    original = nested()
    lg_otel.instrument(original, tracer_provider=provider)
    original.invoke({"log": []})
    assert exporter.get_finished_spans() == ()


def test_part_dataclass_is_plain() -> None:
    """Parsed parts are plain data (the pure core imports no exporter)."""
    part = Part((), "updates", {"a": 1})
    assert part.mode == "updates"
    assert part.ns == ()


async def test_cancellation_in_a_parallel_superstep(counted: Any) -> None:
    """Cancelled while three branches run: each task span ends once, cancelled."""
    from langgraph.graph import START, StateGraph

    from tests.graphs import S

    provider, exporter, counter = counted

    def slow(name: str) -> Any:
        async def node(state: S) -> Any:
            await asyncio.sleep(0.5)
            return {"log": [name]}

        return node

    g = StateGraph(S)
    for name in ("a", "b", "c"):
        g.add_node(name, slow(name))
        g.add_edge(START, name)
    traced = lg_otel.instrument(g.compile(name="par"), tracer_provider=provider)

    async def consume() -> None:
        async for _ in traced.astream({"log": []}):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    counter.assert_all_ended_once()
    spans = exporter.get_finished_spans()
    statuses = {s.name: s.attributes[n.ATTR_STATUS] for s in spans}
    assert statuses == {
        "invoke_workflow par": n.STATUS_CANCELLED,
        "invoke_node a": n.STATUS_CANCELLED,
        "invoke_node b": n.STATUS_CANCELLED,
        "invoke_node c": n.STATUS_CANCELLED,
    }
    assert instrumentation(traced).active.count == 0


class _OddItems(CompiledStateGraph):  # type: ignore[type-arg]
    """A graph class whose streams also yield a 2-tuple led by a list: no
    LangGraph release does, but a subclass may, and the tap must not choke."""

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        """The first item is odd; then the graph's own."""
        yield (["not", "a", "mode"], "payload")
        yield from super().stream(*args, **kwargs)

    async def astream(self, *args: Any, **kwargs: Any) -> Any:
        """As :meth:`stream`."""
        yield (["not", "a", "mode"], "payload")
        async for item in super().astream(*args, **kwargs):
            yield item


def _odd_graph() -> Any:
    g = StateGraph(S)
    g.add_node("a", lambda state: {"log": ["a"]})
    g.add_edge(START, "a")
    g.add_edge("a", END)
    graph = g.compile(name="odd")
    graph.__class__ = _OddItems
    return graph


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_an_item_with_an_unhashable_head_reaches_the_caller(
    use_async: bool, tracing: Any
) -> None:
    """A v1 item whose first element is unhashable passes through unchanged
    (the fast path's mode checks would have raised on it), the run's telemetry
    goes on, and the odd item is counted as a parse error."""
    provider, exporter = tracing
    modes = {"stream_mode": ["updates", "custom"]}

    async def drive(graph: Any) -> list[Any]:
        if use_async:
            return [item async for item in graph.astream({"log": []}, **modes)]
        return list(graph.stream({"log": []}, **modes))

    expected = await drive(_odd_graph())
    traced = lg_otel.instrument(_odd_graph(), tracer_provider=provider)
    assert await drive(traced) == expected
    names = {s.name for s in exporter.get_finished_spans()}
    assert names >= {f"{n.SPAN_RUN} odd", f"{n.SPAN_TASK} a"}
    assert instrumentation(traced).errors.counts.get(n.COMPONENT_PARSE, 0) >= 1
