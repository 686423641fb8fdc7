"""Where lg_otel's per-task cost goes: the wide graph, layer by layer, interleaved.

    python -m benchmarks.decompose [--reps N]

Each layer adds one piece to the one before, so the differences between rows are
the cost of each piece (process CPU per node task beyond the bare graph):

- ``+tasks mode``: the bare graph asked for the ``tasks`` stream mode too (what
  LangGraph charges to produce the parts the tap reads);
- ``+noop callback``: plus a do-nothing LangChain callback handler in the run's
  config (what LangChain charges to dispatch the per-run hook's events);
- ``lg_otel no-op``: lg_otel with a no-op tracer provider, no metrics, no logs
  (tap, hook, tracker; spans are non-recording);
- ``lg_otel spans``: plus SDK spans to a dropping exporter;
- ``+ prometheus`` / ``+ otel metrics`` / ``+ both``: plus one metrics path, or both;
- ``+ logs``: plus structlog at its default (INFO) level.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import NoOpTracerProvider
from prometheus_client import CollectorRegistry

import lg_otel
from benchmarks.variants import CountingExporter, _provider, _quiet_structlog
from benchmarks.workloads import wide

TASKS = 210
INPUT = {"n": 0, "payload": ""}


class _Noop(BaseCallbackHandler):
    run_inline = True


def _layers() -> list[tuple[str, Callable[[], None]]]:
    bare = wide()

    def tasks_mode() -> None:
        for _ in bare.stream(INPUT, stream_mode=["values", "tasks"]):
            pass

    def noop_callback() -> None:
        for _ in bare.stream(
            INPUT, {"callbacks": [_Noop()]}, stream_mode=["values", "tasks"]
        ):
            pass

    def traced(**kwargs: Any) -> Callable[[], None]:
        graph = lg_otel.instrument(wide(), **kwargs)
        return lambda: graph.invoke(INPUT)

    off = lg_otel.Config(metrics=False, logs=False)
    _quiet_structlog()
    return [
        ("bare", lambda: bare.invoke(INPUT)),
        ("+tasks mode", tasks_mode),
        ("+noop callback", noop_callback),
        ("lg_otel no-op", traced(tracer_provider=NoOpTracerProvider(), config=off)),
        (
            "lg_otel spans",
            traced(tracer_provider=_provider(CountingExporter()), config=off),
        ),
        (
            "+ prometheus",
            traced(
                tracer_provider=_provider(CountingExporter()),
                registry=CollectorRegistry(),
                config=lg_otel.Config(logs=False),
            ),
        ),
        (
            "+ otel metrics",
            traced(
                tracer_provider=_provider(CountingExporter()),
                meter_provider=MeterProvider(),
                registry=False,
                config=lg_otel.Config(logs=False),
            ),
        ),
        (
            "+ both",
            traced(
                tracer_provider=_provider(CountingExporter()),
                meter_provider=MeterProvider(),
                registry=CollectorRegistry(),
                config=lg_otel.Config(logs=False),
            ),
        ),
        (
            "+ logs",
            traced(
                tracer_provider=_provider(CountingExporter()),
                meter_provider=MeterProvider(),
                registry=CollectorRegistry(),
                config=lg_otel.Config(logs=True),
            ),
        ),
    ]


def main() -> None:
    """Measure every layer ``--reps`` times, interleaved, and print µs per task."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    layers = _layers()
    for _, fn in layers:  # warm-up
        fn()
    cpu: dict[str, list[float]] = {name: [] for name, _ in layers}
    for _ in range(args.reps):
        for name, fn in layers:
            started = time.process_time()
            for _ in range(args.calls):
                fn()
            cpu[name].append((time.process_time() - started) / args.calls)
    bare = statistics.median(cpu["bare"])
    print(f"bare: {bare * 1e6 / TASKS:.0f} µs CPU per task\n")
    print("| layer | µs CPU per task beyond bare (median) | step |")
    print("|---|---|---|")
    previous = 0.0
    for name, _ in layers[1:]:
        extra = (statistics.median(cpu[name]) - bare) * 1e6 / TASKS
        print(f"| {name} | {extra:.0f} | {extra - previous:+.0f} |")
        previous = extra


if __name__ == "__main__":
    main()
