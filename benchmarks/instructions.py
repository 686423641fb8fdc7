"""Per-task cost in the graph as instructions executed: deterministic, layer by layer.

    python -m benchmarks.instructions [--runs K] [--layers NAME ...] [--quick]
    python -m benchmarks.instructions --what calls [--runs K]

CPU time on a shared machine moves by 30-50 % between runs, more than most code
changes do. Instructions do not: each layer of ``decompose.py`` runs in its own
process under Valgrind's ``callgrind`` (Debian's ``valgrind`` package), which counts
every instruction the process executes, in every thread. The counts are taken
between two marker calls around ``K`` warm runs of the wide graph (GC paused, as in
``decompose.py``), so imports, set-up and warm-up are not in them.

``--what calls`` counts each checkpointer call instead: ``wide`` on an
``InMemorySaver``, each lg_otel layer (``noop``, ``spans``, ``both``) run with the
saver's views on and off (``checkpoints.py``'s in-graph method), the difference
divided by the saver calls of a run.

Columns: instructions per node task (or saver call), and the share of the bare
graph's task they add. ``≈ µs`` turns that share into time at the bare task's
measured CPU cost (measured natively, in this run). It assumes lg_otel's code runs
at the same instructions per cycle as LangGraph's, and it does not: ``decompose.py``
measured it about 1.3 times dearer. Counts are not exact either, as threads
interleave and the batch span processor's timer fires differently from run to run:
most repeated runs of a layer land within 3,000 instructions per task of each other
(about 1.5 % of lg_otel's share), though one run came out 9,000 below the others;
CPU time moves by 30-50 %. Repeat a comparison before believing a small
difference. This is the tool for comparing code, and ``decompose.py`` the one for
time.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import checkpoints
from benchmarks.decompose import LAYERS, TASKS, _cpu_of, _measure, layer
from benchmarks.variants import _quiet_structlog
from lg_otel import _metrics

ROOT = Path(__file__).resolve().parent.parent
#: A C function Python calls only when asked: callgrind dumps its counts there.
_MARKER = "os_getppid*"
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


#: The layers of ``--what calls`` (``checkpoints.py``'s), each with views on and off.
CALL_LAYERS = ("noop", "spans", "both")


def _child(name: str, runs: int, views: str | None) -> None:
    """Run layer ``name`` ``runs`` times between two markers (inside callgrind);
    with ``views`` ("on"/"off"), a ``CALL_LAYERS`` layer on a saver."""
    _quiet_structlog()  # as decompose.py: logs rendered, to memory
    # Under callgrind a run takes seconds, so every observation would make an
    # exemplar (at most one per bucket and second); natively the wide graph's
    # label sets get one in every ~15 runs. One per label set is the closer count.
    _metrics.EXEMPLAR_INTERVAL_NS = 3600 * 10**9
    if views is None:
        run = layer(name)
    else:
        saver, target = checkpoints.on_saver(name)
        run = checkpoints.graph_run(target, saver, views == "on")
    run()
    run()
    gc.collect()
    gc.disable()
    os.getppid()  # callgrind dumps the set-up here
    for _ in range(runs):
        run()
    os.getppid()  # ... and the runs here


def count_between_markers(argv: list[str], prefix: Path, cwd: Path = ROOT) -> int:
    """Instructions ``argv`` (a Python process) executed between its first two
    ``os.getppid()`` calls, all threads, counted by callgrind."""
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={prefix}",
            f"--dump-before={_MARKER}",
            *argv,
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"callgrind failed:\n{done.stderr[-2000:]}")
    # Dump 1 holds what ran before the first marker, dump 2 what ran between them.
    found = _TOTALS.search(Path(f"{prefix}.2").read_text())
    if found is None:
        raise RuntimeError(f"no second dump in {prefix}.2: were both markers called?")
    return int(found.group(1))


def _count(name: str, runs: int, out: Path, views: str | None = None) -> int:
    """Instructions the ``runs`` runs of layer ``name`` executed, all threads."""
    argv = [sys.executable, "-m", "benchmarks.instructions", "--child", name]
    argv += ["--runs", str(runs)]
    if views is not None:
        argv += ["--views", views]
    prefix = out / f"cg.{name}.{views}".replace(" ", "_")
    return count_between_markers(argv, prefix)


def _bare_cpu_per_task(reps: int = 5) -> float:
    """The bare wide graph's CPU per task (µs), measured natively, GC paused."""
    spent = _measure([("bare", _cpu_of(layer("bare")))], reps, 1)["bare"]
    return statistics.median(spent) * 1e6 / TASKS


