"""The benchmark harness runs (a few seconds) so it cannot rot; no timing asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
