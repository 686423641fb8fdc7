"""``configure()``: the whole telemetry pipeline in one line, for applications.

The library itself never calls this (it never sets global providers, configures
structlog or starts a server); applications opt in. Standard ``OTEL_*`` variables
are honoured: ``OTEL_SDK_DISABLED``, ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES``
(via the SDK's Resource), ``OTEL_TRACES_SAMPLER``/``_ARG`` (via the SDK's provider),
``OTEL_EXPORTER_OTLP_ENDPOINT``/``_TRACES_ENDPOINT``/``_PROTOCOL``.

The OTLP exporters are optional dependencies: ``lg_otel[otlp]`` (OTLP/HTTP) and
``lg_otel[otlp-grpc]`` (gRPC, and its 19 MB grpcio). The terminal default needs neither.
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
from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from lg_otel._config import Config
from lg_otel._console import ConsoleTreeProcessor
from lg_otel._logs import add_trace_ids
from lg_otel._otel_logs import check_logs_api

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
        #: The OTel logger provider set up for ``otlp_logs`` (None: none made here).
        self.logger_provider: Any = None
        #: Minimum level of lg_otel's OTel log records, when ``otlp_logs`` is on.
        self.otlp_logs_level: str | None = None
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
        if self.logger_provider is not None:
            self.logger_provider.shutdown()
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


# The SDK's own variables, in the order the specification gives them precedence.
_ENDPOINT_VARIABLES = (
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def _env_endpoint() -> str | None:
    for variable in _ENDPOINT_VARIABLES:
        raw = os.environ.get(variable)
        if raw:
            if _valid_url(raw):
                return raw
            _warn_once(variable, raw, "printing traces to the terminal instead")
    return None


_EXTRAS = {"http/protobuf": "otlp", "grpc": "otlp-grpc"}


def _otlp_classes(
    protocol: str, traces: bool, metrics: bool, source: str
) -> tuple[Any, Any]:
    """The OTLP span and metric exporter classes needed (None where not needed).

    Imported before any global is set, so a missing extra leaves nothing half
    configured. One ImportError names the extra to install: the OTel error-handling
    spec lets setup fail fast on a bad environment, and an application that asked
    for OTLP would rather not start than silently print its traces to stderr.
    """
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )

            span_class: Any = GrpcSpanExporter
            metric_class: Any = GrpcMetricExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )

            span_class, metric_class = OTLPSpanExporter, OTLPMetricExporter
    except ImportError as exc:
        extra = _EXTRAS[protocol]
        # from None: the one error says what to do; the cause stays in the message.
        raise ImportError(
            f"lg_otel.configure: OTLP export over {protocol} ({source}) needs the "
            f"'{extra}' extra: pip install 'lg_otel[{extra}]' ({exc})",
            name=exc.name,
        ) from None
    return (span_class if traces else None), (metric_class if metrics else None)


def _grpc_target(endpoint: str) -> dict[str, Any]:
    parsed = urlparse(endpoint)
    return {"endpoint": parsed.netloc, "insecure": parsed.scheme == "http"}


def _span_exporter(span_class: Any, endpoint: str, protocol: str) -> Any:
    if protocol == "grpc":
        return span_class(**_grpc_target(endpoint))
    path = urlparse(endpoint).path
    url = (
        endpoint if path.endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
    )
    return span_class(endpoint=url)


def _metric_exporter(metric_class: Any, endpoint: str, protocol: str) -> Any:
    if protocol == "grpc":
        return metric_class(**_grpc_target(endpoint))
    return metric_class(endpoint=endpoint.rstrip("/") + "/v1/metrics")


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
    otlp_logs: bool | None = None,
) -> Telemetry:
    """Set up tracing, metrics and JSON logs for an application; idempotent.

    Traces go over OTLP when ``otlp_endpoint`` (or ``OTEL_EXPORTER_OTLP_*``) says so,
    otherwise to a readable tree on standard error. Metrics are served by
    prometheus_client at ``http://{metrics_host}:{metrics_port}/metrics``; with
    ``otlp_metrics=True`` they are also pushed over OTLP (then scrape one or the
    other, not both, or Prometheus counts twice). structlog renders JSON lines with
    the trace ids. A provider or structlog configuration the application already set
    is left alone. ``OTEL_SDK_DISABLED=true`` makes this a no-op.

    OTLP export needs an extra: ``pip install 'lg_otel[otlp]'`` for ``http/protobuf``
    (the default protocol), ``'lg_otel[otlp-grpc]'`` for ``grpc``.

    ``otlp_logs=True`` (or ``LG_OTEL_OTLP_LOGS=true``) also sends lg_otel's log
    events over OTLP, as OTel log records carrying their span's trace context, at
    ``log_level`` and above; graphs instrumented after this call emit them. They
    go to ``otlp_endpoint`` (``/v1/logs``), else to
    ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``, or to a
    global logger provider the application already set. The application's own
    structlog logs are not rerouted.

    Raises:
        ValueError: An argument is invalid (the message names it and the fix).
        ImportError: OTLP export was asked for (argument or environment) and the
            extra for its protocol is not installed; the message names the extra.
            Nothing has been set up then.
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
    if otlp_logs is not None and not isinstance(otlp_logs, bool):
        raise ValueError(
            f"configure(otlp_logs={otlp_logs!r}): expected True, False or None "
            "(None reads LG_OTEL_OTLP_LOGS)"
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
        tracing = isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        pushing = bool(endpoint) and otlp_metrics and _no_meter_provider()
        span_class, metric_class = (
            _otlp_classes(
                protocol,
                traces=tracing,
                metrics=pushing,
                source=_source(endpoint, otlp_endpoint, otlp_protocol, protocol),
            )
            if endpoint and (tracing or pushing)
            else (None, None)
        )
        # Decided (and its exporter imported) before any global is set, as above.
        log_exporter = _log_exporter(otlp_logs, otlp_endpoint, protocol)
        attributes = {SERVICE_NAME: service_name} if service_name else {}
        resource = Resource.create(attributes)
        if tracing:
            sampler = (
                ParentBased(TraceIdRatioBased(sampler_ratio))
                if sampler_ratio is not None
                else None  # the SDK reads OTEL_TRACES_SAMPLER itself
            )
            provider = TracerProvider(resource=resource, sampler=sampler)
            if endpoint:
                exporter = _span_exporter(span_class, endpoint, protocol)
                provider.add_span_processor(BatchSpanProcessor(exporter))
                handle.otlp_endpoint = endpoint
            else:
                provider.add_span_processor(ConsoleTreeProcessor())
            trace.set_tracer_provider(provider)
            handle.tracer_provider = provider
        if endpoint and pushing:
            exporter = _metric_exporter(metric_class, endpoint, protocol)
            reader = PeriodicExportingMetricReader(exporter)
            meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
            metrics.set_meter_provider(meter_provider)
            handle.meter_provider = meter_provider
        if log_exporter is not None:
            handle.otlp_logs_level = log_level
            if log_exporter is not _EXISTING:
                handle.logger_provider = _set_logger_provider(log_exporter, resource)
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


def _source(
    endpoint: str, otlp_endpoint: str | None, otlp_protocol: str | None, protocol: str
) -> str:
    """Which settings asked for OTLP, for the missing-extra message."""
    by_env = [v for v in _ENDPOINT_VARIABLES if os.environ.get(v) == endpoint]
    asked = ["otlp_endpoint"] if otlp_endpoint else by_env[:1]
    if otlp_protocol:
        asked.append(f"otlp_protocol={protocol!r}")
    elif os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") == protocol:
        asked.append(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}")
    return ", ".join(asked)


_EXISTING = object()  # otlp_logs goes to the logger provider the application set


def _no_logger_provider() -> bool:
    return type(_logs.get_logger_provider()).__name__.startswith("Proxy")


def _logs_target(otlp_endpoint: str | None, protocol: str) -> dict[str, Any] | None:
    """The OTLP log exporter's arguments, or None when no endpoint says where."""
    base = otlp_endpoint
    if base is None:
        full = os.environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
        if full and _valid_url(full):
            return _grpc_target(full) if protocol == "grpc" else {"endpoint": full}
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not base or not _valid_url(base):
            return None
    if protocol == "grpc":
        return _grpc_target(base)
    return {"endpoint": base.rstrip("/") + "/v1/logs"}


def _log_exporter(
    otlp_logs: bool | None, otlp_endpoint: str | None, protocol: str
) -> Any:
    """What ``otlp_logs`` sends to: an exporter, ``_EXISTING``, or None (off)."""
    asked = otlp_logs is True
    if otlp_logs is None:
        otlp_logs = Config().resolve().otlp_logs
    if not otlp_logs:
        return None
    check_logs_api()
    if not _no_logger_provider():
        return _EXISTING
    target = _logs_target(otlp_endpoint, protocol)
    if target is None:
        if asked:
            raise ValueError(
                "configure(otlp_logs=True): no OTLP endpoint for the logs; pass "
                "otlp_endpoint='http://...:4318' or set OTEL_EXPORTER_OTLP_ENDPOINT "
                "(or OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)"
            )
        if "otlp_logs" not in _warned:
            _warned.add("otlp_logs")
            warnings.warn(
                "lg_otel.configure: LG_OTEL_OTLP_LOGS is on but no OTLP endpoint "
                "is set (OTEL_EXPORTER_OTLP_ENDPOINT); OTLP logs stay off",
                RuntimeWarning,
                stacklevel=3,
            )
        return None
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
                OTLPLogExporter as GrpcLogExporter,
            )

            exporter_class: Any = GrpcLogExporter
        else:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import (
                OTLPLogExporter,
            )

            exporter_class = OTLPLogExporter
    except ImportError as exc:
        extra = _EXTRAS[protocol]
        raise ImportError(
            f"lg_otel.configure: OTLP logs over {protocol} (otlp_logs) need the "
            f"'{extra}' extra: pip install 'lg_otel[{extra}]' ({exc})",
            name=exc.name,
        ) from None
    return exporter_class(**target)


def _set_logger_provider(exporter: Any, resource: Resource) -> Any:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    _logs.set_logger_provider(provider)
    return provider


def otlp_logs_level() -> str | None:
    """The minimum level of OTel log records ``configure(otlp_logs=...)`` asked for.

    None when ``configure()`` did not turn OTLP logs on (or was shut down).
    """
    handle = _handle
    return handle.otlp_logs_level if handle is not None else None


def _no_meter_provider() -> bool:
    # The API's default is a proxy until an application sets a real provider.
    return type(metrics.get_meter_provider()).__name__.startswith("_Proxy")


__all__ = ["Telemetry", "configure"]
