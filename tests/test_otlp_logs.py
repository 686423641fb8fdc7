"""OTel log records: lg_otel's log events through the OTel Logs API (and OTLP)."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
import structlog
from langchain_core.messages import HumanMessage
from langgraph.graph import START, StateGraph
from opentelemetry._logs import SeverityNumber
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

import lg_otel
from lg_otel import _config
from lg_otel import _names as n
from tests.conftest import instrumentation
from tests.graphs import Boom, S, agent, failing, linear
from tests.test_configure import NO_EXTRAS, _Collector, run_code


@pytest.fixture
def logs() -> Iterator[tuple[LoggerProvider, InMemoryLogRecordExporter]]:
    """A LoggerProvider exporting records to memory as they are emitted."""
    provider = LoggerProvider()
    # The SDK leaves InMemoryLogRecordExporter.__init__ unannotated.
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _instrument(graph: Any, tracer: Any, logger: Any, **config: Any) -> Any:
    return lg_otel.instrument(
        graph,
        tracer_provider=tracer,
        registry=CollectorRegistry(),
        logger_provider=logger,
        config=lg_otel.Config(**config),
    )


def _records(exporter: InMemoryLogRecordExporter) -> list[Any]:
    return [r.log_record for r in exporter.get_finished_logs()]


def _drive_agent(graph: Any) -> None:
    for _ in graph.stream({"messages": [HumanMessage("go")]}, stream_mode="messages"):
        pass


def test_each_record_carries_its_span_in_its_trace_context(
    tracing: Any, logs: Any
) -> None:
    """trace_id/span_id of every record are those of the span the event is about."""
    provider, spans_out = tracing
    logger_provider, exporter = logs
    _drive_agent(_instrument(agent(), provider, logger_provider))
    spans = {s.context.span_id: s for s in spans_out.get_finished_spans()}
    records = _records(exporter)
    assert {r.event_name for r in records} >= {
        n.LOG_RUN_END,
        n.LOG_TASK_END,
        n.LOG_LLM_END,
        n.LOG_TOOL_END,
    }
    for record in records:
        span = spans[record.span_id]
        assert record.trace_id == span.context.trace_id
        assert record.trace_flags == span.context.trace_flags
        attributes = record.attributes
        if record.event_name.startswith("task."):
            assert span.name == f"invoke_node {attributes['node']}"
        elif record.event_name.startswith("run."):
            assert span.name == "invoke_workflow agent"
        elif record.event_name == n.LOG_TOOL_END:
            assert span.name == f"execute_tool {attributes['tool']}"
        else:
            assert span.name.startswith("chat ")


def test_severity_follows_the_event_level(tracing: Any, logs: Any) -> None:
    """debug events are DEBUG, run.end INFO, a failure ERROR."""
    provider, _ = tracing
    logger_provider, exporter = logs
    graph = _instrument(failing(), provider, logger_provider)
    with pytest.raises(Boom):
        graph.invoke({"log": []})
    seen = {
        (r.event_name, r.attributes.get("node")): (r.severity_number, r.severity_text)
        for r in _records(exporter)
    }
    assert seen[(n.LOG_TASK_START, "ok")] == (SeverityNumber.DEBUG, "DEBUG")
    assert seen[(n.LOG_TASK_END, "ok")] == (SeverityNumber.DEBUG, "DEBUG")
    assert seen[(n.LOG_TASK_END, "boom")] == (SeverityNumber.ERROR, "ERROR")
    assert seen[(n.LOG_RUN_END, None)] == (SeverityNumber.ERROR, "ERROR")


def test_an_ok_run_end_is_info(tracing: Any, logs: Any) -> None:
    """A run that finishes normally ends with one INFO record."""
    provider, _ = tracing
    logger_provider, exporter = logs
    _instrument(linear(), provider, logger_provider).invoke({"log": []})
    ends = [r for r in _records(exporter) if r.event_name == n.LOG_RUN_END]
    assert [(r.severity_number, r.body) for r in ends] == [
        (SeverityNumber.INFO, n.LOG_RUN_END)
    ]


def _expected(event: Mapping[str, Any]) -> dict[str, Any]:
    """A structlog event's fields as OTel attributes (ids go to the context)."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key in ("event", "log_level", "trace_id", "span_id") or value is None:
            continue
        if key == n.FIELD_EXC_INFO:
            out[n.ATTR_EXCEPTION_TYPE] = type(value).__qualname__
            out[n.ATTR_EXCEPTION_MESSAGE] = str(value)
            continue
        out[key] = value
    return out


