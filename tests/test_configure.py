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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

import lg_otel

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


def run_app(kwargs: dict[str, Any], **env: str) -> tuple[dict[str, Any], str]:
    """Run the app in a fresh process; its JSON report and its stderr."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", APP, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        check=True,
    )
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
    names = set()
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
