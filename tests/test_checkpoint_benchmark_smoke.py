"""The checkpointer-cost benchmark runs (seconds), so it cannot rot; no timing claim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_checkpoint_benchmark_prints_every_layer() -> None:
    """--quick exits 0 and prints a row per layer and the saver calls per run."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.checkpoints", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for layer in ("noop", "spans", "both", "record"):
        assert f"| {layer} |" in done.stdout, layer
    calls = int(done.stdout.split(": ", 1)[1].split(" saver calls", 1)[0])
    assert calls > 210  # a put_writes per task, a put per superstep, the load


def test_layers_narrow_the_run_and_a_bad_one_is_named() -> None:
    """--layers both measures that row alone (the target's verdict still
    printed); an unknown layer fails at once, naming it and the choices."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.checkpoints", "--quick", "--layers", "both"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| both |" in done.stdout
    for layer in ("views", "noop", "spans", "record"):
        assert f"| {layer} |" not in done.stdout, layer
    assert "per checkpointer call ≤ 10 µs (both)" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "benchmarks.checkpoints", "--layers", "bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert bad.returncode == 2
    assert "--layers" in bad.stderr
    assert "bogus" in bad.stderr
    assert "both" in bad.stderr
