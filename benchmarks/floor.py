"""The floor under lg_otel's per-task cost: what the libraries it must call charge.

    python -m benchmarks.floor [--number N]

Each row times, in isolation and with ``timeit`` (so with little of the in-graph
noise), one thing every traced node task needs from a library lg_otel does not
own, done exactly as lg_otel does it:

- ``SDK task span``: start a span with the six task attributes of the telemetry
  conventions under a parent context, make it current in the node's context and
  undo that, set its status attribute, end it (``SimpleSpanProcessor`` to an
  exporter that drops it);
- ``LangChain dispatch``: what a callback manager charges to deliver
  ``on_chain_start`` and ``on_chain_end`` to one more inline handler (the per-run
  hook), beyond the handlers a node run has anyway;
- ``prometheus observe``: one labelled histogram observation with a trace exemplar;
- ``OTel histogram record``: one SDK histogram record with the span's context.

The sum is what a task costs before lg_otel runs a line of its own, and before
LangGraph produces the ``tasks`` stream mode the tap reads (measured in the graph by
``benchmarks.decompose``).

A second table (per checkpointer or store call) times the cheapest way known to
produce what each call needs, on a plain SDK set-up:

- ``finished span``: a span context with a new span id, a ``ReadableSpan`` with the
  call's attributes, handed to a ``BatchSpanProcessor`` (whose export thread's CPU
  counts: process time);
- ``current while it runs``: a context holding the span, attached and detached (so a
  database instrumentation's spans nest under it);
- ``OTel histogram, bound``: lg_otel's bound recorder, one in-memory reader, no
  exemplar (a bucket takes one at most once a second);
- ``prometheus observe``: a labelled child, no exemplar.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.callbacks import BaseCallbackHandler, CallbackManager
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanContext, SpanKind
from opentelemetry.trace.status import Status
from prometheus_client import Histogram

from benchmarks.variants import CountingExporter, _provider
from lg_otel import _names as n
from lg_otel._histograms import can_bind, recorder


class _Inline(BaseCallbackHandler):
    run_inline = True


def _span() -> Callable[[], None]:
    tracer = _provider(CountingExporter()).get_tracer("floor")
    parent = trace.set_span_in_context(tracer.start_span("run"))

    def task() -> None:
        span = tracer.start_span(
            f"{n.SPAN_TASK} n1",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={
                n.ATTR_NODE: "n1",
                n.ATTR_TASK_ID: "6f1c9d3e-0b7a-5f4e-9c1d-2a3b4c5d6e7f",
                n.ATTR_STEP: 3,
                n.ATTR_TRIGGERS: ["branch:to:n1"],
                n.ATTR_CHECKPOINT_NS: "n1:6f1c9d3e-0b7a-5f4e-9c1d-2a3b4c5d6e7f",
            },
            start_time=1,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        otel_context.detach(token)
        span.set_attribute(n.ATTR_STATUS, n.STATUS_OK)
        span.end(end_time=2)

    return task


def _dispatch(handlers: list[BaseCallbackHandler]) -> Callable[[], None]:
    manager = CallbackManager(
        handlers=handlers,
        inheritable_handlers=handlers,
        tags=["graph:step:3"],
        metadata={"langgraph_step": 3, "langgraph_node": "n1"},
    )

    def task() -> None:
        run = manager.on_chain_start(None, {"n": 0}, run_id=uuid.uuid4(), name="n1")
        run.on_chain_end({"n": 1})

    return task


def _prometheus() -> Callable[[], None]:
    histogram = Histogram(
        "floor_seconds", "floor", ["graph", "node", "status"], registry=None
    )
    child = histogram.labels("g", "n1", "ok")
    span = _provider(CountingExporter()).get_tracer("floor").start_span("s")

    def task() -> None:
        ctx = span.get_span_context()
        child.observe(
            0.01,
            {
                n.EXEMPLAR_TRACE_ID: format(ctx.trace_id, "032x"),
                n.EXEMPLAR_SPAN_ID: format(ctx.span_id, "016x"),
            },
        )

    return task


def _otel() -> Callable[[], None]:
    histogram = MeterProvider().get_meter("floor").create_histogram("floor", "s")
    span = _provider(CountingExporter()).get_tracer("floor").start_span("s")
    attributes = {n.LABEL_GRAPH: "g", n.LABEL_NODE: "n1", n.LABEL_STATUS: n.STATUS_OK}

    def task() -> None:
        histogram.record(0.01, attributes, context=trace.set_span_in_context(span))

    return task


def _finished_span() -> Callable[[], None]:
    provider = TracerProvider()
    # A queue that does not fill in a tight loop: a dropped span costs less than a
    # queued one, and would flatter the figure.
    processor = BatchSpanProcessor(CountingExporter(), max_queue_size=1 << 20)
    provider.add_span_processor(processor)
    tracer: Any = provider.get_tracer("floor")
    parent = tracer.start_span("run").get_span_context()
    ids = tracer.id_generator
    attributes: dict[str, Any] = {
        n.ATTR_CHECKPOINT_OPERATION: "put_writes",
        n.ATTR_CHECKPOINT_SAVER: "InMemorySaver",
        n.ATTR_TASK_ID: "6f1c9d3e-0b7a-5f4e-9c1d-2a3b4c5d6e7f",
        n.ATTR_CHECKPOINT_WRITES: 1,
        n.ATTR_STATUS: n.STATUS_OK,
    }

    def call() -> None:
        ctx = SpanContext(
            parent.trace_id, ids.generate_span_id(), False, parent.trace_flags
        )
        processor.on_end(
            ReadableSpan(
                f"{n.SPAN_CHECKPOINT} put_writes",
                ctx,
                parent,
                tracer.resource,
                dict(attributes),
                (),
                (),
                SpanKind.INTERNAL,
                tracer.instrumentation_info,
                Status(),
                1,
                2,
                tracer._instrumentation_scope,
            )
        )

    return call


def _current() -> Callable[[], None]:
    span = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)

    def call() -> None:
        token = otel_context.attach(trace.set_span_in_context(span))
        otel_context.detach(token)

    return call


def _bound() -> Callable[[], None]:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    histogram = provider.get_meter("floor").create_histogram("floor", "s")
    attributes = {
        n.LABEL_GRAPH: "g",
        n.LABEL_CHECKPOINT_OPERATION: "put_writes",
        n.LABEL_CHECKPOINT_SAVER: "InMemorySaver",
        n.LABEL_STATUS: n.STATUS_OK,
    }
    record = recorder(histogram, attributes, can_bind(provider, histogram))
    empty = Context()

    def call() -> None:
        record(0.00005, empty)

    return call


def _prometheus_plain() -> Callable[[], None]:
    histogram = Histogram(
        "floor_call_seconds", "floor", ["graph", "op", "saver", "status"], registry=None
    )
    child = histogram.labels("g", "put_writes", "InMemorySaver", "ok")

    def call() -> None:
        child.observe(0.00005)

    return call


def _cpu(fn: Callable[[], None], number: int) -> float:
    """µs of process CPU per call (all threads: a batch processor's export too),
    the best of 5 repeats."""
    fn()
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(number):
            fn()
        best = min(best, time.process_time() - start)
    return best / number * 1e6


def _best(fn: Callable[[], None], number: int) -> float:
    """µs per call: the best of 5 repeats (the least disturbed by the machine)."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def _table(per: str, rows: list[tuple[str, float]]) -> None:
    """Print ``rows`` (piece, µs per ``per``) and their sum as a Markdown table."""
    print(f"| piece | µs CPU per {per} (best of 5) |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.1f} |")
    total = sum(v for _, v in rows)
    print(f"| **sum: spans + both metrics paths** | **{total:.1f}** |")


def main() -> None:
    """Time each piece and print the table with the sum."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()
    span = _best(_span(), args.number)
    dispatch = _best(_dispatch([_Inline(), _Inline()]), args.number) - _best(
        _dispatch([_Inline()]), args.number
    )
    prom = _best(_prometheus(), args.number)
    otel = _best(_otel(), args.number)
    rows = [
        ("SDK task span (start, attach/detach, status, end)", span),
        ("LangChain dispatch of chain start/end to the hook", dispatch),
        ("prometheus observe with exemplar", prom),
        ("OTel histogram record with span context", otel),
    ]
    _table("task", rows)
    print(f"| sum: spans + prometheus only | {span + dispatch + prom:.1f} |")
    print()
    calls = [
        ("finished span to a BatchSpanProcessor", _cpu(_finished_span(), args.number)),
        ("current while it runs (attach, detach)", _best(_current(), args.number)),
        ("OTel histogram, bound, one reader", _best(_bound(), args.number)),
        ("prometheus observe", _best(_prometheus_plain(), args.number)),
    ]
    _table("checkpointer or store call", calls)


if __name__ == "__main__":
    main()
