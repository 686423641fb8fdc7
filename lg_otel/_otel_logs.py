"""The OTel logs sink: lg_otel's log events as OpenTelemetry log records.

The only module that touches the OpenTelemetry Logs API. It is the structlog sink
(:class:`~lg_otel._logs.LogSink`) with another way out: the same events, built by
the same code with the same fields, each emitted as one log record through a
``Logger`` of the ``lg_otel`` scope. Each record carries

- the span the event is about as its own trace context (``trace_id``, ``span_id``
  and trace flags of the record, where OTLP backends join logs to traces), so the
  hex ``trace_id``/``span_id`` fields are not repeated as attributes;
- severity from the event's level (``debug`` → DEBUG, ``info`` → INFO,
  ``error`` → ERROR), and the event name as body and ``event_name``;
- the event's other fields as attributes (``None`` values left out), and for a
  failure's first report the exception as ``exception.type`` / ``.message`` /
  ``.stacktrace``.

Only lg_otel's own events go here: the application's structlog or stdlib logs are
not rerouted.
"""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.context import Context

from lg_otel import _names as n
from lg_otel._logs import LogSink, RunLog
from lg_otel._records import SPAN_SLOT

try:
    _VERSION = version("lg_otel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0"

#: Level name -> (severity number, severity text).
SEVERITIES: Mapping[str, tuple[_logs.SeverityNumber, str]] = {
    "debug": (_logs.SeverityNumber.DEBUG, "DEBUG"),
    "info": (_logs.SeverityNumber.INFO, "INFO"),
    "warning": (_logs.SeverityNumber.WARN, "WARN"),
    "error": (_logs.SeverityNumber.ERROR, "ERROR"),
}
_DEBUG = SEVERITIES["debug"][0].value
# The hex ids travel in the record's own trace context instead.
_IN_CONTEXT = frozenset(("trace_id", "span_id"))
_SCALARS = (str, bool, int, float)


def check_logs_api() -> None:
    """Fail at setup if the installed Logs API cannot carry a trace context.

    ``LogRecord(context=..., event_name=...)`` arrived in opentelemetry-api 1.35;
    older releases take trace ids one by one, which later releases deprecate.
    """
    parameters = inspect.signature(_logs.LogRecord.__init__).parameters
    if "context" not in parameters or "event_name" not in parameters:
        raise ImportError(
            "lg_otel: OTel log records need opentelemetry-api and opentelemetry-sdk "
            ">= 1.36 (LogRecord(context=...)); upgrade them or leave OTLP logs off"
        )


def _attribute(value: Any) -> Any:
    """An OTel attribute value: scalars and lists of scalars as they are, else str."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, _SCALARS) for v in value):
        return list(value)
    return str(value)


class OtelLogSink(LogSink):
    """Emits each lg_otel log event as an OTel log record."""

    _state_slot = "otel_log_state"

    def __init__(self, logger_provider: Any, minimum: str = "debug") -> None:
        """Get the ``lg_otel`` logger of ``logger_provider`` (global when None).

        Events below ``minimum`` (a level name) are not emitted.
        """
        check_logs_api()
        self._logger = _logs.get_logger(
            n.SCOPE_NAME,
            _VERSION,
            logger_provider=logger_provider,
            schema_url=n.SCHEMA_URL,
        )
        self._minimum = SEVERITIES[minimum][0].value

    def _run_log(self) -> RunLog:
        """A run's state: debug events are built only if they would be emitted."""
        return RunLog(None, self._minimum <= _DEBUG)

    def _emit(
        self, state: RunLog | None, owner: Any, level: str, event: str, fields: Any
    ) -> None:
        severity, text = SEVERITIES[level]
        if severity.value < self._minimum:
            return
        attributes: dict[str, Any] = {}
        for key, value in fields.items():
            if value is None or key in _IN_CONTEXT:
                continue
            if key == n.FIELD_EXC_INFO and isinstance(value, BaseException):
                attributes[n.ATTR_EXCEPTION_TYPE] = type(value).__qualname__
                attributes[n.ATTR_EXCEPTION_MESSAGE] = str(value)
                attributes[n.ATTR_EXCEPTION_STACKTRACE] = "".join(
                    traceback.format_exception(value)
                )
                continue
            attributes[key] = _attribute(value)
        span = owner.slots.get(SPAN_SLOT)
        # An empty base, not the current context: that may hold an unrelated span.
        context = (
            trace.set_span_in_context(span, Context())
            if span is not None
            else Context()
        )
        self._logger.emit(
            _logs.LogRecord(
                timestamp=time.time_ns(),
                context=context,
                severity_number=severity,
                severity_text=text,
                body=event,
                attributes=attributes,
                event_name=event,
            )
        )
