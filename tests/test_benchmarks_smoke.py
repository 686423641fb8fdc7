"""The benchmark harness runs (a few seconds) so it cannot rot; no timing asserted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_writes_the_table(tmp_path: Path) -> None:
    """--quick exits 0 and reports every measured workload, with span counts."""
    out = tmp_path / "results.md"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    for workload in ("chat-stream", "chat-invoke", "wide", "nested", "big-state"):
        assert f"| {workload} |" in text, workload
    assert "| wide | invoke | spans+metrics |" in text
    assert text.count("| 211 |") >= 3  # 210 task spans + the run span, per variant


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_comparison_sides_measure_what_they_say() -> None:
    """A bare side emits no span; the lg_otel side emits the run's 211."""
    bare = json.loads(_run("benchmarks/run.py", "--side", "bare").splitlines()[-1])
    ours = json.loads(_run("benchmarks/run.py", "--side", "lg_otel").splitlines()[-1])
    assert bare["wide_spans"] == 0
    assert ours["wide_spans"] == 211
    assert bare["wide_cpu"] > 0
    assert ours["wide_cpu"] > 0


def test_decompose_and_floor_print_their_tables() -> None:
    """The per-task and per-chunk layer tables and the library floor all print."""
    tasks = _run("-m", "benchmarks.decompose", "--reps", "1", "--calls", "1")
    assert "| lg_otel spans |" in tasks
    assert "| + logs |" in tasks
    assert "| + both, histograms through record() |" in tasks
    chunks = _run(
        "-m", "benchmarks.decompose", "--chunks", "--reps", "1", "--calls", "1"
    )
    assert "per chunk" in chunks
    assert "| + both |" in chunks
    floor = _run("-m", "benchmarks.floor", "--number", "50")
    assert "| SDK task span" in floor
    assert "sum: spans + both metrics paths" in floor
    assert "| OTel histogram, bound, one reader |" in floor


def test_full_runs_per_chunk_slope_pairs_each_variant_with_bare() -> None:
    """run.py's per-chunk figure: one value per repetition for every traced
    variant, each chat streamed (the traced ones emit spans). In a child process:
    the variants configure structlog globally."""
    probe = (
        "import json, sys; sys.path.insert(0, '.')\n"
        "from benchmarks.run import per_chunk_slope\n"
        "from benchmarks.variants import lg_otel_variants\n"
        "variants = lg_otel_variants()\n"
        "found = per_chunk_slope(2, variants)\n"
        "print(json.dumps({'found': found,"
        " 'spans': [v.exporter.count for v in variants]}))\n"
    )
    got = json.loads(_run("-c", probe).splitlines()[-1])
    assert list(got["found"]) == ["spans", "spans+metrics", "spans+metrics+logs"]
    assert all(len(values) == 2 for values in got["found"].values())
    bare, *traced = got["spans"]
    assert bare == 0
    assert all(count > 0 for count in traced)


def test_exporter_down_target_runs_and_stops_its_sink() -> None:
    """Three graphs run against a live sink process (twice) and a closed port."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.targets import ExporterDown, exporter_down

    down = exporter_down(runs=6)
    assert [len(down.up), len(down.up_again), len(down.down)] == [6, 6, 6]
    assert min(down.up + down.up_again + down.down) > 0.005  # the model's delay
    assert all(cpu >= 0 for cpu in down.export_cpu)  # each side's thread was found
    low, high = down.interval(resamples=50)
    assert 0 < low <= high
    # The verdict: the whole bootstrap interval must fall on one side of the limit.
    steady = [0.008] * 100
    assert ExporterDown(steady, steady, steady).verdict() == "**met**"
    slower = [0.0096] * 100
    assert ExporterDown(steady, steady, slower).verdict() == "**not met**"
    spread = [0.008 + 0.00004 * i for i in range(100)]
    borderline = [v * 1.05 for v in spread]
    assert "not resolved" in ExporterDown(spread, spread, borderline).verdict()


def test_target_verdicts_follow_the_interval_of_the_median() -> None:
    """A median target is met or missed only when its whole interval says so."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.measure import judge, median_interval, ratio_interval

    tight = [38.0 + 0.01 * i for i in range(30)]
    low, high = median_interval(tight)
    assert 38.0 <= low <= high <= 38.3
    assert judge(low, high, 40) == "**met**"
    assert judge(*median_interval([v + 5 for v in tight]), 40) == "**not met**"
    # Wide repetitions around the limit: the interval straddles it.
    wide = [40.0 + (-1) ** i * i for i in range(30)]
    assert "not resolved" in judge(*median_interval(wide), 40)
    # Paired by repetition: a shared shift in one repetition cancels in the ratio.
    theirs = [200.0 + 10 * (i % 5) for i in range(30)]
    ours = [t / 5 for t in theirs]
    low, high = ratio_interval(ours, theirs)
    assert 0.19 <= low <= high <= 0.21
    assert judge(low, high, 0.25) == "**met**"
    assert (
        judge(*ratio_interval([t / 3 for t in theirs], theirs), 0.25) == "**not met**"
    )
    # Too few to say: no interval, no verdict either way.
    assert "not resolved" in judge(*median_interval([1.0]), 40)


