"""``configure()``: the whole telemetry pipeline in one line, for applications.

The library itself never calls this (it never sets global providers, configures
structlog or starts a server); applications opt in. Standard ``OTEL_*`` variables
are honoured: ``OTEL_SDK_DISABLED``, ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES``
(via the SDK's Resource), ``OTEL_TRACES_SAMPLER``/``_ARG`` (via the SDK's provider),
``OTEL_EXPORTER_OTLP_ENDPOINT``/``_TRACES_ENDPOINT``/``_PROTOCOL``.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from typing import Any
from urllib.parse import urlparse

import prometheus_client
import structlog
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from lg_otel._console import ConsoleTreeProcessor
from lg_otel._logs import add_trace_ids

_LEVELS = ("debug", "info", "warning", "error")
_lock = threading.Lock()
_handle: Telemetry | None = None
_warned: set[str] = set()


class Telemetry:
    """What ``configure()`` set up; ``shutdown()`` flushes and stops all of it."""

    def __init__(self) -> None:
        """An empty handle (``OTEL_SDK_DISABLED`` leaves it so)."""
        self.tracer_provider: TracerProvider | None = None
        self.meter_provider: MeterProvider | None = None
        self.metrics_url: str | None = None
        self.otlp_endpoint: str | None = None
        self._server: Any = None
        self._closed = False

    def shutdown(self) -> None:
        """Flush and shut down what was set up here; safe to call twice."""
        global _handle
        if self._closed:
            return
        self._closed = True
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with _lock:
            if _handle is self:
                _handle = None


def _warn_once(variable: str, value: str, fallback: str) -> None:
    if variable not in _warned:
        _warned.add(variable)
        warnings.warn(
            f"lg_otel.configure: ignoring {variable}={value!r} (invalid); {fallback}",
            RuntimeWarning,
            stacklevel=3,
        )


def _valid_url(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _check(
    otlp_endpoint: str | None,
    otlp_protocol: str | None,
    metrics_port: int | None,
    metrics_host: str,
    sampler_ratio: float | None,
    log_level: str,
    service_name: str | None,
) -> None:
    if otlp_endpoint is not None and (
        not isinstance(otlp_endpoint, str) or not _valid_url(otlp_endpoint)
    ):
        raise ValueError(
            f"configure(otlp_endpoint={otlp_endpoint!r}): expected an http(s) URL "
            "such as 'http://localhost:4318' (or None for terminal output)"
        )
    if otlp_protocol is not None and otlp_protocol not in ("grpc", "http/protobuf"):
        raise ValueError(
            f"configure(otlp_protocol={otlp_protocol!r}): use 'http/protobuf' or 'grpc'"
        )
    if metrics_port is not None and (
        not isinstance(metrics_port, int)
        or isinstance(metrics_port, bool)
        or not 0 <= metrics_port <= 65535
    ):
        raise ValueError(
            f"configure(metrics_port={metrics_port!r}): expected 0-65535 "
            "(0 picks a free port, None serves no /metrics)"
        )
    if not isinstance(metrics_host, str) or not metrics_host:
        raise ValueError(
            "configure(metrics_host=...): expected a host such as 127.0.0.1"
        )
    if sampler_ratio is not None and (
        isinstance(sampler_ratio, bool)
        or not isinstance(sampler_ratio, int | float)
        or not 0.0 <= sampler_ratio <= 1.0
    ):
        raise ValueError(
            f"configure(sampler_ratio={sampler_ratio!r}): expected a number in [0, 1]"
        )
    if log_level not in _LEVELS:
        raise ValueError(f"configure(log_level={log_level!r}): use one of {_LEVELS}")
    if service_name is not None and (
        not isinstance(service_name, str) or not service_name
    ):
        raise ValueError("configure(service_name=...): expected a non-empty string")


def _env_endpoint() -> str | None:
    for variable in (
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ):
        raw = os.environ.get(variable)
        if raw:
            if _valid_url(raw):
                return raw
            _warn_once(variable, raw, "printing traces to the terminal instead")
    return None


def _span_exporter(endpoint: str, protocol: str) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        parsed = urlparse(endpoint)
        return GrpcExporter(endpoint=parsed.netloc, insecure=parsed.scheme == "http")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    path = urlparse(endpoint).path
    url = (
        endpoint if path.endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
    )
    return OTLPSpanExporter(endpoint=url)


def configure(
    *,
    service_name: str | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    otlp_metrics: bool = False,
    metrics_port: int | None = 9464,
    metrics_host: str = "127.0.0.1",
    sampler_ratio: float | None = None,
    log_level: str = "info",
) -> Telemetry:
    """Set up tracing, metrics and JSON logs for an application; idempotent.

    Traces go over OTLP when ``otlp_endpoint`` (or ``OTEL_EXPORTER_OTLP_*``) says so,
    otherwise to a readable tree on standard error. Metrics are served by
    prometheus_client at ``http://{metrics_host}:{metrics_port}/metrics``; with
    ``otlp_metrics=True`` they are also pushed over OTLP (then scrape one or the
    other, not both, or Prometheus counts twice). structlog renders JSON lines with
    the trace ids. A provider or structlog configuration the application already set
    is left alone. ``OTEL_SDK_DISABLED=true`` makes this a no-op.

    Raises:
        ValueError: An argument is invalid (the message names it and the fix).
    """
    global _handle
    _check(
        otlp_endpoint,
        otlp_protocol,
        metrics_port,
        metrics_host,
        sampler_ratio,
        log_level,
        service_name,
    )
    with _lock:
        if _handle is not None:
            return _handle
        handle = Telemetry()
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            _handle = handle
            return handle
        endpoint = otlp_endpoint or _env_endpoint()
        protocol = otlp_protocol or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol not in ("grpc", "http/protobuf"):
            _warn_once("OTEL_EXPORTER_OTLP_PROTOCOL", protocol, "using http/protobuf")
            protocol = "http/protobuf"
        attributes = {SERVICE_NAME: service_name} if service_name else {}
        resource = Resource.create(attributes)
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            sampler = (
                ParentBased(TraceIdRatioBased(sampler_ratio))
                if sampler_ratio is not None
                else None  # the SDK reads OTEL_TRACES_SAMPLER itself
            )
            provider = TracerProvider(resource=resource, sampler=sampler)
            if endpoint:
                provider.add_span_processor(
                    BatchSpanProcessor(_span_exporter(endpoint, protocol))
                )
                handle.otlp_endpoint = endpoint
            else:
                provider.add_span_processor(ConsoleTreeProcessor())
            trace.set_tracer_provider(provider)
            handle.tracer_provider = provider
        if endpoint and otlp_metrics and _no_meter_provider():
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            url = endpoint.rstrip("/") + "/v1/metrics"
            reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=url))
            meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
            metrics.set_meter_provider(meter_provider)
            handle.meter_provider = meter_provider
        if metrics_port is not None:
            server, _thread = prometheus_client.start_http_server(
                metrics_port, addr=metrics_host
            )
            handle._server = server
            port = server.server_address[1]
            handle.metrics_url = f"http://{metrics_host}:{port}/metrics"
        if not structlog.is_configured():
            structlog.configure(
                processors=[
                    structlog.contextvars.merge_contextvars,
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    add_trace_ids,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(),
                ],
                wrapper_class=structlog.make_filtering_bound_logger(
                    getattr(logging, log_level.upper())
                ),
                cache_logger_on_first_use=True,
            )
        _handle = handle
        return handle


def _no_meter_provider() -> bool:
    # The API's default is a proxy until an application sets a real provider.
    return type(metrics.get_meter_provider()).__name__.startswith("_Proxy")


__all__ = ["Telemetry", "configure"]
