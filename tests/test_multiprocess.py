"""prometheus_client multiprocess mode: several worker processes, one /metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

WORKER = textwrap.dedent(
    """
    import sys
    from langchain_core.messages import HumanMessage
    import lg_otel
    from tests.graphs import chat

    graph = lg_otel.instrument(chat())
    inputs = {"messages": [HumanMessage("hi")]}
    for _ in range(int(sys.argv[1])):
        for _ in graph.stream(inputs, stream_mode="messages"):
            pass
    """
)


def test_workers_aggregate_on_one_endpoint(tmp_path: Path) -> None:
    """Three worker processes x 4 runs: the aggregated exposition counts 12 runs."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, "4"], env=env) for _ in range(3)
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    registry = CollectorRegistry()
    # prometheus_client leaves MultiProcessCollector.__init__ unannotated.
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
    value = registry.get_sample_value
    assert (
        value(
            "langgraph_run_duration_seconds_count",
            {"langgraph_graph": "chat", "langgraph_status": "ok"},
        )
        == 12
    )
    assert (
        value(
            "langgraph_task_duration_seconds_count",
            {
                "langgraph_graph": "chat",
                "langgraph_node": "chatbot",
                "langgraph_namespace": "",
                "langgraph_status": "ok",
            },
        )
        == 12
    )
    ttft = value(
        "langgraph_run_time_to_first_token_seconds_count", {"langgraph_graph": "chat"}
    )
    assert ttft == 12
    text = generate_latest(registry).decode()
    # runs_active is a per-process gauge there: one series per worker pid, all 0.
    active = [
        line for line in text.splitlines() if line.startswith("langgraph_runs_active")
    ]
    assert len(active) == 3
    assert all(line.endswith(" 0.0") for line in active)
    assert "trace_id" not in text  # multiprocess mode keeps no exemplars
