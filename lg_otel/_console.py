"""A readable terminal view of traces: each finished trace printed as an indented tree.

The embedded default of ``configure()`` when no OTLP endpoint is set, so a newcomer
sees what lg_otel records without running any server.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from lg_otel import _names as n

_KEYS = (
    n.ATTR_STATUS,
    n.ATTR_STEP,
    n.ATTR_TIME_TO_FIRST_CHUNK,
    n.ATTR_USAGE_OUTPUT_TOKENS,
    n.ATTR_ERROR_TYPE,
)
#: Spans buffered per trace at most; a larger trace is printed as it stands.
_MAX_SPANS = 2_000


class ConsoleTreeProcessor(SpanProcessor):
    """Buffers a trace's spans and prints the tree when its local root ends."""

    def __init__(self, out: IO[str] | None = None) -> None:
        """Print to ``out`` (standard error by default)."""
        self._out = out
        self._lock = threading.Lock()
        self._open: dict[int, int] = {}  # trace id -> spans started, not yet ended
        self._done: dict[int, list[ReadableSpan]] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Count the span as open in its trace."""
        trace_id = span.context.trace_id
        with self._lock:
            self._open[trace_id] = self._open.get(trace_id, 0) + 1

    def on_end(self, span: ReadableSpan) -> None:
        """Collect the span; print the trace once nothing in it is open."""
        trace_id = span.context.trace_id
        with self._lock:
            spans = self._done.setdefault(trace_id, [])
            spans.append(span)
            left = self._open.get(trace_id, 1) - 1
            if left > 0 and len(spans) < _MAX_SPANS:
                self._open[trace_id] = left
                return
            self._open.pop(trace_id, None)
            finished = self._done.pop(trace_id)
        self._print(finished)

    def _print(self, spans: list[ReadableSpan]) -> None:
        out = self._out or sys.stderr
        ids = {s.context.span_id for s in spans}
        children: dict[int | None, list[ReadableSpan]] = {}
        for s in spans:
            parent = s.parent.span_id if s.parent else None
            children.setdefault(parent if parent in ids else None, []).append(s)
        lines = [f"trace {spans[0].context.trace_id:032x}"]

        def walk(s: ReadableSpan, depth: int) -> None:
            ms = ((s.end_time or 0) - (s.start_time or 0)) / 1e6
            attrs: Any = s.attributes or {}
            extra = " ".join(
                f"{k.rsplit('.', 1)[-1]}={_fmt(attrs[k])}" for k in _KEYS if k in attrs
            )
            lines.append(f"  {'  ' * depth}{s.name:<32} {ms:9.1f} ms  {extra}")
            for child in sorted(
                children.get(s.context.span_id, []), key=lambda c: c.start_time or 0
            ):
                walk(child, depth + 1)

        for root in sorted(children.get(None, []), key=lambda c: c.start_time or 0):
            walk(root, 0)
        # A leading newline: the tree often follows streamed text on the same line.
        out.write("\n" + "\n".join(lines) + "\n")
        out.flush()

    def shutdown(self) -> None:
        """Print whatever is still buffered."""
        with self._lock:
            pending = list(self._done.values())
            self._done.clear()
            self._open.clear()
        for spans in pending:
            self._print(spans)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is queued asynchronously."""
        return True


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