def test_target_rows_state_the_interval_and_its_verdict() -> None:
    """The report's per-task and against-OpenLLMetry rows carry the median, its
    interval, the repetitions and the verdict the interval gives."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.targets import _against_openllmetry_row, _per_task_row

    row = _per_task_row("per task ≤ 40 µs", [44.0 + 0.01 * i for i in range(30)], 40)
    assert "44 µs [44, 44], 30 repetitions | **not met** |" in row
    theirs = [200.0 + i for i in range(30)]
    found = {
        "lg_otel": {"per_task_samples": [t / 5 for t in theirs]},
        "openllmetry": {"per_task_samples": theirs},
    }
    row = _against_openllmetry_row(found)
    assert "0.20x [0.20, 0.20], 30 processes per side | **met** |" in row
    assert "**not measured**" in _against_openllmetry_row({"lg_otel": {}})


def test_a_replay_reproduces_the_recorded_run() -> None:
    """Replaying the wide graph's recording gives a fresh run its 211 spans."""
    sys.path.insert(0, str(ROOT))
    import lg_otel
    from benchmarks.replay import replayer
    from benchmarks.variants import CountingExporter, _provider
    from benchmarks.workloads import wide

    exporter = CountingExporter()
    graph = lg_otel.instrument(
        wide(),
        tracer_provider=_provider(exporter),
        config=lg_otel.Config(metrics=False, logs=False),
    )
    replay = replayer(
        graph,
        lambda g: g.invoke({"n": 0, "payload": ""}),
        {"stream_mode": ["updates", "values"]},
    )
    assert exporter.count == 211  # the recorded run itself
    replay()
    replay()
    assert exporter.count == 3 * 211
    table = _run("-m", "benchmarks.replay", "--number", "1", "--repeat", "1")
    assert "| + both metrics paths |" in table


def test_rss_child_reports_the_peak_and_the_end() -> None:
    """The memory target reads the loop's peak RSS (never below the end's)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.targets import rss_child

    found = rss_child(20)
    assert found["runs"] == 20
    assert found["peak_growth_mb"] >= found["growth_mb"]
    assert found["peak_growth_mb"] < 100  # MB: a parse gone wrong reads as KB or nan


@pytest.mark.parametrize("what", ["calls", "tasks", "graph", "chunks"])
def test_ab_compares_two_commits_and_leaves_no_worktree(what: str) -> None:
    """--quick measures HEAD against itself in alternating processes, prints one
    pair and the median change, and removes the worktrees it checked out."""
    before = subprocess.run(
        ["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    done = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.ab", "HEAD", "HEAD"),
            *("--quick", "--what", what),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| 1 | " in done.stdout
    assert "median change" in done.stdout
    after = subprocess.run(
        ["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert after == before


def test_instruction_counts_cover_only_the_code_between_the_markers(
    tmp_path: Path,
) -> None:
    """callgrind counts what runs between the two markers, the same every time:
    ten times the loop is about ten times the count, and set-up is left out."""
    if shutil.which("valgrind") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("valgrind is missing (scripts/install-e2e.sh installs it)")
        pytest.skip("valgrind is not installed (apt-get install valgrind)")
    sys.path.insert(0, str(ROOT))
    from benchmarks.instructions import count_between_markers

    def count(loops: int, setup: int, name: str) -> int:
        script = (
            "import os\n"
            f"sum(range({setup}))\n"
            "os.getppid()\n"
            f"for _ in range({loops}): sum(range(1000))\n"
            "os.getppid()\n"
        )
        return count_between_markers(
            [sys.executable, "-c", script], tmp_path / name, cwd=tmp_path
        )

    one = count(100, 0, "one")
    again = count(100, 10**6, "again")  # more set-up, outside the markers
    ten = count(1000, 0, "ten")
    assert abs(again - one) < one * 0.01
    assert 9 * one < ten < 11 * one


def test_instruction_layers_run_natively_and_tabulate() -> None:
    """A layer's child runs (its markers are harmless outside callgrind), on a
    saver too, and the tables show each layer's instructions beyond bare and their
    share, and per saver call."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import checkpoints
    from benchmarks.checkpoints import _TASKS
    from benchmarks.instructions import _child, calls_table, table

    _child("lg_otel no-op", 1, None)
    text = table({"bare": 1000.0, "lg_otel no-op": 1100.0, "+ both": 1300.0}, 200.0)
    assert "| lg_otel no-op | 100 | 10.0% | 20.0 | +100 |" in text
    assert "| + both | 300 | 30.0% | 60.0 | +200 |" in text
    # --what calls: a layer on a saver, with its views on and off.
    _child("both", 1, "on")
    _child("both", 1, "off")
    assert checkpoints.saver_calls_per_run() > _TASKS  # a put_writes per task at least
    text = calls_table({"noop": 500.0, "both": 2000.0}, 1000.0, 200.0)
    assert "| both | 2,000 | 400.0 |" in text
