"""lg_otel.configure(): the embedded default, OTLP export, env handling, bad input.

configure() sets process-global providers, so each behaviour runs in a fresh Python
process (a real one, as an application would).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

import lg_otel
from lg_otel import _names as n

APP = textwrap.dedent(
    """
    import json, sys, urllib.request, warnings
    from langchain_core.messages import HumanMessage
    import lg_otel
    from tests.graphs import chat

    kwargs = json.loads(sys.argv[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        telemetry = lg_otel.configure(**kwargs)
        again = lg_otel.configure(**kwargs)
    graph = lg_otel.instrument(chat())
    for _ in graph.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages"):
        pass
    metrics = ""
    if telemetry.metrics_url:
        with urllib.request.urlopen(telemetry.metrics_url, timeout=5) as response:
            metrics = response.read().decode()
    telemetry.shutdown()
    print(json.dumps({
        "same": again is telemetry,
        "metrics_url": telemetry.metrics_url,
        "metrics": metrics,
        "otlp": telemetry.otlp_endpoint,
        "tracer": telemetry.tracer_provider is not None,
        "warnings": [str(w.message) for w in caught],
    }))
    """
)


# Makes modules unimportable in the child, as if the extras were not installed (the
# shared venv has them; tests/test_packaging.py checks a real install without them).
BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys

    class _NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NotInstalled())
    """
)
# What a plain `pip install lg_otel` leaves out (the [otlp] and [otlp-grpc] extras).
NO_EXTRAS = ("opentelemetry.exporter.otlp", "opentelemetry.proto", "grpc")
NO_GRPC = ("opentelemetry.exporter.otlp.proto.grpc", "grpc")


def run_code(
    code: str, args: list[str], blocked: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh process with only the given OTEL_* variables set."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(env)
    if blocked:
        code = f"BLOCKED = {blocked!r}\n{BLOCKER}\n{code}"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )


def run_app(
    kwargs: dict[str, Any], blocked: tuple[str, ...] = (), **env: str
) -> tuple[dict[str, Any], str]:
    """Run the app in a fresh process; its JSON report and its stderr."""
    done = run_code(APP, [json.dumps(kwargs)], blocked, **env)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    return json.loads(last), done.stderr


def test_embedded_default_is_readable_and_serves_metrics() -> None:
    """No arguments, no servers: a trace tree on stderr and /metrics on 127.0.0.1."""
    report, stderr = run_app({"metrics_port": 0})
    assert report["same"] is True
    assert report["metrics_url"].startswith("http://127.0.0.1:")
    assert "langgraph_run_time_to_first_token_seconds_bucket" in report["metrics"]
    assert "invoke_workflow chat" in stderr
    assert "invoke_node chatbot" in stderr
    assert "chat simulated-chat" in stderr


class _Collector(BaseHTTPRequestHandler):
    requests: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[ThreadingHTTPServer]:
    """A minimal real OTLP/HTTP trace receiver on 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _span_names(server: ThreadingHTTPServer) -> set[str]:
    names: set[str] = set()
    for path, body in server.requests:  # type: ignore[attr-defined]
        assert path == "/v1/traces"
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                names.update(span.name for span in scope.spans)
    return names


@pytest.mark.parametrize("via", ["argument", "environment"])
def test_otlp_endpoint_exports_there(collector: ThreadingHTTPServer, via: str) -> None:
    """An OTLP endpoint (argument or OTEL_EXPORTER_OTLP_ENDPOINT) receives the spans."""
    url = f"http://127.0.0.1:{collector.server_address[1]}"
    if via == "argument":
        report, stderr = run_app({"otlp_endpoint": url, "metrics_port": None})
    else:
        report, stderr = run_app(
            {"metrics_port": None}, OTEL_EXPORTER_OTLP_ENDPOINT=url
        )
    assert report["otlp"] == url
    assert "invoke_workflow chat" not in stderr
    assert {"invoke_workflow chat", "invoke_node chatbot"} <= _span_names(collector)


def test_otlp_metrics_are_pushed_to_v1_metrics(
    collector: ThreadingHTTPServer,
) -> None:
    """otlp_metrics=True over http/protobuf: the run metrics reach /v1/metrics."""
    url = f"http://127.0.0.1:{collector.server_address[1]}"
    run_app({"otlp_endpoint": url, "otlp_metrics": True, "metrics_port": None})
    names: set[str] = set()
    for path, body in collector.requests:  # type: ignore[attr-defined]
        if path == "/v1/metrics":
            names |= _metric_names(ExportMetricsServiceRequest.FromString(body))
    assert n.METRIC_RUN_DURATION in names


def _metric_names(request: ExportMetricsServiceRequest) -> set[str]:
    return {
        metric.name
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


class _GrpcTraces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []

    def Export(
        self, request: ExportTraceServiceRequest, context: Any
    ) -> ExportTraceServiceResponse:
        self.requests.append(request)
        return ExportTraceServiceResponse()


class _GrpcMetrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []

    def Export(
        self, request: ExportMetricsServiceRequest, context: Any
    ) -> ExportMetricsServiceResponse:
        self.requests.append(request)
        return ExportMetricsServiceResponse()


@pytest.fixture
def grpc_collector() -> Iterator[tuple[str, _GrpcTraces, _GrpcMetrics]]:
    """A minimal real OTLP/gRPC trace and metrics receiver on 127.0.0.1."""
    traces, metrics = _GrpcTraces(), _GrpcMetrics()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(traces, server)  # type: ignore[no-untyped-call]
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(metrics, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", traces, metrics
    server.stop(grace=None)


def test_grpc_protocol_exports_spans_over_grpc(
    grpc_collector: tuple[str, _GrpcTraces, _GrpcMetrics],
) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc: the spans reach an OTLP/gRPC receiver."""
    url, traces, _ = grpc_collector
    report, _ = run_app(
        {"metrics_port": None},
        OTEL_EXPORTER_OTLP_ENDPOINT=url,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
    )
    assert report["otlp"] == url
    names = {
        span.name
        for request in traces.requests
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    assert {"invoke_workflow chat", "invoke_node chatbot"} <= names


def test_grpc_protocol_pushes_metrics_over_grpc(
    grpc_collector: tuple[str, _GrpcTraces, _GrpcMetrics],
) -> None:
    """otlp_metrics=True with otlp_protocol='grpc': metrics go over gRPC too."""
    url, _, metrics = grpc_collector
    run_app(
        {
            "otlp_endpoint": url,
            "otlp_protocol": "grpc",
            "otlp_metrics": True,
            "metrics_port": None,
        }
    )
    names = set().union(*(_metric_names(r) for r in metrics.requests))
    assert n.METRIC_RUN_DURATION in names


CONFIGURE = textwrap.dedent(
    """
    import json, sys
    import lg_otel

    lg_otel.configure(**json.loads(sys.argv[1]))
    """
)


@pytest.mark.parametrize(
    ("kwargs", "env", "blocked", "extra"),
    [
        ({"otlp_endpoint": "http://127.0.0.1:4318"}, {}, NO_EXTRAS, "otlp"),
        (
            {},
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
            NO_EXTRAS,
            "otlp",
        ),
        (
            {"otlp_endpoint": "http://127.0.0.1:4317", "otlp_protocol": "grpc"},
            {},
            NO_GRPC,
            "otlp-grpc",
        ),
        (
            {},
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            },
            NO_GRPC,
            "otlp-grpc",
        ),
    ],
    ids=["argument", "env", "grpc-argument", "grpc-env"],
)
def test_missing_extra_is_one_error_naming_it(
    kwargs: dict[str, Any], env: dict[str, str], blocked: tuple[str, ...], extra: str
) -> None:
    """OTLP asked for without its extra: one ImportError naming the pip command."""
    done = run_code(CONFIGURE, [json.dumps(kwargs)], blocked, **env)
    assert done.returncode == 1
    assert done.stderr.count("Traceback") == 1  # no chained import traceback
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: lg_otel.configure: OTLP export over ")
    assert f"pip install 'lg_otel[{extra}]'" in last
    setting = "otlp_endpoint" if kwargs else "OTEL_EXPORTER_OTLP_ENDPOINT"
    assert setting in last


def test_missing_extra_sets_nothing_up() -> None:
    """After the missing-extra error, no provider, server or handle is left behind."""
    code = textwrap.dedent(
        """
        import json, structlog
        from opentelemetry import metrics, trace
        import lg_otel
        from lg_otel import _configure

        try:
            lg_otel.configure(
                otlp_endpoint="http://127.0.0.1:4318", otlp_metrics=True, metrics_port=0
            )
        except ImportError:
            pass
        print(json.dumps({
            "tracer": type(trace.get_tracer_provider()).__name__,
            "meter": type(metrics.get_meter_provider()).__name__,
            "structlog": structlog.is_configured(),
            "handle": _configure._handle is not None,
        }))
        """
    )
    done = run_code(code, [], NO_EXTRAS)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {
        "tracer": "ProxyTracerProvider",
        "meter": "_ProxyMeterProvider",
        "structlog": False,
        "handle": False,
    }


def test_terminal_default_needs_no_extra() -> None:
    """Without any OTLP extra, the embedded default still prints the trace tree."""
    report, stderr = run_app({"metrics_port": 0}, NO_EXTRAS)
    assert report["tracer"] is True
    assert report["otlp"] is None
    assert "invoke_workflow chat" in stderr
    assert "langgraph_run_time_to_first_token_seconds_bucket" in report["metrics"]


def test_invalid_env_endpoint_warns_and_falls_back() -> None:
    """A malformed OTEL_EXPORTER_OTLP_ENDPOINT warns once; traces go to the terminal."""
    report, stderr = run_app({"metrics_port": None}, OTEL_EXPORTER_OTLP_ENDPOINT="nope")
    assert report["otlp"] is None
    assert len(report["warnings"]) == 1
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in report["warnings"][0]
    assert "invoke_workflow chat" in stderr


def test_sdk_disabled_does_nothing() -> None:
    """OTEL_SDK_DISABLED=true: no provider, no server, no output."""
    report, stderr = run_app({"metrics_port": 0}, OTEL_SDK_DISABLED="true")
    assert report["tracer"] is False
    assert report["metrics_url"] is None
    assert "invoke_workflow" not in stderr


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"metrics_port": -1}, "metrics_port"),
        ({"metrics_port": 70000}, "metrics_port"),
        ({"otlp_endpoint": "localhost:4318"}, "otlp_endpoint"),
        ({"sampler_ratio": 2}, "sampler_ratio"),
        ({"otlp_protocol": "thrift"}, "otlp_protocol"),
        ({"log_level": "loud"}, "log_level"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(
    kwargs: dict[str, Any], argument: str
) -> None:
    """Invalid configure() arguments raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=f"configure\\({argument}="):
        lg_otel.configure(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"capture_content": "EVERYTHING"}, ValueError),
        ({"max_content_length": -5}, ValueError),
        ({"redact": "not callable"}, TypeError),
        ({"max_label_values": 0}, ValueError),
    ],
)
def test_bad_config_raises_naming_the_field(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """Invalid Config fields raise at setup, naming the field."""
    with pytest.raises(error, match=f"Config.{next(iter(kwargs))}"):
        lg_otel.Config(**kwargs)


def test_bad_env_setting_warns_once_and_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An invalid LG_OTEL_* value warns once and the default applies."""
    from lg_otel import _config

    monkeypatch.setattr(_config, "_warned", set())
    env = {"LG_OTEL_MAX_CONTENT_LENGTH": "-3", "LG_OTEL_LOGS": "maybe"}

    def resolve_twice() -> tuple[lg_otel.Config, lg_otel.Config]:
        return lg_otel.Config().resolve(env), lg_otel.Config().resolve(env)

    with pytest.warns(RuntimeWarning) as caught:
        first, second = resolve_twice()
    assert len(caught) == 2  # one per variable, not per call
    assert first == second
    assert first.max_content_length == 4096
    assert first.logs is False
