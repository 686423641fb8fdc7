"""pytest plugin: every graph compiled in the test process comes back instrumented.

Loaded with ``-p lg_otel_plugin`` by ``scripts/langgraph-suite.sh``. It activates the
zero-code instrumentor when imported, before any test module is, and reports how many
spans the run exported (a suite that exported none did not test lg_otel at all).
"""

from __future__ import annotations

import os
from typing import Any

import prometheus_client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from lg_otel.instrumentor import LangGraphInstrumentor

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
LangGraphInstrumentor().instrument(
    tracer_provider=_PROVIDER, registry=prometheus_client.CollectorRegistry()
)
_spans = 0


def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    """Count and drop each test's spans, so memory stays bounded."""
    global _spans
    _spans += len(_EXPORTER.get_finished_spans())
    _EXPORTER.clear()


def pytest_unconfigure(config: Any) -> None:
    """Write this process's span count where the script sums them."""
    out = os.environ.get("LG_OTEL_SPAN_DIR")
    if out:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(os.path.join(out, f"{worker}.txt"), "w") as f:
            f.write(f"{_spans}\n")