def measure(names: list[str], runs: int) -> dict[str, float]:
    """Instructions per task of each layer (two processes at a time)."""
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        counts = pool.map(lambda name: _count(name, runs, Path(tmp)), names)
        return {
            name: count / (runs * TASKS)
            for name, count in zip(names, counts, strict=True)
        }


def measure_calls(runs: int) -> dict[str, float]:
    """Instructions per saver call of each ``CALL_LAYERS`` layer, in the graph."""
    jobs = [(name, views) for name in CALL_LAYERS for views in ("on", "off")]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        counts = list(
            pool.map(lambda job: _count(job[0], runs, Path(tmp), job[1]), jobs)
        )
    found = dict(zip(jobs, counts, strict=True))
    calls = checkpoints.saver_calls_per_run() * runs
    return {
        name: (found[name, "on"] - found[name, "off"]) / calls for name in CALL_LAYERS
    }


def calls_table(
    per_call: dict[str, float], bare_per_task: float, bare_us: float
) -> str:
    """The Markdown table of ``--what calls``: instructions per saver call."""
    lines = [
        f"bare task: {bare_per_task:,.0f} instructions ({bare_us:.0f} µs CPU)",
        "",
        "| layer | instructions per saver call | ≈ µs at the bare task's rate |",
        "|---|---|---|",
    ]
    for name, count in per_call.items():
        lines.append(
            f"| {name} | {count:,.0f} | {count / bare_per_task * bare_us:.1f} |"
        )
    return "\n".join(lines)


def table(per_task: dict[str, float], bare_us: float) -> str:
    """The Markdown table: instructions per task beyond bare, and their share."""
    bare = per_task["bare"]
    lines = [
        f"bare: {bare:,.0f} instructions per task ({bare_us:.0f} µs CPU)",
        "",
        "| layer | instructions per task beyond bare | share of a bare task "
        "| ≈ µs | step |",
        "|---|---|---|---|---|",
    ]
    previous = 0.0
    for name, count in per_task.items():
        if name == "bare":
            continue
        extra = count - bare
        lines.append(
            f"| {name} | {extra:,.0f} | {extra / bare:.1%} "
            f"| {extra / bare * bare_us:.1f} | {extra - previous:+,.0f} |"
        )
        previous = extra
    return "\n".join(lines)


def main() -> None:
    """Count every layer's instructions and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--layers", nargs="+", choices=list(LAYERS))
    parser.add_argument(
        "--quick", action="store_true", help="bare and two layers, one run each"
    )
    parser.add_argument("--what", choices=("tasks", "calls"), default="tasks")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--views", choices=("on", "off"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.runs, args.views)
        return
    if shutil.which("valgrind") is None:
        sys.exit("benchmarks.instructions needs valgrind (apt-get install valgrind)")
    if args.what == "calls":
        runs = 1 if args.quick else args.runs
        per_call = measure_calls(runs)
        bare = measure(["bare"], runs)["bare"]
        print(calls_table(per_call, bare, _bare_cpu_per_task()))
        return
    names = list(args.layers or LAYERS)
    if args.quick:
        names, args.runs = ["bare", "lg_otel no-op", "+ both"], 1
    if "bare" not in names:
        names = ["bare", *names]
    per_task = measure(names, args.runs)
    print(table(per_task, _bare_cpu_per_task()))


if __name__ == "__main__":
    main()
