"""Structured log events: one per lifecycle point, with ids matching the spans."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
import structlog
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError
from langgraph.graph import START, MessagesState, StateGraph
from structlog.testing import LogCapture, capture_logs
from structlog.typing import EventDict

import lg_otel
from lg_otel import _names as n
from lg_otel.testing import SimulatedChatModel
from tests.conftest import by_name, duration_s
from tests.graphs import SHAPES, Boom, S, agent, chat, failing, human


def _hex(span: Any) -> tuple[str, str]:
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def _instrument(graph: Any, provider: Any) -> Any:
    return lg_otel.instrument(
        graph, tracer_provider=provider, config=lg_otel.Config(logs=True)
    )


def test_every_lifecycle_event_once_with_matching_ids(tracing: Any) -> None:
    """run/task/llm/tool events appear once each, carrying their span's ids."""
    provider, exporter = tracing
    graph = _instrument(agent(), provider)
    with capture_logs() as logs:
        for _ in graph.stream(
            {"messages": [HumanMessage("go")]}, stream_mode=["messages", "updates"]
        ):
            pass
    events = Counter(e["event"] for e in logs)
    assert events == {
        n.LOG_RUN_START: 1,
        n.LOG_RUN_END: 1,
        n.LOG_TASK_START: 3,
        n.LOG_TASK_END: 3,
        n.LOG_LLM_FIRST_TOKEN: 2,
        n.LOG_LLM_END: 2,
        n.LOG_TOOL_END: 2,
    }
    spans = {_hex(s)[1]: s for s in exporter.get_finished_spans()}
    for event in logs:
        span = spans[event["span_id"]]
        assert event["trace_id"] == f"{span.context.trace_id:032x}"
        if event["event"].startswith("task."):
            assert span.name == f"invoke_node {event['node']}"
    (end,) = [e for e in logs if e["event"] == n.LOG_LLM_END][-1:]
    assert end["log_level"] == "info"
    assert end["tokens_per_s"] > 0
    assert "ttft_s" in end


def test_levels_keep_production_logs_quiet(tracing: Any) -> None:
    """Per-task events are debug; a run end is info."""
    provider, _ = tracing
    graph = _instrument(SHAPES[0].build(), provider)
    with capture_logs() as logs:
        graph.invoke({"log": []})
    levels = {e["event"]: e["log_level"] for e in logs}
    assert levels[n.LOG_TASK_START] == "debug"
    assert levels[n.LOG_TASK_END] == "debug"
    assert levels[n.LOG_RUN_END] == "info"


def _with_exception(logs: Sequence[EventDict]) -> list[EventDict]:
    return [e for e in logs if n.FIELD_EXC_INFO in e]


def test_failing_node_traceback_logged_once_on_its_task(tracing: Any) -> None:
    """A failing node: its task.end carries the exception, run.end does not."""
    provider, _ = tracing
    graph = _instrument(failing(), provider)
    with capture_logs() as logs, pytest.raises(Boom) as raised:
        graph.invoke({"log": []})
    (logged,) = _with_exception(logs)
    assert logged["event"] == n.LOG_TASK_END
    assert logged["node"] == "boom"
    assert logged[n.FIELD_EXC_INFO] is raised.value
    errors = [e["event"] for e in logs if e["log_level"] == "error"]
    assert errors == [n.LOG_TASK_END, n.LOG_RUN_END]


def test_failed_run_end_names_the_task(tracing: Any) -> None:
    """run.end of a failed run: status, error.type and the task that raised."""
    provider, _ = tracing
    graph = _instrument(failing(), provider)
    with capture_logs() as logs, pytest.raises(Boom):
        graph.invoke({"log": []})
    (task,) = [e for e in logs if e["event"] == n.LOG_TASK_END and e["node"] == "boom"]
    (end,) = [e for e in logs if e["event"] == n.LOG_RUN_END]
    assert end["log_level"] == "error"
    assert end["status"] == n.STATUS_ERROR
    assert end[n.FIELD_ERROR_TYPE] == "Boom"
    assert end[n.FIELD_FAILED_NODE] == "boom"
    assert end[n.FIELD_FAILED_TASK_ID] == task["task_id"]
    assert task[n.FIELD_ERROR_TYPE] == "Boom"


def _failing_subgraph() -> Any:
    def leaf(state: S) -> dict[str, Any]:
        raise Boom("leaf failed")

    inner = StateGraph(S)
    inner.add_node("leaf", leaf)
    inner.add_edge(START, "leaf")
    outer = StateGraph(S)
    outer.add_node("mid", inner.compile(name="inner_graph"))
    outer.add_edge(START, "mid")
    return outer.compile(name="nested_failing")


