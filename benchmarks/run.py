"""lg_otel's cost against the bare graph (and the callback-based tools), measured here.

    python benchmarks/run.py            # full run, writes benchmarks/results.md
    python benchmarks/run.py --quick    # seconds: CI's smoke run (no timing claims)

Variants are measured interleaved in one process (bare, spans, spans+metrics, …, bare,
spans, …) and reported as per-repetition ratios to the bare graph measured beside
them, so drift of this shared machine cancels. Process CPU time is the main figure.
Competitors (OpenInference, OpenLLMetry) run when installed, each in its own process
(their instrumentors patch LangChain globally).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import targets
from benchmarks.measure import (
    Samples,
    call,
    overhead_us,
    ratios,
    summary,
    timed,
)
from benchmarks.variants import (
    Variant,
    competitor_variants,
    lg_otel_variants,
)
from benchmarks.workloads import (
    SHORT_TEXT,
    SLOPE_CHUNKS,
    WORKLOADS,
    Workload,
    _messages,
    chat,
)

Results = dict[tuple[str, str], dict[str, Samples]]

#: Repetitions of the in-process wide row the per-task targets are judged on
#: (wide under ``invoke()``): about a minute.
TARGET_REPS = 100
#: Repetitions of the per-chunk slope, the variant it is judged on against bare:
#: about 80 s. One repetition's figure spreads over about 1.7 µs (its IQR), so at
#: 100 the 95 % interval of the median was about 0.6 µs wide, as wide as the distance
#: between the medians measured and the 1.5 µs limit; 400 halve it.
CHUNK_REPS = 400
#: Processes per side of the cross-tool comparison (about 2 s each).
SIDE_REPS = 30


def measure(
    workload: Workload,
    entries: list[str],
    variants: list[Variant],
    reps: int,
    calls: int,
) -> Results:
    """Interleaved repetitions of every variant, per entry point."""
    graphs = {v.name: v.wrap(workload.build()) for v in variants}
    out: Results = {}
    for entry in entries:
        samples = {v.name: Samples() for v in variants}
        for v in variants:  # warm-up: imports, caches, first-call set-up
            v.enter()
            call(graphs[v.name], entry, workload.make_input)
            v.leave()
        for _ in range(reps):
            for v in variants:
                v.enter()
                before = v.exporter.count
                cpu, wall = timed(
                    partial(call, graphs[v.name], entry, workload.make_input), calls
                )
                v.leave()
                samples[v.name].cpu.append(cpu)
                samples[v.name].wall.append(wall)
                samples[v.name].spans.append((v.exporter.count - before) // calls)
        out[(workload.name, entry)] = samples
    return out


def plan(quick: bool, only: str | None) -> list[tuple[Workload, list[str], int, int]]:
    """(workload, entry points, repetitions, calls per sample) to run."""
    out = []
    for w in WORKLOADS:
        if only and w.name != only:
            continue
        if w.wall_only:
            if quick:
                continue
            out.append((w, ["invoke", "stream-messages"], 10, 1))
            continue
        entries = ["invoke", "stream-updates", "stream-messages", "ainvoke", "astream"]
        reps = 2 if quick else 10
        calls = 1 if w.tasks > 100 else (1 if quick else 5)
        if quick:
            entries = ["invoke", "stream-messages"]
        elif w.name == "wide":
            # The per-task targets are judged on this row, by the bootstrap interval
            # of its median: more repetitions (a few seconds) narrow that interval.
            out.append((w, ["invoke"], TARGET_REPS, 3))
            entries = entries[1:]
        out.append((w, entries, reps, calls))
    return out


def per_chunk_slope(reps: int, variants: list[Variant]) -> dict[str, list[float]]:
    """Extra CPU per streamed chunk (µs), per repetition: the 200-chunk chat minus a
    20-chunk chat, as ``decompose --chunks`` takes it (both chats back to back in
    each measurement, variants interleaved, the collector paused), against the
    bare graph of the same repetition. ``variants[0]`` is the bare one."""
    from benchmarks.decompose import _measure, chunk_slope

    cpu = _measure([(v.name, chunk_slope(v.wrap)) for v in variants], reps, 5)
    bare = cpu[variants[0].name]
    return {
        v.name: [
            (x - b) * 1e6 / SLOPE_CHUNKS for x, b in zip(cpu[v.name], bare, strict=True)
        ]
        for v in variants[1:]
    }


def table(results: Results, variants: list[str]) -> list[str]:
    """Markdown rows: CPU and wall ratio vs bare, overhead per task, spans per run."""
    rows = [
        "| workload | entry point | variant | CPU ratio | wall ratio "
        "| µs CPU per task | spans/run |",
        "|---|---|---|---|---|---|---|",
    ]
    tasks = {w.name: w.tasks for w in WORKLOADS}
    for (workload, entry), samples in results.items():
        bare = samples["bare"]
        for name in variants:
            if name not in samples or name == "bare":
                continue
            s = samples[name]
            wall_only = any(w.wall_only and w.name == workload for w in WORKLOADS)
            cpu = "-" if wall_only else summary(ratios(s, bare, "cpu"))
            per_task = (
                "-"
                if wall_only
                else summary(overhead_us(s, bare, tasks.get(workload, 1)), "{:.0f}")
            )
            rows.append(
                f"| {workload} | {entry} | {name} | {cpu} | "
                f"{summary(ratios(s, bare, 'wall'))} | {per_task} | "
                f"{statistics.median(s.spans):.0f} |"
            )
        assert max(bare.spans) == 0, "the bare variant emitted spans"
    return rows


#: The sides of the cross-tool comparison, each measured in its own processes.
SIDES = ("bare", "lg_otel", "openinference", "openllmetry")


def competitors(reps: int) -> dict[str, Any]:
    """lg_otel and each installed competitor against bare, one process per sample.

    The callback-based tools patch LangChain globally and OpenLLMetry's
    ``uninstrument()`` does not undo its patch (a "bare" run after it still emits
    spans), so no two sides may share a process. Each repetition starts one process
    per side, in rotated order (A B C, B C A, ...), so machine drift cancels; every
    figure is that process's CPU minus the bare process's of the same repetition.
    """
    sides = [s for s in SIDES if s in ("bare", "lg_otel") or _installed(s)]
    if len(sides) < 3:
        return {}
    samples: dict[str, list[dict[str, float]]] = {s: [] for s in sides}
    for rep in range(reps):
        order = sides[rep % len(sides) :] + sides[: rep % len(sides)]
        for side in order:
            done = subprocess.run(
                [sys.executable, __file__, "--side", side],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                raise RuntimeError(f"side {side} failed:\n{done.stderr[-2000:]}")
            samples[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
    bare = samples.pop("bare")
    wide = next(w for w in WORKLOADS if w.name == "wide")
    out: dict[str, Any] = {}
    for side, got in samples.items():
        # Per repetition, against the bare process of the same repetition: the
        # targets' bootstrap pairs the sides' entries by repetition.
        per_task = [
            (g["wide_cpu"] - b["wide_cpu"]) * 1e6 / wide.tasks
            for g, b in zip(got, bare, strict=True)
        ]
        out[side] = {
            "per_task_us": statistics.median(per_task),
            "per_task_samples": per_task,
            "per_chunk_us": statistics.median(
                (g["chunk_cpu"] - b["chunk_cpu"]) * 1e6
                for g, b in zip(got, bare, strict=True)
            ),
            "cpu_ratio_wide": statistics.median(
                g["wide_cpu"] / b["wide_cpu"] for g, b in zip(got, bare, strict=True)
            ),
            "spans_per_run": statistics.median(g["wide_spans"] for g in got),
            "processes": len(got),
        }
    if any(b["wide_spans"] for b in bare):
        raise RuntimeError("a bare process emitted spans")
    return out


def _installed(side: str) -> bool:
    return any(v.name == side for v in competitor_variants())


def side_main(side: str, calls: int = 10) -> None:
    """Child process: one side's CPU per wide run and per streamed chunk (JSON)."""
    if side == "lg_otel":
        variant = lg_otel_variants()[2]  # spans + metrics
    elif side == "bare":
        variant = lg_otel_variants()[0]
    else:
        variant = next(v for v in competitor_variants() if v.name == side)
        variant.enter()  # for good: this process measures nothing else
    wide = next(w for w in WORKLOADS if w.name == "wide")
    graphs = {
        "wide": (variant.wrap(wide.build()), "invoke", wide.make_input),
        "long": (variant.wrap(chat("stream")), "stream-messages", _messages),
        "short": (
            variant.wrap(chat("stream", SHORT_TEXT)),
            "stream-messages",
            _messages,
        ),
    }
    for graph, entry, make_input in graphs.values():  # warm-up
        for _ in range(2):
            call(graph, entry, make_input)
    cpu: dict[str, float] = {}
    spans = 0
    for name, (graph, entry, make_input) in graphs.items():
        before = variant.exporter.count
        cpu[name] = timed(partial(call, graph, entry, make_input), calls)[0]
        if name == "wide":
            spans = (variant.exporter.count - before) // calls
    print(
        json.dumps(
            {
                "wide_cpu": cpu["wide"],
                "chunk_cpu": (cpu["long"] - cpu["short"]) / SLOPE_CHUNKS,
                "wide_spans": spans,
            }
        )
    )


