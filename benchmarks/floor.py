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
"""

from __future__ import annotations

import argparse
import sys
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.callbacks import BaseCallbackHandler, CallbackManager
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import SpanKind
from prometheus_client import Histogram

from benchmarks.variants import CountingExporter, _provider
from lg_otel import _names as n


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


def _best(fn: Callable[[], None], number: int) -> float:
    """µs per call: the best of 5 repeats (the least disturbed by the machine)."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


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
    print("| piece | µs CPU per task (best of 5) |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.1f} |")
    total = sum(v for _, v in rows)
    print(f"| **sum: spans + both metrics paths** | **{total:.1f}** |")
    print(f"| sum: spans + prometheus only | {span + dispatch + prom:.1f} |")


if __name__ == "__main__":
    main()
