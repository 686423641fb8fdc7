"""End to end: the example service → rotel (a collector hop) → Arize Phoenix.

The trace is read back through Phoenix's REST API and must match the graph exactly;
then headless Chromium renders Phoenix's page for it (a screenshot is kept under
``artifacts/``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import ROOT, App, Phoenix, Rotel, missing, wait_for

pytestmark = pytest.mark.e2e

OK_TREE = {
    ("invoke_workflow sse_chat", "POST /chat/stream"),
    ("invoke_node prefix_node", "invoke_workflow sse_chat"),
    ("invoke_node research", "invoke_workflow sse_chat"),
    ("invoke_node plan", "invoke_node research"),
    ("invoke_node tools", "invoke_node research"),
    ("execute_tool lookup", "invoke_node tools"),
    ("invoke_node guard", "invoke_workflow sse_chat"),
    ("invoke_node chatbot", "invoke_workflow sse_chat"),
    ("chat sim-chat-1", "invoke_node chatbot"),
    # The graph's checkpointer: the run's own calls, and the research subgraph's.
    *(
        (f"checkpoint {operation}", parent)
        for operation in ("get_tuple", "put", "put_writes")
        for parent in ("invoke_workflow sse_chat", "invoke_node research")
    ),
}
FAILED_TREE = {
    pair for pair in OK_TREE if "chatbot" not in pair[0] and "chat " not in pair[0]
}


def _ours(spans: list[dict[str, Any]]) -> set[tuple[str, str | None]]:
    by_id = {s["context"]["span_id"]: s for s in spans}
    pairs = set()
    for span in spans:
        if span["name"].startswith("fastapi"):
            continue
        parent = by_id.get(span["parent_id"] or "")
        if span["name"].startswith("POST "):
            continue
        pairs.add((span["name"], parent["name"] if parent else None))
    return pairs


def _traces(phoenix: Phoenix, project: str) -> dict[str, list[dict[str, Any]]]:
    traces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in phoenix.spans(project):
        traces[span["context"]["trace_id"]].append(span)
    return traces


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One OK and one failing request, exported through rotel into Phoenix."""
    workdir = tmp_path_factory.mktemp("phoenix-e2e")
    project = f"lg-otel-e2e-{uuid.uuid4().hex[:8]}"
    with Phoenix(workdir) as phoenix:
        rotel = Rotel(workdir, phoenix.grpc_port)
        rotel.start()
        try:
            env = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": rotel.endpoint,
                "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={project}",
                "OTEL_SERVICE_NAME": "lg-otel-e2e",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "SIM_FIRST_CHUNK_DELAY": "0.05",
                "SIM_CHUNK_DELAY": "0.002",
            }
            with App(workdir, env) as app:
                ok_events = app.chat(thread="ok")
                failed_events = app.chat(fail=True, thread="failed")

                def both_complete() -> bool:
                    traces = _traces(phoenix, project)
                    found = {frozenset(_ours(spans)) for spans in traces.values()}
                    return (
                        frozenset(OK_TREE) in found and frozenset(FAILED_TREE) in found
                    )

                wait_for(both_complete, 30, "both traces in Phoenix")
            yield phoenix, project, _traces(phoenix, project), ok_events, failed_events
        finally:
            rotel.stop()


def _pick(
    traces: dict[str, list[dict[str, Any]]], failed: bool
) -> list[dict[str, Any]]:
    for spans in traces.values():
        if any(s["name"] == "chat sim-chat-1" for s in spans) != failed:
            return spans
    raise AssertionError("trace not found")


def test_ok_trace_matches_the_graph(stored: Any) -> None:
    """The OK request's trace has exactly the graph's spans, parents and attributes."""
    _, _, traces, ok_events, _ = stored
    assert "".join(e["content"] for e in ok_events).startswith("Here is what I found")
    spans = _pick(traces, failed=False)
    assert _ours(spans) == OK_TREE
    by_name = {s["name"]: s for s in spans}
    run = by_name["invoke_workflow sse_chat"]
    assert run["attributes"]["gen_ai.operation.name"] == "invoke_workflow"
    assert run["attributes"]["gen_ai.conversation.id"] == "ok"
    assert run["attributes"]["langgraph.status"] == "ok"
    chat = by_name["chat sim-chat-1"]
    assert chat["attributes"]["gen_ai.provider.name"] == "simulated"
    assert chat["attributes"]["gen_ai.request.model"] == "sim-chat-1"
    assert chat["attributes"]["gen_ai.response.time_to_first_chunk"] >= 0.05
    assert chat["attributes"]["gen_ai.usage.output_tokens"] > 0
    tool = by_name["execute_tool lookup"]
    assert tool["attributes"]["gen_ai.tool.call.id"] == "call-lookup"
    assert by_name["invoke_node plan"]["attributes"]["langgraph.step"] == 1
    assert all(s["status_code"] != "ERROR" for s in spans)


def test_failed_trace_marks_the_failing_node(stored: Any) -> None:
    """The failing request: guard and run are ERROR with error.type and an event."""
    _, _, traces, _, failed_events = stored
    assert failed_events[-1] == {"error": "UpstreamError"}
    spans = _pick(traces, failed=True)
    assert _ours(spans) == FAILED_TREE
    by_name = {s["name"]: s for s in spans}
    for name in ("invoke_node guard", "invoke_workflow sse_chat"):
        span = by_name[name]
        assert span["status_code"] == "ERROR"
        assert span["attributes"]["error.type"] == "UpstreamError"
        assert [e["name"] for e in span["events"]] == ["exception"]
    assert by_name["invoke_node research"]["status_code"] != "ERROR"


def test_phoenix_page_shows_the_trace(stored: Any) -> None:
    """Headless Chromium renders the trace page; the node span names are on it."""
    phoenix, project, traces, _, _ = stored
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        missing("Chromium", "scripts/install-servers.sh")
    trace_id = _pick(traces, failed=False)[0]["context"]["trace_id"]
    url = f"{phoenix.url}/projects/{phoenix.project_id(project)}/traces/{trace_id}"
    artifacts = Path(os.environ.get("LG_OTEL_ARTIFACTS", ROOT / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    profile = artifacts / ".chromium-profile"
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        "--window-size=1400,900",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    shot = artifacts / "phoenix-trace.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120
    )
    shutil.rmtree(profile, ignore_errors=True)
    for name in (
        "invoke_workflow sse_chat",
        "invoke_node research",
        "invoke_node chatbot",
    ):
        assert name in dom, name
    assert shot.exists()
    assert shot.stat().st_size > 10_000
