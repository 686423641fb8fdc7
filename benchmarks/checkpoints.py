"""What lg_otel adds to each checkpointer call, beyond the bare graph.

    python -m benchmarks.checkpoints            # ~12 min: the figures below
    python -m benchmarks.checkpoints --quick    # seconds: smoke run, no claims
    python -m benchmarks.checkpoints --reps 200 # a narrower interval
    python -m benchmarks.checkpoints --layers both --reps 600  # the target's row alone

Two measurements, both process CPU time (all threads):

* **in the graph** (the target's figure): the ``wide`` workload (10 supersteps of a
  20-way fan-out and a join, 210 tasks) on an ``InMemorySaver``, ``invoke()``. The
  same traced graph is run with the saver's views on and with the tap's view step
  switched off (the saver then called unwrapped, untraced), 10 runs each, taken
  in turn run by run and each timed alone, ``--reps`` times per layer. Each
  repetition's difference, divided by the saver calls of one run (counted from
  the spans the views add), is the cost of the calls' views, records, spans and
  observations; the task telemetry cancels out. Reported: the median with its
  95 % bootstrap interval. ``views`` is a floor: views whose calls report nothing
  (no record, no span, the saver handed the configs as they come), so what the
  wrapping alone costs.
* **isolated**: one view's ``get_tuple`` and ``put_writes`` called in a loop inside
  an open run, against the user's saver called directly (``timeit``-style, warm).

Each for four lg_otel layers: ``noop`` (a no-op tracer, no metrics: the views,
tracker and fan-out alone), ``spans`` (SDK spans, no metrics), ``both`` (spans
and both metric paths) and ``record`` (``both``, the OTel histograms through
``Histogram.record()`` instead of bound: what a ``MeterProvider`` subclass gets).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langgraph.checkpoint.memory import InMemorySaver

import lg_otel
from benchmarks.measure import judge, median_interval, summary
from benchmarks.variants import CountingExporter, check_histogram_path, layer_kwargs
from benchmarks.workloads import wide
from lg_otel import _savers, _tap

LAYERS = ("noop", "spans", "both", "record")
#: Node tasks of one ``wide`` run.
_TASKS = 210


def _fresh(saver: InMemorySaver) -> None:
    # Every run starts from an empty saver, so no variant pays for a bigger one.
    saver.storage.clear()
    saver.writes.clear()
    saver.blobs.clear()


def _cpu(fn: Any, calls: int, then: Any = None) -> float:
    """CPU seconds per call of ``fn``; ``then()`` (in the timing) settles what the
    calls left to do, such as the observations they queued."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(calls):
            fn()
        if then is not None:
            then()
        return (time.process_time() - start) / calls
    finally:
        gc.enable()


def _paired_cpu(on: Any, off: Any, runs: int) -> tuple[float, float]:
    """CPU seconds per run of ``on`` and of ``off``: ``runs`` of each, taken in
    turn run by run (on, off, then off, on, ...), each timed alone.

    Paired run by run, the machine's drift over a repetition cancels: timed in
    two blocks of ``runs``, a difference of a few per cent between them drowned
    in it (``benchmarks/README.md``, stop 36).
    """
    gc.collect()
    gc.disable()
    clock = time.process_time
    spent = {on: 0.0, off: 0.0}
    try:
        for run in range(runs):
            for fn in (on, off) if run % 2 else (off, on):
                start = clock()
                fn()
                spent[fn] += clock() - start
        return spent[on] / runs, spent[off] / runs
    finally:
        gc.enable()


def _no_views(
    wiring: Any, graph: Any, config: Any, merged: Any, hooked: Any, *rest: Any
) -> Any:
    # The run's config as it is: the saver is called unwrapped. ``*rest`` takes
    # whatever else ``run_config`` is given: a signature that stopped matching made
    # the tap fall back to an untraced run, and the "off" variant measured bare.
    return hooked, graph


_INPUT = {"n": 0, "payload": ""}