@pytest.mark.parametrize("shape", ["agent", "failing"])
def test_records_have_the_structlog_events_fields(
    shape: str, tracing: Any, logs: Any
) -> None:
    """Each record's attributes are the fields of the matching structlog event."""
    provider, _ = tracing
    logger_provider, exporter = logs
    graph = _instrument(
        agent() if shape == "agent" else failing(), provider, logger_provider
    )
    with capture_logs() as captured:
        if shape == "agent":
            _drive_agent(graph)
        else:
            with pytest.raises(Boom):
                graph.invoke({"log": []})
    records = _records(exporter)
    assert [r.event_name for r in records] == [e["event"] for e in captured]
    for record, event in zip(records, captured, strict=True):
        attributes = dict(record.attributes)
        attributes.pop(n.ATTR_EXCEPTION_STACKTRACE, None)
        assert attributes == _expected(event), event["event"]
        assert record.body == event["event"]
        assert record.severity_text == event["log_level"].upper()


def test_failure_carries_the_exception_once(tracing: Any, logs: Any) -> None:
    """The failing task's record has the exception; run.end only names the task."""
    provider, _ = tracing
    logger_provider, exporter = logs
    with pytest.raises(Boom):
        _instrument(failing(), provider, logger_provider).invoke({"log": []})
    records = {(r.event_name, r.attributes.get("node")): r for r in _records(exporter)}
    task_end = records[(n.LOG_TASK_END, "boom")].attributes
    assert task_end[n.ATTR_EXCEPTION_TYPE] == "Boom"
    assert task_end[n.ATTR_EXCEPTION_MESSAGE] == "node failed"
    assert 'raise Boom("node failed")' in task_end[n.ATTR_EXCEPTION_STACKTRACE]
    run_end = records[(n.LOG_RUN_END, None)].attributes
    assert n.ATTR_EXCEPTION_TYPE not in run_end
    assert run_end[n.FIELD_FAILED_NODE] == "boom"
    assert run_end[n.FIELD_ERROR_TYPE] == "Boom"


def test_records_do_not_need_structlog(tracing: Any, logs: Any) -> None:
    """With structlog unconfigured (its logs off), the OTel records still flow."""
    provider, _ = tracing
    logger_provider, exporter = logs
    assert not structlog.is_configured()
    _instrument(linear(), provider, logger_provider).invoke({"log": []})
    assert [r.event_name for r in _records(exporter)].count(n.LOG_TASK_END) == 3


def test_users_own_structlog_logs_are_not_rerouted(tracing: Any, logs: Any) -> None:
    """A node's own structlog line reaches structlog only, not the OTel records."""
    provider, _ = tracing
    logger_provider, exporter = logs

    def chatty(state: S) -> dict[str, Any]:
        structlog.get_logger("app").info("user.event", detail="mine")
        return {"log": ["chatty"]}

    g = StateGraph(S)
    g.add_node("chatty", chatty)
    g.add_edge(START, "chatty")
    graph = _instrument(g.compile(name="app"), provider, logger_provider)
    with capture_logs() as captured:
        graph.invoke({"log": []})
    assert "user.event" in [e["event"] for e in captured]
    bodies = [r.body for r in _records(exporter)]
    assert n.LOG_RUN_END in bodies
    assert "user.event" not in bodies
    assert all(r.attributes.get("detail") is None for r in _records(exporter))


def test_otlp_logs_false_turns_them_off(tracing: Any, logs: Any) -> None:
    """Config(otlp_logs=False) wins over a logger provider given to instrument()."""
    provider, _ = tracing
    logger_provider, exporter = logs
    _instrument(linear(), provider, logger_provider, otlp_logs=False).invoke(
        {"log": []}
    )
    assert exporter.get_finished_logs() == ()


