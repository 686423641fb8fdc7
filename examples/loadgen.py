"""Drive the SSE example with concurrent streaming clients, bounded in count and time.

    python examples/loadgen.py --url http://127.0.0.1:8000 --clients 8 \\
        --requests 200 --seconds 60 [--first-chunk-delay 3.0] [--fail-every 10]

Each client posts to ``/chat/stream`` and reads the whole event stream. With
``--first-chunk-delay``/``--chunk-delay`` it first sets the simulated model's latency
through ``/admin/latency``. Prints p50/p99 of first-token and total latency, measured
on the client side, as JSON. Stops at whichever bound comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import httpx


async def one(
    client: httpx.AsyncClient, url: str, fail: bool
) -> tuple[float, float, bool]:
    """One streamed request: (first-token seconds, total seconds, error event seen)."""
    started = time.perf_counter()
    first = None
    error = False
    body = {"message": "status?", "thread_id": f"load-{time.time_ns()}", "fail": fail}
    async with client.stream("POST", f"{url}/chat/stream", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if "error" in event:
                error = True
            elif first is None:
                first = time.perf_counter() - started
    total = time.perf_counter() - started
    return (first if first is not None else total), total, error


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the load; returns the summary."""
    deadline = time.monotonic() + args.seconds
    firsts: list[float] = []
    totals: list[float] = []
    errors = 0
    sent = 0
    lock = asyncio.Lock()
    async with httpx.AsyncClient(timeout=httpx.Timeout(args.seconds + 30)) as client:
        if args.first_chunk_delay is not None or args.chunk_delay is not None:
            current = (await client.get(f"{args.url}/admin/latency")).json()
            wanted = {
                "first_chunk_delay": args.first_chunk_delay
                if args.first_chunk_delay is not None
                else current["first_chunk_delay"],
                "chunk_delay": args.chunk_delay
                if args.chunk_delay is not None
                else current["chunk_delay"],
            }
            await client.post(f"{args.url}/admin/latency", json=wanted)

        async def worker() -> None:
            nonlocal errors, sent
            while time.monotonic() < deadline:
                async with lock:
                    if sent >= args.requests:
                        return
                    sent += 1
                    fail = bool(args.fail_every) and sent % args.fail_every == 0
                first, total, error = await one(client, args.url, fail)
                firsts.append(first)
                totals.append(total)
                errors += error

        await asyncio.gather(*(worker() for _ in range(args.clients)))
    return {
        "requests": len(totals),
        "error_events": errors,
        "first_token_p50": _pct(firsts, 50),
        "first_token_p99": _pct(firsts, 99),
        "total_p50": _pct(totals, 50),
        "total_p99": _pct(totals, 99),
    }


def main() -> None:
    """Parse arguments, run, print the summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--first-chunk-delay", type=float)
    parser.add_argument("--chunk-delay", type=float)
    parser.add_argument("--fail-every", type=int, default=0)
    args = parser.parse_args()
    if args.clients < 1 or args.requests < 1 or args.seconds <= 0:
        parser.error("--clients, --requests and --seconds must be positive")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