def main() -> None:
    """Parse arguments, measure, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--only", help="one workload")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.md")))
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--rss-runs", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--exporter-down",
        type=int,
        metavar="RUNS",
        help="only the exporter-down target, RUNS runs per side; print its row",
    )
    args = parser.parse_args()
    if args.side:
        side_main(args.side)
        return
    if args.rss_runs:
        print(json.dumps(targets.rss_child(args.rss_runs)))
        return
    if args.exporter_down:
        print(targets.exporter_down_row(targets.exporter_down(args.exporter_down)))
        return
    started = time.perf_counter()
    variants = lg_otel_variants()
    names = [v.name for v in variants]
    results: Results = {}
    for workload, entries, reps, calls in plan(args.quick, args.only):
        results.update(measure(workload, entries, variants, args.reps or reps, calls))
    lines = [
        "# lg_otel benchmark",
        "",
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; langgraph {version('langgraph')}, "
        f"langchain-core {version('langchain-core')}, "
        f"opentelemetry-sdk {version('opentelemetry-sdk')}. "
        f"{'Quick smoke run: no figure here means anything.' if args.quick else ''}",
        "",
        "Ratios are per repetition against the bare graph measured beside each "
        "variant: median [min-max]. Spans go to a BatchSpanProcessor (its defaults) "
        "with an exporter that counts and drops them.",
        "",
        *table(results, names),
    ]
    if not args.quick:
        # Only the judged variant against bare: its interval narrows twice as fast
        # per minute as with every variant interleaved.
        judged = [v for v in variants if v.name in ("bare", targets.JUDGED)]
        slope = per_chunk_slope(max(args.reps or CHUNK_REPS, 15), judged)
        found = competitors(args.reps or SIDE_REPS)
        lines += ["", *targets.report(results, slope, found)]
    lines.append("")
    lines.append(f"Measured in {time.perf_counter() - started:.0f} s.")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
