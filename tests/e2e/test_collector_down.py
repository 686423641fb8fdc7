"""End to end: the collector goes down mid-load and comes back.

The service keeps answering with unchanged latency while spans cannot be delivered,
nothing raises, and once the collector is back spans flow into Phoenix again.
"""

from __future__ import annotations

import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.stack import App, Phoenix, Rotel, wait_for

pytestmark = pytest.mark.e2e


def _load(app: App, prefix: str, requests: int = 24) -> list[float]:
    """``requests`` streamed requests, 4 at a time; sorted client-side latencies."""

    def one(i: int) -> float:
        started = time.perf_counter()
        events = app.chat(thread=f"{prefix}-{i}")
        assert events, "no events"
        assert not [e for e in events if "error" in e], events
        return time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=4) as pool:
        return sorted(pool.map(one, range(requests)))


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]


def test_collector_down_and_back(tmp_path: Path) -> None:
    """Down: same answers, same latency; back: spans flow again."""
    project = f"lg-otel-down-{uuid.uuid4().hex[:8]}"
    with Phoenix(tmp_path) as phoenix:
        rotel = Rotel(tmp_path, phoenix.grpc_port)
        rotel.start()
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": rotel.endpoint,
            "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2",
            "SIM_FIRST_CHUNK_DELAY": "0.05",
            "SIM_CHUNK_DELAY": "0.002",
        }
        try:
            with App(tmp_path, env) as app:
                _load(app, "warmup", 8)
                up = _load(app, "up")
                rotel.stop()
                down = _load(app, "down")
                rotel.start()

                def flowing_again() -> bool:
                    _load(app, f"back-{uuid.uuid4().hex[:4]}", 2)
                    return any(
                        str(
                            s["attributes"].get("gen_ai.conversation.id", "")
                        ).startswith("back-")
                        for s in phoenix.spans(project)
                    )

                wait_for(flowing_again, 60, "spans after the collector came back")
                assert (
                    "Traceback"
                    not in app.process.log.read_text().split("Failed to export")[0]
                )
        finally:
            rotel.stop()
    up_p50, down_p50 = statistics.median(up), statistics.median(down)
    print(f"p50 up {up_p50:.3f}s down {down_p50:.3f}s")
    print(f"p99 up {_p99(up):.3f}s down {_p99(down):.3f}s")
    assert down_p50 <= up_p50 * 1.5 + 0.02
    assert _p99(down) <= _p99(up) * 2 + 0.05
