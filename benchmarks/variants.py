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
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import NoOpTracerProvider
from prometheus_client import CollectorRegistry

import lg_otel


class CountingExporter(SpanExporter):
    """Counts exported spans and drops them (the exporter's own cost is not ours)."""

    def __init__(self) -> None:
        self._count = 0
        #: The batch processors that feed it: flushed before the count is read.
        self.processors: list[BatchSpanProcessor] = []

    @property
    def count(self) -> int:
        """Spans exported so far, every span ended until now included."""
        for processor in self.processors:
            processor.force_flush()
        return self._count

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._count += len(spans)
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


class OnStartProcessor(SpanProcessor):
    """Does a little work in ``on_start``, as vendor processors do.

    Its presence makes lg_otel take the tracer's public-API span path.
    """

    def __init__(self) -> None:
        self.started = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Count the start."""
        self.started += 1


def _provider(exporter: CountingExporter, api: bool = False) -> TracerProvider:
    """An SDK provider exporting through a BatchSpanProcessor (its defaults), as
    applications do; its export thread's CPU counts in the process's."""
    provider = TracerProvider()
    if api:
        provider.add_span_processor(OnStartProcessor())
    processor = BatchSpanProcessor(exporter)
    exporter.processors.append(processor)
    provider.add_span_processor(processor)
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


#: The cost layers, in the order each adds to the one before.
LAYERS = ("noop", "spans", "prometheus", "otel", "both", "logs", "api", "record")


class RecordMeterProvider(MeterProvider):
    """A subclass of the SDK's provider: lg_otel's histograms go through
    ``Histogram.record()`` (what a vendor's provider subclass gets)."""


def layer_kwargs(name: str, exporter: CountingExporter | None = None) -> dict[str, Any]:
    """``instrument()`` arguments of one cost layer, each call with fresh providers.

    ``noop``: a no-op tracer, no metrics, no logs; ``spans``: SDK spans to
    ``exporter`` (a new dropping one if None), no metrics; ``prometheus`` /
    ``otel``: spans plus that one metrics path; ``both``: both paths; ``logs``: both
    plus structlog at its default level; ``api``: ``both``, with a span processor
    that acts in ``on_start`` beside the exporter, so spans take the public-API
    path (what users with such processors get); ``record``: ``both``, with the
    OTel histograms recorded through ``Histogram.record()`` instead of bound.
    """
    if name not in LAYERS:
        raise ValueError(f"layer_kwargs(name): {name!r} is not one of {LAYERS}")
    if name == "noop":
        return {
            "tracer_provider": NoOpTracerProvider(),
            "config": lg_otel.Config(metrics=False, logs=False),
        }
    kwargs: dict[str, Any] = {
        "tracer_provider": _provider(exporter or CountingExporter(), name == "api"),
        "config": lg_otel.Config(metrics=name != "spans", logs=name == "logs"),
    }
    if name in ("otel", "both", "logs", "api", "record"):
        # With a reader, as an application that exports its metrics has: without
        # one the SDK aggregates nothing, and the OTel path looked cheaper than it is.
        cls = RecordMeterProvider if name == "record" else MeterProvider
        kwargs["meter_provider"] = cls(metric_readers=[InMemoryMetricReader()])
    if name in ("prometheus", "both", "logs", "api", "record"):
        kwargs["registry"] = CollectorRegistry()
    elif name == "otel":
        kwargs["registry"] = False
    return kwargs


def check_histogram_path(graph: Any, layer: str) -> None:
    """Fail unless ``graph``'s OTel histograms take the path ``layer`` says (bound
    for a plain ``MeterProvider``, ``record()`` for the ``record`` layer)."""
    metrics = type(graph)._lg_otel.metrics
    if metrics is None or metrics._task_duration._otel is None:
        return  # no OTel metrics in this layer
    bound = metrics._task_duration._bound
    assert bound == (layer != "record"), f"{layer}: histograms bound={bound}"


def lg_otel_variants() -> list[Variant]:
    """bare; spans; spans + metrics; spans + metrics + logs."""
    out = [Variant("bare", lambda graph: graph)]
    _quiet_structlog()
    for name, key in (
        ("spans", "spans"),
        ("spans+metrics", "both"),
        ("spans+metrics+logs", "logs"),
    ):
        v = Variant(name, lambda g: g)
        v.wrap = partial(_instrumented, key=key, exporter=v.exporter)
        out.append(v)
    return out


def _instrumented(graph: Any, key: str, exporter: CountingExporter) -> Any:
    return lg_otel.instrument(graph, **layer_kwargs(key, exporter))


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