def graph_run(target: Any, saver: InMemorySaver, views: bool) -> Any:
    """One ``wide`` run of ``target`` on a fresh ``saver``: with the saver's views,
    or the same traced graph with the tap's view step switched off (what is left
    is the task telemetry, which then cancels out)."""

    def once() -> None:
        target.invoke(_INPUT, {"configurable": {"thread_id": str(uuid.uuid4())}})
        _fresh(saver)

    def timed_once() -> None:
        if views:
            return once()
        tap = vars(_tap)
        wiring, tap["run_config"] = tap["run_config"], _no_views
        try:
            once()
        finally:
            tap["run_config"] = wiring

    return timed_once


def on_saver(layer: str, exporter: CountingExporter | None = None) -> Any:
    """``(saver, traced graph)``: ``wide`` on an ``InMemorySaver``, in ``layer``."""
    saver = InMemorySaver()
    graph = wide()
    graph.checkpointer = saver  # the same compiled graph, with a saver
    return saver, lg_otel.instrument(graph, **layer_kwargs(layer, exporter))


def saver_calls_per_run() -> int:
    """Saver calls of one run: the spans the views add (checked: they add some,
    and with the views off the run and its tasks are still traced)."""
    exporter = CountingExporter()
    saver, target = on_saver("spans", exporter)
    graph_run(target, saver, False)()
    plain = exporter.count
    # Were the run and its 210 tasks untraced with the views off, "off" would be
    # the bare graph and every figure the whole of lg_otel.
    assert plain == _TASKS + 1, f"views off exported {plain} spans, not {_TASKS + 1}"
    graph_run(target, saver, True)()
    calls = exporter.count - 2 * plain
    assert calls > 0, "the views added no span"
    return calls


#: The per-call target (µs of CPU beyond bare), judged on ``both``.
LIMIT_US = 10.0
#: Graph runs per variant in one repetition.
_RUNS = 10


def _quiet_enter(
    site: Any, operation: str, saver: str, args: Any, kwargs: Any
) -> tuple[Any, ...]:
    # CallSite.enter of the ``views`` floor: no record, no span, configs as given.
    return None, None, args, kwargs


def in_graph(
    reps: int, runs: int = _RUNS, layers: tuple[str, ...] = (*LAYERS, "views")
) -> dict[str, Any]:
    """µs of CPU per saver call, per layer: paired repetitions (views on - off)."""
    saver = InMemorySaver()
    graph = wide()
    graph.checkpointer = saver
    traced = {
        layer: lg_otel.instrument(graph, **layer_kwargs(layer))
        for layer in LAYERS
        if layer in layers
    }
    if "views" in layers:
        traced["views"] = lg_otel.instrument(graph, **layer_kwargs("noop"))
    for layer, target in traced.items():
        check_histogram_path(target, layer)
    calls = saver_calls_per_run()
    loud = _savers.CallSite.enter
    per_call: dict[str, list[float]] = {}
    for layer, target in traced.items():
        on, off = graph_run(target, saver, True), graph_run(target, saver, False)
        if layer == "views":
            _savers.CallSite.enter = _quiet_enter  # type: ignore[method-assign,assignment]
        try:
            on(), off()  # warm
            samples = []
            for _ in range(reps):
                with_views, without = _paired_cpu(on, off, runs)
                samples.append((with_views - without) * 1e6 / calls)
        finally:
            _savers.CallSite.enter = loud  # type: ignore[method-assign]
        per_call[layer] = samples
    bare_ms = _cpu(graph_run(graph, saver, True), runs) * 1e3
    return {"calls": calls, "per_call": per_call, "bare_ms": bare_ms}


def in_graph_row(values: list[float]) -> str:
    """The per-call target's row: the median, its interval, the verdict."""
    low, high = median_interval(values)
    return (
        f"{statistics.median(values):.1f} µs [{low:.1f}, {high:.1f}], "
        f"{len(values)} repetitions: {judge(low, high, LIMIT_US)}"
    )


