"""Compare two commits' cost on this noisy machine: alternating processes, in pairs.

    python -m benchmarks.ab BEFORE AFTER [--pairs 6] [--what calls|tasks|graph|chunks]
    python -m benchmarks.ab HEAD~1 HEAD --quick      # seconds: smoke run, no claims

The same measurement moves by 30-50 % between runs here (shared vCPUs), more than
most changes are worth, so two commits measured minutes apart say nothing. This
checks each commit out into a temporary worktree and runs the measurement in a fresh
process per side, BEFORE then AFTER, ``--pairs`` times: each pair is measured under
the same conditions, and the per-pair differences are what it reports (their median,
and in how many pairs AFTER was lower).

``--what calls``: one checkpointer call through a run's view, spans and both metric
paths (``checkpoints._isolated_layer("both")``, best of the repetitions), µs beyond
the bare saver call, for ``get_tuple`` and ``put_writes``. ``--what tasks``: lg_otel's
code per task on the wide graph, replayed with spans and both metric paths
(``replay``), µs. ``--what graph``: CPU per task in the graph, the wide graph under
``invoke()`` with spans and both metric paths, beyond the bare graph measured in the
same process (``decompose``'s two layers, interleaved; medians), µs; the bare
task's own figure is printed beside it, to show how the machine moved. ``--what
chunks``: the same per streamed chunk (``decompose --chunks``: a caller streaming
``["messages", "updates"]``, the slope between a 200-chunk and a 20-chunk chat).
Both sides run with this interpreter (the project's virtualenv); each side imports
its own worktree's ``lg_otel`` and ``benchmarks``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What one side's process runs (cwd: that side's worktree); prints one JSON object.
_PROBES = {
    "calls": """
import json, sys
sys.path.insert(0, ".")
from benchmarks.checkpoints import _isolated_layer
got = _isolated_layer("both", {reps}, {loops})
print(json.dumps({{name: min(values) for name, values in got.items()}}))
""",
    "tasks": """
import json, sys, timeit
sys.path.insert(0, ".")
import lg_otel
from benchmarks.replay import TASKS, replayer
from benchmarks.variants import layer_kwargs
from benchmarks.workloads import wide
replay = replayer(
    lg_otel.instrument(wide(), **layer_kwargs("both")),
    lambda graph: graph.invoke({{"n": 0, "payload": ""}}),
    {{"stream_mode": ["updates", "values"]}},
    streaming=False,
)
replay()
best = min(timeit.repeat(replay, number={number}, repeat={reps})) / {number}
print(json.dumps({{"per task": best * 1e6 / TASKS}}))
""",
    "graph": """
import json, statistics, sys
sys.path.insert(0, ".")
from benchmarks.decompose import TASKS, _cpu_of, _measure, layer
names = ("bare", "+ both")
got = _measure([(name, _cpu_of(layer(name))) for name in names], {reps}, {calls})
bare, both = (statistics.median(got[name]) * 1e6 / TASKS for name in names)
print(json.dumps({{"+ both": both - bare, "bare": bare}}))
""",
    "chunks": """
import json, statistics, sys
sys.path.insert(0, ".")
from benchmarks.decompose import _chunk_layers, _measure
from benchmarks.workloads import SLOPE_CHUNKS
layers = dict(_chunk_layers())
names = ("bare", "+ both")
got = _measure([(name, layers[name]) for name in names], {reps}, {calls})
bare, both = (statistics.median(got[name]) * 1e6 / SLOPE_CHUNKS for name in names)
print(json.dumps({{"+ both": both - bare, "bare": bare}}))
""",
}


def _side(worktree: Path, what: str, quick: bool) -> dict[str, float]:
    """One fresh process measuring ``what`` on the code in ``worktree``."""
    sizes = (
        {"reps": 2, "loops": 200, "number": 1, "calls": 1}
        if quick
        else {"reps": 7, "loops": 20_000, "number": 5, "calls": 5}
    )
    done = subprocess.run(
        [sys.executable, "-c", _PROBES[what].format(**sizes)],
        cwd=worktree,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"ab: the probe failed in {worktree}:\n{done.stderr[-3000:]}")
    got: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return got


def _worktree(rev: str, path: Path) -> Path:
    """``rev`` checked out (detached) at ``path``."""
    done = subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(path), rev],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"ab: cannot check out {rev!r}: {done.stderr.strip()}")
    return path


def compare(
    before: str, after: str, pairs: int, what: str, quick: bool = False
) -> list[tuple[dict[str, float], dict[str, float]]]:
    """(before, after) measurements of each pair, sides alternating."""
    with tempfile.TemporaryDirectory(prefix="lg_otel-ab-") as tmp:
        trees: list[Path] = []
        try:
            for side, rev in (("before", before), ("after", after)):
                trees.append(_worktree(rev, Path(tmp) / side))
            return [
                (_side(trees[0], what, quick), _side(trees[1], what, quick))
                for _ in range(pairs)
            ]
        finally:
            for tree in trees:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)],
                    cwd=ROOT,
                    check=False,
                    capture_output=True,
                )


def report(
    before: str,
    after: str,
    rows: list[tuple[dict[str, float], dict[str, float]]],
    digits: int = 1,
) -> str:
    """A Markdown table of every pair, and the median change per measure
    (``digits`` after the point)."""
    names = list(rows[0][0])
    head = " | ".join(f"{name} {before} → {after}" for name in names)
    lines = [f"| pair | {head} |", "|---" * (len(names) + 1) + "|"]
    for i, (a, b) in enumerate(rows, 1):
        cells = " | ".join(
            f"{a[name]:.{digits}f} → {b[name]:.{digits}f}" for name in names
        )
        lines.append(f"| {i} | {cells} |")
    lines.append("")
    for name in names:
        changes = [b[name] - a[name] for a, b in rows]
        lower = sum(change < 0 for change in changes)
        lines.append(
            f"{name}: median change {statistics.median(changes):+.{digits}f} µs, "
            f"lower in {lower} of {len(rows)} pairs"
        )
    return "\n".join(lines)


def main() -> None:
    """Measure both commits in alternating processes and print the pairs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the commit to compare against (e.g. HEAD~1)")
    parser.add_argument("after", help="the commit to measure (e.g. HEAD)")
    parser.add_argument("--pairs", type=int, default=6, help="alternating pairs")
    parser.add_argument("--what", choices=sorted(_PROBES), default="calls")
    parser.add_argument("--quick", action="store_true", help="smoke run, no claims")
    args = parser.parse_args()
    pairs = 1 if args.quick else args.pairs
    rows = compare(args.before, args.after, pairs, args.what, args.quick)
    unit = {
        "calls": "per saver call",
        "tasks": "per task, replayed",
        "graph": "per task in the graph",
        "chunks": "per streamed chunk in the graph",
    }[args.what]
    print(f"µs CPU {unit}, spans + both metric paths; {pairs} alternating pairs")
    print()
    print(report(args.before, args.after, rows, 2 if args.what == "chunks" else 1))


if __name__ == "__main__":
    main()