def test_env_false_turns_them_off(
    tracing: Any, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LG_OTEL_OTLP_LOGS=false switches the records off."""
    provider, _ = tracing
    logger_provider, exporter = logs
    monkeypatch.setenv(n.ENV_OTLP_LOGS, "false")
    _instrument(linear(), provider, logger_provider).invoke({"log": []})
    assert exporter.get_finished_logs() == ()


def test_bad_env_value_warns_once_and_falls_back(
    tracing: Any, logs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad LG_OTEL_OTLP_LOGS warns once; the default (on with a provider) holds."""
    provider, _ = tracing
    logger_provider, exporter = logs
    monkeypatch.setattr(_config, "_warned", set())
    monkeypatch.setenv(n.ENV_OTLP_LOGS, "sometimes")

    def two_runs() -> None:
        for _ in range(2):
            _instrument(linear(), provider, logger_provider).invoke({"log": []})

    with pytest.warns(RuntimeWarning, match=n.ENV_OTLP_LOGS) as caught:
        two_runs()
    assert len(caught) == 1
    ends = [r for r in _records(exporter) if r.event_name == n.LOG_RUN_END]
    assert len(ends) == 2


def test_off_without_a_logger_provider(tracing: Any, logs: Any) -> None:
    """Nothing asked for OTel records: the sink is not even built."""
    provider, _ = tracing
    graph = lg_otel.instrument(linear(), tracer_provider=provider)
    # Bound methods, typed as plain callables: Any to read their __self__.
    sinks: tuple[tuple[Any, str], ...] = instrumentation(graph)._quiet_sink._run_ended
    assert all(type(call.__self__).__name__ != "OtelLogSink" for call, _ in sinks)


@pytest.mark.parametrize("bad", ["otlp", object()], ids=["str", "object"])
def test_bad_logger_provider_is_a_type_error(bad: Any) -> None:
    """instrument(logger_provider=...) of the wrong type names the argument."""
    with pytest.raises(TypeError, match="logger_provider="):
        lg_otel.instrument(linear(), logger_provider=bad)


def test_config_otlp_logs_must_be_a_bool() -> None:
    """Config.otlp_logs takes True, False or None."""
    with pytest.raises(TypeError, match=r"Config\.otlp_logs"):
        lg_otel.Config(otlp_logs="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["yes", 1])
def test_configure_otlp_logs_must_be_a_bool(bad: Any) -> None:
    """configure(otlp_logs=...) of the wrong type raises ValueError naming it."""
    with pytest.raises(ValueError, match=r"configure\(otlp_logs="):
        lg_otel.configure(otlp_logs=bad)


# --- configure(otlp_logs=True): a fresh process against a real OTLP/HTTP receiver ---

APP = textwrap.dedent(
    """
    import json, sys
    import lg_otel
    from tests.graphs import failing, linear

    telemetry = lg_otel.configure(metrics_port=None, **json.loads(sys.argv[1]))
    lg_otel.instrument(linear()).invoke({"log": []})
    try:
        lg_otel.instrument(failing()).invoke({"log": []})
    except Exception:
        pass
    telemetry.shutdown()
    print(json.dumps({"logger_provider": telemetry.logger_provider is not None}))
    """
)


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    """A minimal real OTLP/HTTP receiver on 127.0.0.1 (traces and logs)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _received(server: ThreadingHTTPServer) -> tuple[list[Any], dict[bytes, str]]:
    records: list[Any] = []
    spans: dict[bytes, str] = {}
    for path, body in server.requests:  # type: ignore[attr-defined]
        if path == "/v1/logs":
            request = ExportLogsServiceRequest.FromString(body)
            for resource in request.resource_logs:
                for scope in resource.scope_logs:
                    assert scope.scope.name == n.SCOPE_NAME
                    records.extend(scope.log_records)
        elif path == "/v1/traces":
            traces = ExportTraceServiceRequest.FromString(body)
            for resource_spans in traces.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    spans.update((s.span_id, s.name) for s in scope_spans.spans)
    return records, spans


def _run(server: ThreadingHTTPServer, kwargs: dict[str, Any], **env: str) -> Any:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    done = run_code(APP, [json.dumps({"otlp_endpoint": url, **kwargs})], (), **env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_configure_sends_records_over_otlp(receiver: ThreadingHTTPServer) -> None:
    """configure(otlp_logs=True): records reach /v1/logs, joined to exported spans."""
    report = _run(receiver, {"otlp_logs": True})
    assert report["logger_provider"] is True
    records, spans = _received(receiver)
    assert records
    for record in records:
        assert spans[record.span_id].startswith(("invoke_workflow", "invoke_node"))
    by_event = {(r.event_name, r.severity_text) for r in records}
    assert (n.LOG_RUN_END, "INFO") in by_event
    assert (n.LOG_TASK_END, "ERROR") in by_event


def test_configure_level_filters_records(receiver: ThreadingHTTPServer) -> None:
    """configure(log_level=...) is the records' minimum: info drops debug events."""
    _run(receiver, {"otlp_logs": True, "log_level": "info"})
    info = {r.event_name for r in _received(receiver)[0]}
    assert n.LOG_TASK_START not in info
    assert n.LOG_RUN_END in info
    receiver.requests.clear()  # type: ignore[attr-defined]
    _run(receiver, {"otlp_logs": True, "log_level": "debug"})
    assert n.LOG_TASK_START in {r.event_name for r in _received(receiver)[0]}


def test_env_variable_turns_configure_logs_on(receiver: ThreadingHTTPServer) -> None:
    """LG_OTEL_OTLP_LOGS=true does what configure(otlp_logs=True) does."""
    report = _run(receiver, {}, LG_OTEL_OTLP_LOGS="true")
    assert report["logger_provider"] is True
    assert n.LOG_RUN_END in {r.event_name for r in _received(receiver)[0]}


def test_no_records_unless_asked(receiver: ThreadingHTTPServer) -> None:
    """configure() alone sends spans but no log records."""
    report = _run(receiver, {})
    assert report["logger_provider"] is False
    records, spans = _received(receiver)
    assert records == []
    assert spans


def test_configure_otlp_logs_without_endpoint_names_the_fix() -> None:
    """configure(otlp_logs=True) with nowhere to send raises ValueError at setup."""
    code = "import lg_otel; lg_otel.configure(metrics_port=None, otlp_logs=True)"
    done = run_code(code, [])
    assert done.returncode != 0
    assert "configure(otlp_logs=True)" in done.stderr
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in done.stderr


def test_env_without_endpoint_warns_and_stays_off() -> None:
    """LG_OTEL_OTLP_LOGS=true with nowhere to send warns once; configure() goes on."""
    code = textwrap.dedent(
        """
        import warnings, lg_otel
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            telemetry = lg_otel.configure(metrics_port=None)
        print([str(w.message) for w in caught], telemetry.logger_provider)
        """
    )
    done = run_code(code, [], LG_OTEL_OTLP_LOGS="true")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "no OTLP endpoint" in done.stdout
    assert done.stdout.strip().endswith("None")


class _GrpcLogs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self) -> None:
        self.requests: list[ExportLogsServiceRequest] = []

    def Export(
        self, request: ExportLogsServiceRequest, context: Any
    ) -> ExportLogsServiceResponse:
        self.requests.append(request)
        return ExportLogsServiceResponse()


def test_grpc_protocol_sends_records_over_grpc() -> None:
    """otlp_protocol='grpc': the records reach a real OTLP/gRPC logs receiver."""
    service = _GrpcLogs()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        kwargs = {
            "otlp_endpoint": f"http://127.0.0.1:{port}",
            "otlp_protocol": "grpc",
            "otlp_logs": True,
        }
        done = run_code(APP, [json.dumps(kwargs)])
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        server.stop(grace=None)
    events = {
        record.event_name
        for request in service.requests
        for resource in request.resource_logs
        for scope in resource.scope_logs
        for record in scope.log_records
    }
    assert {n.LOG_RUN_END, n.LOG_TASK_END} <= events


def test_missing_extra_for_logs_names_it(receiver: ThreadingHTTPServer) -> None:
    """Without the otlp extra, configure(otlp_logs=True) raises one ImportError."""
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    code = (
        "import lg_otel; from opentelemetry import trace\n"
        "trace.set_tracer_provider(trace.NoOpTracerProvider())\n"
        f"lg_otel.configure(metrics_port=None, otlp_logs=True, otlp_endpoint={url!r})"
    )
    done = run_code(code, [], NO_EXTRAS)
    assert done.returncode != 0
    assert "pip install 'lg_otel[otlp]'" in done.stderr
