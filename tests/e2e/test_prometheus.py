"""End to end: a real Prometheus scrapes the example service's /metrics.

Asserts through Prometheus's HTTP API that the TTFT quantiles land in the bucket range
of the simulated model's known delay, that per-node task latency is there per node,
and that exemplars name trace ids of spans the same service exported.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.stack import App, Prometheus, wait_for

pytestmark = pytest.mark.e2e

RUNS = 6
DELAY = 0.4  # first-chunk delay of the simulated model: bucket (0.32, 0.64]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The example app (traces printed to its log) scraped every second."""
    workdir = tmp_path_factory.mktemp("prometheus-e2e")
    env = {"SIM_FIRST_CHUNK_DELAY": str(DELAY), "SIM_CHUNK_DELAY": "0.002"}
    with (
        App(workdir, env) as app,
        Prometheus(workdir, [f"127.0.0.1:{app.port}"]) as prometheus,
    ):
        started = time.time()
        for i in range(RUNS):
            assert app.chat(thread=f"t{i}")

        def scraped_all() -> bool:
            result = prometheus.query(
                "sum(langgraph_run_time_to_first_token_seconds_count)"
            )
            return bool(result) and float(result[0]["value"][1]) >= RUNS

        wait_for(scraped_all, 30, "Prometheus to scrape every run")
        yield {
            "prometheus": prometheus,
            "app": app,
            "start": started - 5,
            "end": time.time() + 5,
        }


def _value(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_run_ttft_quantile_in_the_delay_bucket(scraped: dict[str, Any]) -> None:
    """Median run time-to-first-token is in the bucket of the model's delay."""
    prometheus: Prometheus = scraped["prometheus"]
    median = _value(
        prometheus.query(
            "histogram_quantile(0.5, sum by (le) "
            "(langgraph_run_time_to_first_token_seconds_bucket))"
        )
    )
    assert 0.32 <= median <= 0.64


def test_llm_ttft_quantile_per_model(scraped: dict[str, Any]) -> None:
    """Median LLM time-to-first-chunk per model is in the delay's bucket."""
    prometheus: Prometheus = scraped["prometheus"]
    result = prometheus.query(
        "histogram_quantile(0.5, sum by (le, gen_ai_request_model) "
        "(gen_ai_client_operation_time_to_first_chunk_seconds_bucket))"
    )
    assert [r["metric"]["gen_ai_request_model"] for r in result] == ["sim-chat-1"]
    assert 0.32 <= _value(result) <= 0.64


def test_task_latency_per_node(scraped: dict[str, Any]) -> None:
    """Every node (subgraph nodes too) has its task latency series, once per run."""
    prometheus: Prometheus = scraped["prometheus"]
    result = prometheus.query(
        "sum by (langgraph_node) (langgraph_task_duration_seconds_count)"
    )
    counts = {r["metric"]["langgraph_node"]: float(r["value"][1]) for r in result}
    nodes = ("prefix_node", "research", "plan", "tools", "guard", "chatbot")
    assert counts == dict.fromkeys(nodes, float(RUNS))


def test_exemplars_name_exported_traces(scraped: dict[str, Any]) -> None:
    """Exemplars of the TTFT histogram carry trace ids the service exported."""
    prometheus: Prometheus = scraped["prometheus"]
    app: App = scraped["app"]
    exported = set(
        re.findall(r"^trace ([0-9a-f]{32})$", app.process.log.read_text(), re.M)
    )
    assert len(exported) >= RUNS
    found = prometheus.exemplars(
        "langgraph_run_time_to_first_token_seconds_bucket",
        scraped["start"],
        scraped["end"],
    )
    trace_ids = {
        exemplar["labels"]["trace_id"]
        for series in found
        for exemplar in series["exemplars"]
    }
    assert trace_ids
    assert trace_ids <= exported
