"""Where lg_otel's per-task cost goes: the wide graph, layer by layer, interleaved.

    python -m benchmarks.decompose [--reps N]

Each layer adds one piece to the one before, so the differences between rows are
the cost of each piece (process CPU per node task beyond the bare graph):

- ``+noop callback``: the bare graph with a do-nothing LangChain callback handler
  in the run's config (what LangChain charges to dispatch the per-run hook's
  events). Under ``invoke()`` lg_otel adds no ``tasks`` stream mode, so that is
  all LangGraph and LangChain charge before lg_otel's own code runs;
- ``lg_otel no-op``: lg_otel with a no-op tracer provider, no metrics, no logs
  (tap, hook, tracker; spans are non-recording);
- ``lg_otel spans``: plus SDK spans to a dropping exporter;
- ``+ prometheus`` / ``+ otel metrics`` / ``+ both``: plus one metrics path, or both;
- ``+ logs``: plus structlog at its default (INFO) level.

``--chunks`` does the same per streamed chunk, for a caller that streams
``["messages", "updates"]``: the slope between a 200-chunk and a 20-chunk chat. Its
layers: ``+noop callback`` (a do-nothing inline handler: what LangChain charges to
dispatch ``on_llm_new_token`` to one more handler), ``lg_otel no-op``, ``lg_otel
spans``, ``+ both`` metrics paths.

The garbage collector is paused inside each timed block (as ``timeit`` does) and
run between blocks: a collection landing in one block or the next is most of the
noise here, and what it costs is not a per-task or per-chunk figure.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig

import lg_otel
from benchmarks.variants import _quiet_structlog, layer_kwargs
from benchmarks.workloads import SHORT_TEXT, SLOPE_CHUNKS, _messages, chat, wide

TASKS = 210
INPUT = {"n": 0, "payload": ""}


class _Noop(BaseCallbackHandler):
    run_inline = True


#: Suffix of the row measuring "+ both" with spans on the public-API path.
_API = ", public-API span path"

#: Each per-task layer's row name, and the ``layer_kwargs`` key of the traced ones.
LAYERS: dict[str, str | None] = {
    "bare": None,
    "+noop callback": None,
    "lg_otel no-op": "noop",
    "lg_otel spans": "spans",
    "+ prometheus": "prometheus",
    "+ otel metrics": "otel",
    "+ both": "both",
    "+ logs": "logs",
    f"+ both{_API}": "api",
    "+ both, histograms through record()": "record",
}


def layer(name: str) -> Callable[[], None]:
    """One run of the wide graph in the per-task layer ``name`` (a ``LAYERS`` key)."""
    key = LAYERS[name]
    if key is not None:
        graph = lg_otel.instrument(wide(), **layer_kwargs(key))
        return lambda: graph.invoke(INPUT)
    bare = wide()
    if name == "bare":
        return lambda: bare.invoke(INPUT)
    config: RunnableConfig = {"callbacks": [_Noop()]}
    return lambda: bare.invoke(INPUT, config)


def _layers() -> list[tuple[str, Callable[[], None]]]:
    return [(name, layer(name)) for name in LAYERS]


def chunk_slope(wrap: Callable[[Any], Any], config: Any = None) -> Callable[[], float]:
    """A layer returning the CPU seconds of a 200-chunk minus a 20-chunk chat,
    streamed as ``["messages", "updates"]`` back to back (both graphs made by
    ``wrap``): the two runs share one moment of the machine."""
    long, short = wrap(chat("stream")), wrap(chat("stream", SHORT_TEXT))

    def run() -> float:
        spent = []
        for graph in (long, short):
            started = time.process_time()
            for _ in graph.stream(
                _messages(), config, stream_mode=["messages", "updates"]
            ):
                pass
            spent.append(time.process_time() - started)
        return spent[0] - spent[1]

    return run


def _chunk_layers() -> list[tuple[str, Callable[[], float]]]:
    """Each layer returns the CPU seconds of a 200-chunk minus a 20-chunk chat."""
    slope = chunk_slope

    def traced(key: str) -> Callable[[Any], Any]:
        kwargs = layer_kwargs(key)
        return lambda graph: lg_otel.instrument(graph, **kwargs)

    return [
        ("bare", slope(lambda g: g)),
        ("+noop callback", slope(lambda g: g, {"callbacks": [_Noop()]})),
        ("lg_otel no-op", slope(traced("noop"))),
        ("lg_otel spans", slope(traced("spans"))),
        ("+ both", slope(traced("both"))),
        (f"+ both{_API}", slope(traced("api"))),
    ]


def _cpu_of(fn: Callable[[], None]) -> Callable[[], float]:
    """``fn`` as a layer: one call, returning the CPU seconds it took."""

    def run() -> float:
        started = time.process_time()
        fn()
        return time.process_time() - started

    return run


def _measure(
    layers: list[tuple[str, Callable[[], float]]], reps: int, calls: int
) -> dict[str, list[float]]:
    """Interleaved repetitions: per layer, the mean of ``calls`` calls, GC paused."""
    for _, layer in layers:  # warm-up
        layer()
    out: dict[str, list[float]] = {name: [] for name, _ in layers}
    for _ in range(reps):
        for name, layer in layers:
            gc.collect()
            gc.disable()
            try:
                out[name].append(statistics.fmean(layer() for _ in range(calls)))
            finally:
                gc.enable()
    return out


def _print(cpu: dict[str, list[float]], per: int, unit: str) -> None:
    names = list(cpu)
    bare = statistics.median(cpu[names[0]])
    print(f"bare: {bare * 1e6 / per:.1f} µs CPU per {unit}\n")
    print(f"| layer | µs CPU per {unit} beyond bare (median) | step |")
    print("|---|---|---|")
    previous = 0.0
    seen: dict[str, float] = {}
    for name in names[1:]:
        extra = (statistics.median(cpu[name]) - bare) * 1e6 / per
        # The public-API row is "+ both" on the other span path: step against it.
        before = seen.get("+ both", previous) if name.endswith(_API) else previous
        print(f"| {name} | {extra:.1f} | {extra - before:+.1f} |")
        seen[name] = previous = extra


def main() -> None:
    """Measure every layer ``--reps`` times, interleaved, and print µs per task."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--chunks", action="store_true", help="per streamed chunk")
    args = parser.parse_args()
    _quiet_structlog()
    if args.chunks:
        _print(_measure(_chunk_layers(), args.reps, args.calls), SLOPE_CHUNKS, "chunk")
        return
    layers = [(name, _cpu_of(fn)) for name, fn in _layers()]
    _print(_measure(layers, args.reps, args.calls), TASKS, "task")


if __name__ == "__main__":
    main()