def _isolated_layer(layer: str, reps: int, loops: int) -> dict[str, list[float]]:
    from langchain_core.runnables.config import ensure_config
    from langgraph.checkpoint.base import empty_checkpoint

    from lg_otel._savers import run_config

    saver = InMemorySaver()
    graph = lg_otel.instrument(wide(), **layer_kwargs(layer))
    check_histogram_path(graph, layer)
    graph.checkpointer = saver
    instr = type(graph)._lg_otel
    root: Any = {"configurable": {"thread_id": "bench", "checkpoint_ns": ""}}
    config: Any = saver.put(root, empty_checkpoint(), {}, {})
    merged: Any = ensure_config(config)
    tracker, _ = instr.new_run(graph, dict(merged), None, False)
    wired, run_graph = run_config(instr, graph, config, merged, config, tracker)
    view = run_graph.checkpointer
    # As in a run: LangGraph hands the saver configs carrying the run's
    # `configurable` (the view is the run's graph's own saver, not in there).
    run_conf = {**wired["configurable"], **config["configurable"]}
    config = {**config, "configurable": run_conf}
    writes = [("n", 1)]
    task = str(uuid.uuid4())
    ops = {
        "get_tuple": (lambda: saver.get_tuple(config), lambda: view.get_tuple(config)),
        "put_writes": (
            lambda: saver.put_writes(config, writes, task),
            lambda: view.put_writes(config, writes, task),
        ),
    }
    out: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(reps):
        for name, (bare, traced) in ops.items():
            bare_s = _cpu(bare, loops)
            # The saver calls' spans and durations wait in batches until the run
            # ends (or a timer hands them on): handed on here, inside the timing.
            traced_s = _cpu(traced, loops, instr.flush)
            out[name].append((traced_s - bare_s) * 1e6)
    tracker.finish("ok")
    return out


def isolated(
    reps: int, loops: int, layers: tuple[str, ...] = LAYERS
) -> dict[str, dict[str, list[float]]]:
    """µs of CPU a view adds to get_tuple / put_writes, per layer."""
    return {
        layer: _isolated_layer(layer, reps, loops)
        for layer in LAYERS
        if layer in layers
    }


def main() -> None:
    """Run both measurements and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, no claims")
    parser.add_argument("--reps", type=int, default=100, help="paired repetitions")
    parser.add_argument(
        "--layers",
        default=",".join(("views", *LAYERS)),
        help="comma-separated layers to measure (default: all)",
    )
    args = parser.parse_args()
    layers = tuple(layer for layer in args.layers.split(",") if layer)
    unknown = sorted(set(layers) - {"views", *LAYERS})
    if unknown or not layers:
        parser.error(
            f"--layers: unknown {unknown}; choose from views,{','.join(LAYERS)}"
        )
    reps, runs, loops = (2, 1, 200) if args.quick else (args.reps, _RUNS, 20_000)
    graph = in_graph(reps, runs, layers)
    alone = isolated(min(reps, 9), loops, layers)
    print(f"wide on InMemorySaver: {graph['calls']} saver calls per run, "
          f"bare run {graph['bare_ms']:.1f} ms CPU; {reps} paired repetitions "
          f"of {runs} runs")  # fmt: skip
    print()
    print("| layer | µs CPU per saver call, in the graph [95 % interval] | "
          "isolated get_tuple | isolated put_writes |")  # fmt: skip
    print("|---|---|---|---|")
    for layer in ("views", *LAYERS):
        if layer not in graph["per_call"]:
            continue
        values = graph["per_call"][layer]
        low, high = median_interval(values)
        iso = (
            f"{summary(alone[layer]['get_tuple'])} | "
            f"{summary(alone[layer]['put_writes'])}"
            if layer in alone
            else "- | -"
        )
        print(f"| {layer} | {statistics.median(values):.1f} [{low:.1f}, {high:.1f}] "
              f"| {iso} |")  # fmt: skip
    if "both" in graph["per_call"]:
        print()
        print(f"per checkpointer call ≤ {LIMIT_US:.0f} µs (both): "
              f"{in_graph_row(graph['per_call']['both'])}")  # fmt: skip


if __name__ == "__main__":
    main()
