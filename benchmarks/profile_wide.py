"""Profile the hot path: the wide graph (210 tasks), spans + metrics, invoke.

    python benchmarks/profile_wide.py > benchmarks/profile-wide.txt

Needs ``pyinstrument`` (not a dependency: ``pip install pyinstrument``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyinstrument import Profiler  # type: ignore[import-not-found,unused-ignore]

from benchmarks.variants import lg_otel_variants
from benchmarks.workloads import wide


def main() -> None:
    """Profile 20 invokes (after 3 warm-up runs) and print the call tree."""
    variant = next(v for v in lg_otel_variants() if v.name == "spans+metrics")
    graph = variant.wrap(wide())
    for _ in range(3):
        graph.invoke({"n": 0, "payload": ""})
    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    for _ in range(20):
        graph.invoke({"n": 0, "payload": ""})
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