def test_subgraph_failure_traceback_on_the_raising_task(tracing: Any) -> None:
    """A node failing in a subgraph: the traceback is on its task, not its parent's."""
    provider, _ = tracing
    graph = _instrument(_failing_subgraph(), provider)
    with capture_logs() as logs, pytest.raises(Boom):
        graph.invoke({"log": []})
    (logged,) = _with_exception(logs)
    assert (logged["event"], logged["node"]) == (n.LOG_TASK_END, "leaf")
    ends = {e["node"]: e for e in logs if e["event"] == n.LOG_TASK_END}
    assert ends["mid"]["status"] == n.STATUS_ERROR
    assert ends["mid"][n.FIELD_ERROR_TYPE] == "Boom"
    (end,) = [e for e in logs if e["event"] == n.LOG_RUN_END]
    assert end[n.FIELD_FAILED_NODE] == "leaf"


class _DownModel(SimulatedChatModel):
    """A chat model whose every call fails (the provider is down)."""

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise Boom("model down")

    def _stream(self, *args: Any, **kwargs: Any) -> Any:
        raise Boom("model down")


def _model_failing() -> Any:
    model = _DownModel(messages=iter(["never"]))

    def call(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("call", call)
    g.add_edge(START, "call")
    return g.compile(name="model_failing")


def test_failed_model_call_traceback_logged_once(tracing: Any) -> None:
    """A model call that raises: llm.end has the traceback; task and run end do not."""
    provider, _ = tracing
    graph = _instrument(_model_failing(), provider)
    with capture_logs() as logs, pytest.raises(Boom):
        graph.invoke({"messages": [HumanMessage("hi")]})
    (logged,) = _with_exception(logs)
    assert logged["event"] == n.LOG_LLM_END
    errors = {e["event"]: e for e in logs if e["log_level"] == "error"}
    assert set(errors) == {n.LOG_LLM_END, n.LOG_TASK_END, n.LOG_RUN_END}
    assert errors[n.LOG_RUN_END][n.FIELD_FAILED_NODE] == "call"
    assert all(e[n.FIELD_ERROR_TYPE] == "Boom" for e in errors.values())


def test_run_failing_outside_tasks_logs_traceback_on_run_end(tracing: Any) -> None:
    """A run failing outside any task (recursion limit): run.end has the exception."""
    provider, _ = tracing
    graph = _instrument(SHAPES[0].build(), provider)
    with capture_logs() as logs, pytest.raises(GraphRecursionError) as raised:
        graph.invoke({"log": []}, {"recursion_limit": 2})
    (logged,) = _with_exception(logs)
    assert logged["event"] == n.LOG_RUN_END
    assert logged[n.FIELD_EXC_INFO] is raised.value
    assert logged[n.FIELD_ERROR_TYPE] == "GraphRecursionError"
    assert n.FIELD_FAILED_NODE not in logged


def test_interrupt_is_one_info_line(tracing: Any) -> None:
    """An interrupted run logs one info line, run.interrupt, and no run.end."""
    provider, _ = tracing
    graph = _instrument(human(), provider)
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
    with capture_logs() as logs:
        graph.invoke({"log": []}, config)
    info = [e for e in logs if e["log_level"] != "debug"]
    assert [e["event"] for e in info] == [n.LOG_RUN_INTERRUPT]
    assert info[0]["status"] == n.STATUS_INTERRUPTED
    assert n.LOG_RUN_END not in {e["event"] for e in logs}


def test_unconfigured_structlog_gets_nothing(
    tracing: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """structlog not configured when the run starts: lg_otel writes nothing."""
    provider, _ = tracing
    graph = lg_otel.instrument(chat(), tracer_provider=provider)
    graph.invoke({"messages": [HumanMessage("hi")]})
    assert not structlog.is_configured()
    assert capfd.readouterr().out == ""


def test_structlog_configured_after_instrument_logs(tracing: Any) -> None:
    """instrument() at import time, structlog.configure() later: the run logs."""
    provider, _ = tracing
    graph = lg_otel.instrument(chat(), tracer_provider=provider)
    capture = LogCapture()
    structlog.configure(processors=[capture])
    graph.invoke({"messages": [HumanMessage("hi")]})
    events = {e["event"] for e in capture.entries}
    assert {n.LOG_RUN_START, n.LOG_TASK_END, n.LOG_RUN_END} <= events


def test_capture_logs_after_instrument_sees_streamed_agent(tracing: Any) -> None:
    """capture_logs() around a run of a graph instrumented earlier gets every event."""
    provider, _ = tracing
    graph = lg_otel.instrument(agent(), tracer_provider=provider)
    with capture_logs() as logs:
        for _ in graph.stream(
            {"messages": [HumanMessage("go")]}, stream_mode=["messages", "updates"]
        ):
            pass
    assert {e["event"] for e in logs} >= {
        n.LOG_RUN_START,
        n.LOG_TASK_START,
        n.LOG_TASK_END,
        n.LOG_LLM_FIRST_TOKEN,
        n.LOG_LLM_END,
        n.LOG_TOOL_END,
        n.LOG_RUN_END,
    }


def test_reconfiguration_is_picked_up_by_the_next_run(
    tracing: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """structlog configured for one run, reset before the next: only the first logs."""
    provider, _ = tracing
    graph = lg_otel.instrument(SHAPES[0].build(), tracer_provider=provider)
    capture = LogCapture()
    structlog.configure(processors=[capture])
    graph.invoke({"log": []})
    first = len(capture.entries)
    structlog.reset_defaults()
    graph.invoke({"log": []})
    assert first > 0
    assert len(capture.entries) == first
    assert capfd.readouterr().out == ""


def _runs_logged(logs: Sequence[EventDict]) -> set[str]:
    return {e["graph"] for e in logs if e["event"] == n.LOG_RUN_START}


def test_config_logs_false_wins_over_configured_structlog(tracing: Any) -> None:
    """Config(logs=False) stays silent under capture_logs(); a default graph logs."""
    provider, _ = tracing
    off = lg_otel.instrument(
        SHAPES[0].build(),
        tracer_provider=provider,
        config=lg_otel.Config(logs=False, graph_name="off"),
    )
    auto = lg_otel.instrument(
        SHAPES[0].build(),
        tracer_provider=provider,
        config=lg_otel.Config(graph_name="auto"),
    )
    with capture_logs() as logs:
        off.invoke({"log": []})
        auto.invoke({"log": []})
    assert _runs_logged(logs) == {"auto"}


def test_env_logs_false_wins_over_configured_structlog(
    tracing: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LG_OTEL_LOGS=false at instrument() stays silent; a default graph logs."""
    provider, _ = tracing
    monkeypatch.setenv(n.ENV_LOGS, "false")
    off = lg_otel.instrument(
        SHAPES[0].build(),
        tracer_provider=provider,
        config=lg_otel.Config(graph_name="off"),
    )
    monkeypatch.delenv(n.ENV_LOGS)
    auto = lg_otel.instrument(
        SHAPES[0].build(),
        tracer_provider=provider,
        config=lg_otel.Config(graph_name="auto"),
    )
    with capture_logs() as logs:
        off.invoke({"log": []})
        auto.invoke({"log": []})
    assert _runs_logged(logs) == {"auto"}


def test_env_logs_true_logs_without_structlog_configured(
    tracing: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """LG_OTEL_LOGS=true logs through structlog's defaults even when unconfigured."""
    provider, _ = tracing
    monkeypatch.setenv(n.ENV_LOGS, "true")
    graph = lg_otel.instrument(SHAPES[0].build(), tracer_provider=provider)
    graph.invoke({"log": []})
    assert not structlog.is_configured()
    assert n.LOG_RUN_END in capfd.readouterr().out


def test_add_trace_ids_processor(tracing: Any) -> None:
    """The public processor adds the current span's ids, also for unsampled spans."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    provider, _ = tracing
    for p in (provider, TracerProvider(sampler=ALWAYS_OFF)):
        with p.get_tracer("t").start_as_current_span("x") as span:
            event = lg_otel.add_trace_ids(None, "info", {"event": "hello"})
        trace_id, span_id = _hex(span)
        assert event == {"event": "hello", "trace_id": trace_id, "span_id": span_id}
    assert lg_otel.add_trace_ids(None, "info", {"event": "e"}) == {"event": "e"}


def test_run_events_carry_graph_and_status(tracing: Any) -> None:
    """run.end names the graph, status and duration."""
    provider, exporter = tracing
    graph = _instrument(SHAPES[0].build(), provider)
    with capture_logs() as logs:
        graph.invoke({"log": []})
    (end,) = [e for e in logs if e["event"] == n.LOG_RUN_END]
    (run,) = by_name(exporter.get_finished_spans(), "invoke_workflow linear")
    assert end["graph"] == "linear"
    assert end["status"] == n.STATUS_OK
    assert end["duration_s"] == pytest.approx(duration_s(run), abs=1e-3)
