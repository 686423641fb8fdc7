"""Per-task cost in the graph as instructions executed: deterministic, layer by layer.

    python -m benchmarks.instructions [--runs K] [--layers NAME ...] [--quick]

CPU time on a shared machine moves by 30-50 % between runs, more than most code
changes do. Instructions do not: each layer of ``decompose.py`` runs in its own
process under Valgrind's ``callgrind`` (Debian's ``valgrind`` package), which counts
every instruction the process executes, in every thread. The counts are taken
between two marker calls around ``K`` warm runs of the wide graph (GC paused, as in
``decompose.py``), so imports, set-up and warm-up are not in them.

Columns: instructions per node task, and the share of the bare graph's task they
add. ``≈ µs`` turns that share into time at the bare task's measured CPU cost
(measured natively, in this run); it assumes lg_otel's code runs at the same
instructions per cycle as LangGraph's, which a cache-heavy layer may not. Two runs
give counts within 0.1 % of each other: this is the tool for comparing code, and
``decompose.py`` the one for time.
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
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.decompose import LAYERS, TASKS, layer
from benchmarks.variants import _quiet_structlog
from lg_otel import _metrics

ROOT = Path(__file__).resolve().parent.parent
#: A C function Python calls only when asked: callgrind dumps its counts there.
_MARKER = "os_getppid*"
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def _child(name: str, runs: int) -> None:
    """Run layer ``name`` ``runs`` times between two markers (inside callgrind)."""
    _quiet_structlog()  # as decompose.py: logs rendered, to memory
    # Under callgrind a run takes seconds, so every observation would make an
    # exemplar (at most one per bucket and second); natively the wide graph's
    # label sets get one in every ~15 runs. One per label set is the closer count.
    _metrics.EXEMPLAR_INTERVAL_NS = 3600 * 10**9
    run = layer(name)
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


def _count(name: str, runs: int, out: Path) -> int:
    """Instructions the ``runs`` runs of layer ``name`` executed, all threads."""
    argv = [sys.executable, "-m", "benchmarks.instructions", "--child", name]
    prefix = out / f"cg.{list(LAYERS).index(name)}"
    return count_between_markers([*argv, "--runs", str(runs)], prefix)


def _bare_cpu_per_task(reps: int = 5) -> float:
    """The bare wide graph's CPU per task (µs), measured natively, GC paused."""
    bare = layer("bare")
    bare()
    spent = []
    for _ in range(reps):
        gc.collect()
        gc.disable()
        try:
            started = time.process_time()
            bare()
            spent.append(time.process_time() - started)
        finally:
            gc.enable()
    return statistics.median(spent) * 1e6 / TASKS


def measure(names: list[str], runs: int) -> dict[str, float]:
    """Instructions per task of each layer (two processes at a time)."""
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        counts = pool.map(lambda name: _count(name, runs, Path(tmp)), names)
        return {
            name: count / (runs * TASKS)
            for name, count in zip(names, counts, strict=True)
        }


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
    parser.add_argument("--child", choices=list(LAYERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.runs)
        return
    if shutil.which("valgrind") is None:
        sys.exit("benchmarks.instructions needs valgrind (apt-get install valgrind)")
    names = list(args.layers or LAYERS)
    if args.quick:
        names, args.runs = ["bare", "lg_otel no-op", "+ both"], 1
    if "bare" not in names:
        names = ["bare", *names]
    per_task = measure(names, args.runs)
    print(table(per_task, _bare_cpu_per_task()))


if __name__ == "__main__":
    main()
