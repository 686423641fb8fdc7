"""Profile the hot path: the wide graph (210 tasks), spans + metrics, ainvoke.

    python benchmarks/profile_wide.py > benchmarks/profile-wide.txt

Needs ``pyinstrument`` (not a dependency: ``pip install pyinstrument``). It samples
one thread, so the graph runs under ``ainvoke``: every task, and so every hook call
and span, then runs on the profiled thread (``invoke`` runs most tasks in worker
threads, which the profile would not see).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyinstrument import Profiler  # type: ignore[import-not-found,unused-ignore]

from benchmarks.variants import lg_otel_variants
from benchmarks.workloads import wide


def main() -> None:
    """Profile 20 ainvokes (after 3 warm-up runs) and print the call tree."""
    variant = next(v for v in lg_otel_variants() if v.name == "spans+metrics")
    graph = variant.wrap(wide())

    async def runs(count: int) -> None:
        for _ in range(count):
            await graph.ainvoke({"n": 0, "payload": ""})

    loop = asyncio.new_event_loop()
    loop.run_until_complete(runs(3))
    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    loop.run_until_complete(runs(20))
    profiler.stop()
    loop.close()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
