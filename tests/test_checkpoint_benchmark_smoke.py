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
