"""Interleaved measurement: process CPU time and wall time per call, per variant."""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: How the caller drives the graph.
ENTRY_POINTS = ("invoke", "stream-updates", "stream-messages", "ainvoke", "astream")


def call(graph: Any, entry: str, make_input: Callable[[], Any]) -> None:
    """One run of ``graph`` through ``entry``."""
    inp = make_input()
    if entry == "invoke":
        graph.invoke(inp)
    elif entry == "stream-updates":
        for _ in graph.stream(inp, stream_mode="updates"):
            pass
    elif entry == "stream-messages":
        for _ in graph.stream(inp, stream_mode=["messages", "updates"]):
            pass
    elif entry == "ainvoke":
        asyncio.run(graph.ainvoke(inp))
    elif entry == "astream":

        async def go() -> None:
            async for _ in graph.astream(inp, stream_mode="updates"):
                pass

        asyncio.run(go())
    else:  # pragma: no cover - the CLI only passes known names
        raise ValueError(entry)


@dataclass
class Samples:
    """CPU and wall seconds per call, one entry per repetition."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    spans: list[int] = field(default_factory=list)


def timed(fn: Callable[[], None], calls: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per call of ``fn``, over ``calls`` calls.

    The garbage collector is paused inside the block and run before it, as
    ``timeit`` does: whether a full collection lands in this variant's block or the
    next one's was most of the run-to-run noise here. Memory is measured apart.
    """
    gc.collect()
    gc.disable()
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        return (
            (time.process_time() - cpu0) / calls,
            (time.perf_counter() - wall0) / calls,
        )
    finally:
        gc.enable()


def ratios(samples: Samples, bare: Samples, kind: str) -> list[float]:
    """Per-repetition ratios of a variant to the bare graph measured beside it."""
    mine, base = getattr(samples, kind), getattr(bare, kind)
    return [m / b for m, b in zip(mine, base, strict=True) if b > 0]


def overhead_us(samples: Samples, bare: Samples, per: int) -> list[float]:
    """Per-repetition extra CPU microseconds, divided by ``per`` (tasks, chunks)."""
    return [
        (m - b) * 1e6 / max(per, 1) for m, b in zip(samples.cpu, bare.cpu, strict=True)
    ]


def summary(values: list[float], fmt: str = "{:.2f}") -> str:
    """``median [min-max]``."""
    if not values:
        return "-"
    return (
        f"{fmt.format(statistics.median(values))} "
        f"[{fmt.format(min(values))}-{fmt.format(max(values))}]"
    )


def central_95(found: list[float]) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of sorted bootstrap resamples."""
    return found[int(0.025 * len(found))], found[int(0.975 * len(found)) - 1]


def median_interval(values: list[float], resamples: int = 2000) -> tuple[float, float]:
    """95 % bootstrap interval of the median of ``values`` (seeded: reproducible).

    A target is judged on the median of per-repetition figures; this is how far
    that median could move on another set of repetitions like these, which the
    spread of the repetitions themselves (their range or IQR) overstates.
    """
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = random.Random(0)
    found = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples)
    )
    return central_95(found)


def ratio_interval(
    ours: list[float], theirs: list[float], resamples: int = 2000
) -> tuple[float, float]:
    """95 % bootstrap interval of ``median(ours) / median(theirs)``.

    The two lists are paired (entry ``i`` of both comes from one repetition, each
    against the same bare process), so repetitions are resampled as pairs.
    """
    if len(ours) != len(theirs) or len(ours) < 2:
        return float("nan"), float("nan")
    rng = random.Random(0)
    indices = range(len(ours))
    found: list[float] = []
    for _ in range(resamples):
        picked = rng.choices(indices, k=len(ours))
        below = statistics.median(theirs[i] for i in picked)
        if below > 0:
            found.append(statistics.median(ours[i] for i in picked) / below)
        else:  # the competitor cost nothing here: the ratio is unbounded
            found.append(float("inf"))
    found.sort()
    return central_95(found)


def judge(low: float, high: float, limit: float) -> str:
    """Met or not met when a whole 95 % interval says so; else not resolved."""
    if high <= limit:
        return "**met**"
    if low > limit:
        return "**not met**"
    return "**not resolved** (the 95 % interval straddles the limit)"
