"""End to end: ``opentelemetry-instrument`` traces the example with no lg_otel call.

``examples/zero_code_app.py`` imports nothing from lg_otel. Run under
``opentelemetry-instrument`` (opentelemetry-distro), lg_otel's entry point activates
the instrumentor; the spans go over real OTLP/HTTP to a receiver this test runs on
127.0.0.1, and their tree must be the one an explicit ``lg_otel.instrument()`` call
on the same graph produces.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from prometheus_client import CollectorRegistry

import lg_otel
from lg_otel import _names as n
from tests.conftest import tree
from tests.e2e.stack import ROOT, missing

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "zero_code_app.py"
SERVICE = "lg-otel-zero-code-e2e"


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    """A real OTLP/HTTP trace receiver on 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.bodies = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _run_instrumented(
    receiver: ThreadingHTTPServer, **env: str
) -> subprocess.CompletedProcess[str]:
    """The example under opentelemetry-instrument, exporting to ``receiver``."""
    command = Path(sys.executable).with_name("opentelemetry-instrument")
    if not command.exists():
        missing("opentelemetry-instrument", "./run test (it installs the test extras)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LG_"))}
    done = subprocess.run(
        [str(command), sys.executable, str(EXAMPLE)],
        env={
            **clean,
            "PYTHONPATH": str(ROOT),
            "OTEL_SERVICE_NAME": SERVICE,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": (
                f"http://127.0.0.1:{receiver.server_address[1]}"
            ),
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _received(receiver: ThreadingHTTPServer) -> list[tuple[str, str, Any]]:
    """(scope name, service name, span) of every span the receiver got."""
    out = []
    for path, body in receiver.bodies:  # type: ignore[attr-defined]
        assert path == "/v1/traces"
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    out.append((scope_spans.scope.name, service, span))
    return out


def _otlp_tree(spans: list[Any]) -> list[str]:
    """The spans as 'name <- parent name', sorted, like tests.conftest.tree."""
    by_id = {s.span_id: s for s in spans}
    return sorted(
        f"{s.name} <- {by_id[s.parent_span_id].name if s.parent_span_id else None}"
        for s in spans
    )


def _explicit_tree(tracing: Any) -> list[str]:
    """The same graph, instrumented by hand, driven the same way in this process."""
    from examples.zero_code_app import SimpleChatState, SimpleChatWorkflow

    provider, exporter = tracing
    flow = SimpleChatWorkflow()
    graph = lg_otel.instrument(
        flow.graph, tracer_provider=provider, registry=CollectorRegistry()
    )
    inputs: SimpleChatState = {"messages": [HumanMessage("Explain quantum computing")]}
    config: RunnableConfig = {"configurable": {"thread_id": "zero-code"}}
    for _ in graph.stream(inputs, config, stream_mode="messages"):
        pass
    return tree(exporter.get_finished_spans())


def test_example_has_no_lg_otel_call() -> None:
    """The example service neither imports nor names lg_otel in its code."""
    code = ast.parse(EXAMPLE.read_text())
    for node in ast.walk(code):
        if isinstance(node, ast.Import):
            assert all(not a.name.startswith("lg_otel") for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert not (node.module or "").startswith("lg_otel")
        elif isinstance(node, ast.Name | ast.Attribute):
            assert "lg_otel" not in ast.unparse(node)


def test_zero_code_trace_is_the_explicit_trace(
    receiver: ThreadingHTTPServer, tracing: Any
) -> None:
    """opentelemetry-instrument gives the trace tree of an explicit instrument()."""
    done = _run_instrumented(receiver)
    assert "Quantum computers use qubits" in done.stderr
    received = _received(receiver)
    assert {scope for scope, _, _ in received} == {n.SCOPE_NAME}
    assert {service for _, service, _ in received} == {SERVICE}
    spans = [span for _, _, span in received]
    assert len({s.trace_id for s in spans}) == 1
    explicit = _explicit_tree(tracing)
    assert "invoke_workflow simple_chat <- None" in explicit
    assert "execute_tool lookup <- invoke_node tools" in explicit
    assert _otlp_tree(spans) == explicit


def test_disabled_instrumentor_leaves_the_example_untraced(
    receiver: ThreadingHTTPServer,
) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=lg_otel: same answer, no span."""
    done = _run_instrumented(
        receiver, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=n.INSTRUMENTOR_NAME
    )
    assert "Quantum computers use qubits" in done.stderr
    assert _received(receiver) == []
