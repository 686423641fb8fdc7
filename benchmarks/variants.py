"""The variants measured against each other: bare, lg_otel layers, competitors."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from prometheus_client import CollectorRegistry

import lg_otel


class CountingExporter(SpanExporter):
    """Counts exported spans and drops them (the exporter's own cost is not ours)."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


@dataclass
class Variant:
    """One way of running a graph, with a span counter to check it is on or off."""

    name: str
    wrap: Callable[[Any], Any]
    exporter: CountingExporter = field(default_factory=CountingExporter)
    #: Called around the variant's runs (competitors instrument globally).
    enter: Callable[[], None] = lambda: None
    leave: Callable[[], None] = lambda: None


def _provider(exporter: CountingExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _quiet_structlog() -> None:
    """structlog at its production default: INFO and above, rendered, discarded."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            lg_otel.add_trace_ids,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(io.StringIO()),
        cache_logger_on_first_use=True,
    )


def lg_otel_variants() -> list[Variant]:
    """bare; spans; spans + metrics; spans + metrics + logs."""
    out = [Variant("bare", lambda graph: graph)]

    def spans(v: Variant) -> Callable[[Any], Any]:
        return lambda graph: lg_otel.instrument(
            graph,
            tracer_provider=_provider(v.exporter),
            config=lg_otel.Config(metrics=False, logs=False),
        )

    def spans_metrics(v: Variant, logs: bool) -> Callable[[Any], Any]:
        return lambda graph: lg_otel.instrument(
            graph,
            tracer_provider=_provider(v.exporter),
            meter_provider=MeterProvider(),
            registry=CollectorRegistry(),
            config=lg_otel.Config(logs=logs),
        )

    v = Variant("spans", lambda g: g)
    v.wrap = spans(v)
    out.append(v)
    v = Variant("spans+metrics", lambda g: g)
    v.wrap = spans_metrics(v, False)
    out.append(v)
    _quiet_structlog()
    v = Variant("spans+metrics+logs", lambda g: g)
    v.wrap = spans_metrics(v, True)
    out.append(v)
    return out


def competitor_variants() -> list[Variant]:
    """OpenInference and OpenLLMetry LangChain instrumentors, where installed."""
    out: list[Variant] = []
    try:
        from openinference.instrumentation.langchain import (  # type: ignore[import-not-found,unused-ignore]
            LangChainInstrumentor,
        )
    except ImportError:
        pass
    else:
        oi = LangChainInstrumentor()
        v = Variant("openinference", lambda graph: graph)
        # Bind this provider now: a closure over a local would see it reassigned
        # below and send these spans to the next competitor's exporter.
        v.enter = partial(oi.instrument, tracer_provider=_provider(v.exporter))
        v.leave = oi.uninstrument
        out.append(v)
    try:
        from opentelemetry.instrumentation.langchain import (  # type: ignore[import-not-found,unused-ignore]
            LangchainInstrumentor as OpenLLMetry,
        )
    except ImportError:
        pass
    else:
        ol = OpenLLMetry()
        v = Variant("openllmetry", lambda graph: graph)
        v.enter = partial(ol.instrument, tracer_provider=_provider(v.exporter))
        v.leave = ol.uninstrument
        out.append(v)
    return out
