"""Behaviour settings: explicit argument → environment variable → documented default.

``Config`` is frozen and validated when built (bad arguments raise at setup, naming
the field and the fix); ``Config.resolve()`` fills what was left unset from the
environment, where a bad value warns once and falls back to the default.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lg_otel import _names as n

#: Content-capture modes, as the OTel GenAI instrumentations spell them.
CAPTURE_MODES = (
    n.CAPTURE_NO_CONTENT,
    n.CAPTURE_SPAN_ONLY,
    n.CAPTURE_EVENT_ONLY,
    n.CAPTURE_SPAN_AND_EVENT,
)
_LEGACY_TRUE = ("true", "1", "yes", "on")
_LEGACY_FALSE = ("false", "0", "no", "off", "")
_warned: set[str] = set()


def _warn_once(variable: str, value: str, fallback: object) -> None:
    if variable in _warned:
        return
    _warned.add(variable)
    shown = "the default" if fallback is None else repr(fallback)
    warnings.warn(
        f"lg_otel: ignoring {variable}={value!r} (invalid); using {shown}",
        RuntimeWarning,
        stacklevel=4,
    )


def _capture_mode(value: str) -> str | None:
    upper = value.strip().upper()
    if upper in CAPTURE_MODES:
        return upper
    lower = value.strip().lower()
    if lower in _LEGACY_TRUE:
        return n.CAPTURE_SPAN_ONLY
    if lower in _LEGACY_FALSE:
        return n.CAPTURE_NO_CONTENT
    return None


def _positive_int(value: str) -> int | None:
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number > 0 else None


def _flag(value: str) -> bool | None:
    lower = value.strip().lower()
    if lower in _LEGACY_TRUE:
        return True
    if lower in _LEGACY_FALSE[:-1]:
        return False
    return None


@dataclass(frozen=True, slots=True)
class Config:
    """How lg_otel behaves for one instrumented graph.

    Every field left ``None`` is read from its environment variable by
    :meth:`resolve`, else takes its documented default.

    Attributes:
        graph_name: Name used in span names and metric labels; defaults to the
            graph's own name (``graph.get_name()``; LangGraph's default is
            ``LangGraph``).
        capture_content: ``NO_CONTENT`` (default), ``SPAN_ONLY``, ``EVENT_ONLY`` or
            ``SPAN_AND_EVENT``; env
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (legacy ``true``
            means ``SPAN_ONLY``).
        max_content_length: Captured content is truncated to this many characters
            per value (default 4096; env ``LG_OTEL_MAX_CONTENT_LENGTH``).
        redact: Called on every captured string before truncation; its result is
            what leaves the process. If it raises, the value is dropped.
        logs: Emit structlog events (env ``LG_OTEL_LOGS``). Default: decided as
            each run starts, on when structlog is configured at that moment
            (``structlog.configure()`` or ``structlog.testing.capture_logs()``),
            so configuring structlog after ``instrument()`` works.
        metrics: Record metrics (default on; env ``LG_OTEL_METRICS``).
        max_label_values: Distinct node or model names kept per metric label before
            further ones become ``other`` (default 200; env
            ``LG_OTEL_MAX_LABEL_VALUES``).
        max_interrupted_threads: How many threads' interrupted-run span contexts are
            remembered, so a resumed run can link to the run it resumes (default
            10,000; oldest forgotten first).
        persist_links: Also save each run span's W3C traceparent in the run's
            checkpoint metadata (key ``lg_otel_traceparent``), so a run resumed
            with ``Command(resume=...)`` links to the interrupted run even in another
            process (default off; env ``LG_OTEL_PERSIST_LINKS``). The key then
            shows in what LangGraph stores and in ``checkpoints``/``debug`` parts.
        otlp_logs: Also emit every log event as an OpenTelemetry log record (env
            ``LG_OTEL_OTLP_LOGS``), through ``instrument(logger_provider=...)`` or
            the global logger provider. Default: on when ``instrument()`` is given
            a logger provider or ``configure(otlp_logs=True)`` ran before it.
        per_chunk_metrics: Record ``gen_ai.client.operation.time_per_output_chunk``
            as the semantic conventions define it, one observation per streamed
            chunk after the first (env ``LG_OTEL_PER_CHUNK_METRICS``). Default off:
            that costs more per chunk than lg_otel's per-chunk budget, so the name
            is then not recorded at all and the per-call mean goes to
            ``langgraph.llm.time_per_output_chunk``.
    """

    graph_name: str | None = None
    capture_content: str | None = None
    max_content_length: int | None = None
    redact: Callable[[str], str] | None = None
    logs: bool | None = None
    metrics: bool | None = None
    max_label_values: int | None = None
    max_interrupted_threads: int = 10_000
    persist_links: bool | None = None
    otlp_logs: bool | None = None
    per_chunk_metrics: bool | None = None

    def __post_init__(self) -> None:
        """Reject bad values at setup, naming the field and the fix."""
        if self.graph_name is not None and (
            not isinstance(self.graph_name, str) or not self.graph_name.strip()
        ):
            raise ValueError(
                "Config.graph_name must be a non-empty string or None "
                f"(got {self.graph_name!r}); pass None to use the graph's own name"
            )
        if self.capture_content is not None and (
            not isinstance(self.capture_content, str)
            or _capture_mode(self.capture_content) is None
        ):
            raise ValueError(
                f"Config.capture_content must be one of {', '.join(CAPTURE_MODES)} "
                f"(got {self.capture_content!r})"
            )
        for field in ("max_content_length", "max_label_values"):
            value = getattr(self, field)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value <= 0
            ):
                raise ValueError(
                    f"Config.{field} must be a positive int or None (got {value!r})"
                )
        if (
            not isinstance(self.max_interrupted_threads, int)
            or isinstance(self.max_interrupted_threads, bool)
            or self.max_interrupted_threads < 0
        ):
            raise ValueError(
                "Config.max_interrupted_threads must be an int >= 0 "
                f"(got {self.max_interrupted_threads!r})"
            )
        if self.redact is not None and not callable(self.redact):
            raise TypeError(
                "Config.redact must be a callable taking and returning a str "
                f"(got {type(self.redact).__name__})"
            )
        for field in (
            "logs",
            "metrics",
            "persist_links",
            "otlp_logs",
            "per_chunk_metrics",
        ):
            value = getattr(self, field)
            if value is not None and not isinstance(value, bool):
                raise TypeError(f"Config.{field} must be True, False or None")

    def resolve(self, environ: dict[str, str] | None = None, **defaults: Any) -> Config:
        """Fill unset fields from the environment, then from ``defaults``/built-ins.

        ``resolve(logs=None)`` keeps ``logs`` None when neither the field nor
        ``LG_OTEL_LOGS`` set it: ``instrument()`` then decides per run.
        """
        env = os.environ if environ is None else environ

        def pick(field: str, variable: str, parse: Any, default: Any) -> Any:
            value = getattr(self, field)
            if value is not None:
                return value
            raw = env.get(variable)
            if raw is not None:
                parsed = parse(raw)
                if parsed is not None:
                    return parsed
                _warn_once(variable, raw, default)
            return default

        capture = self.capture_content
        return replace(
            self,
            capture_content=(
                _capture_mode(capture)
                if capture is not None
                else pick(
                    "capture_content",
                    n.ENV_CAPTURE_CONTENT,
                    _capture_mode,
                    n.CAPTURE_NO_CONTENT,
                )
            ),
            max_content_length=pick(
                "max_content_length", n.ENV_MAX_CONTENT_LENGTH, _positive_int, 4096
            ),
            logs=pick("logs", n.ENV_LOGS, _flag, defaults.get("logs", False)),
            metrics=pick("metrics", n.ENV_METRICS, _flag, True),
            persist_links=pick("persist_links", n.ENV_PERSIST_LINKS, _flag, False),
            # None (undecided) unless set: instrument() decides, as documented above.
            otlp_logs=pick(
                "otlp_logs", n.ENV_OTLP_LOGS, _flag, defaults.get("otlp_logs")
            ),
            max_label_values=pick(
                "max_label_values", n.ENV_MAX_LABEL_VALUES, _positive_int, 200
            ),
            per_chunk_metrics=pick(
                "per_chunk_metrics", n.ENV_PER_CHUNK_METRICS, _flag, False
            ),
        )
