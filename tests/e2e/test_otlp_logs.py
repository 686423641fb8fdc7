"""End to end: lg_otel's log events over OTLP through a real collector hop (rotel).

The example service runs with ``LG_OTEL_OTLP_LOGS=true`` and its OTLP endpoint on a
rotel agent that prints every log record and span it receives (detailed debug log)
and exports them nowhere. The records are read back from that log: each carries
the trace and span ids of the span it is about in its own trace context, its
severity, and the event's fields as attributes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lg_otel import _names as n
from tests.e2e.stack import App, DebugRotel, wait_for

pytestmark = pytest.mark.e2e

SERVICE = "lg-otel-logs-e2e"


def _logs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in items if i["kind"] == "log" and i["scope"].startswith("lg_otel")]


@pytest.fixture(scope="module")
def received(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """One OK and one failing request; what rotel received (records and spans)."""
    workdir: Path = tmp_path_factory.mktemp("otlp-logs-e2e")
    rotel = DebugRotel(workdir)
    rotel.start()
    try:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": rotel.endpoint,
            "OTEL_SERVICE_NAME": SERVICE,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BLRP_SCHEDULE_DELAY": "100",
            n.ENV_OTLP_LOGS: "true",
            "LOG_LEVEL": "info",
            "SIM_FIRST_CHUNK_DELAY": "0.01",
            "SIM_CHUNK_DELAY": "0.001",
        }
        with App(workdir, env) as app:
            app.chat(thread="ok")
            app.chat(fail=True, thread="failed")

            def both_runs_logged() -> bool:
                ends = [
                    r for r in _logs(rotel.items()) if r["EventName"] == n.LOG_RUN_END
                ]
                return len(ends) == 2

            wait_for(both_runs_logged, 30, "two run.end records in rotel")
        return rotel.items()
    finally:
        rotel.stop()


def _record(
    items: list[dict[str, Any]], event: str, thread: str, **attributes: Any
) -> dict[str, Any]:
    """The one record of ``event`` in the run of ``thread`` matching ``attributes``."""
    runs = {
        r["Trace ID"]
        for r in _logs(items)
        if r["EventName"] == n.LOG_RUN_END and r["attributes"]["thread_id"] == thread
    }
    found = [
        r
        for r in _logs(items)
        if r["EventName"] == event
        and r["Trace ID"] in runs
        and all(r["attributes"].get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (event, thread, attributes, found)
    return found[0]


def test_records_carry_their_spans_trace_context(
    received: list[dict[str, Any]],
) -> None:
    """Every record's Trace ID / Span ID is a span rotel received, the right one."""
    spans = {
        (s["Trace ID"], s["ID"]): s["Name"] for s in received if s["kind"] == "span"
    }
    records = _logs(received)
    assert records
    for record in records:
        name = spans[(record["Trace ID"], record["Span ID"])]
        event, attributes = record["EventName"], record["attributes"]
        if event.startswith("run."):
            assert name == "invoke_workflow sse_chat"
        elif event.startswith("task."):
            assert name == f"invoke_node {attributes['node']}"
        elif event.startswith("llm."):
            assert name == "chat sim-chat-1"


def test_severity_and_fields_of_an_ok_run(received: list[dict[str, Any]]) -> None:
    """The OK run ends with an INFO run.end whose fields are the structlog fields."""
    record = _record(received, n.LOG_RUN_END, "ok")
    assert record["SeverityText"] == "INFO"
    assert record["SeverityNumber"] == "SEVERITY_NUMBER_INFO(9)"
    assert record["Body"] == f"Str({n.LOG_RUN_END})"
    attributes = record["attributes"]
    assert attributes["graph"] == "sse_chat"
    assert attributes["status"] == n.STATUS_OK
    assert attributes["duration_s"] > 0
    assert attributes["ttft_s"] > 0
    assert "trace_id" not in attributes
    assert record["resource"]["service.name"] == SERVICE


def test_model_call_record(received: list[dict[str, Any]]) -> None:
    """llm.end is INFO with the model, provider and token counts."""
    record = _record(received, n.LOG_LLM_END, "ok")
    assert record["SeverityText"] == "INFO"
    attributes = record["attributes"]
    assert attributes["model"] == "sim-chat-1"
    assert attributes["provider"] == "simulated"
    assert attributes["node"] == "chatbot"
    assert attributes["output_tokens"] > 0


def test_failure_is_error_with_the_exception(received: list[dict[str, Any]]) -> None:
    """The failing task's record is ERROR and carries the exception's type."""
    record = _record(received, n.LOG_TASK_END, "failed", node="guard")
    assert record["SeverityText"] == "ERROR"
    assert record["SeverityNumber"] == "SEVERITY_NUMBER_ERROR(17)"
    attributes = record["attributes"]
    assert attributes[n.ATTR_EXCEPTION_TYPE] == "UpstreamError"
    assert attributes[n.ATTR_EXCEPTION_MESSAGE] == "upstream model refused the request"
    assert attributes[n.FIELD_ERROR_TYPE] == "UpstreamError"
    run_end = _record(received, n.LOG_RUN_END, "failed")
    assert run_end["SeverityText"] == "ERROR"
    assert run_end["attributes"][n.FIELD_FAILED_NODE] == "guard"


def test_debug_events_stay_below_the_configured_level(
    received: list[dict[str, Any]],
) -> None:
    """LOG_LEVEL=info (configure's log_level): no debug record went out."""
    events = {r["EventName"] for r in _logs(received)}
    assert n.LOG_TASK_START not in events
    assert n.LOG_RUN_START not in events
    assert {r["SeverityText"] for r in _logs(received)} <= {"INFO", "ERROR"}
