"""The boundary guard: telemetry failures are swallowed, counted and logged at debug.

Each sink is wrapped once, here, so no call site needs its own try/except (the
pattern of OTel util-genai's ``_SafeCompletionHook``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from lg_otel._records import LlmRecord, RunRecord, Sink, TaskRecord, ToolRecord

_log = logging.getLogger("lg_otel")


class InternalErrors:
    """Counts swallowed telemetry failures per component; thread-safe."""

    def __init__(self) -> None:
        """Start with no errors and no listeners."""
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self._listeners: list[Callable[[str], None]] = []

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(component)`` on every error (a metrics counter, say)."""
        self._listeners.append(listener)

    def record(self, component: str, error: BaseException) -> None:
        """Count one swallowed failure of ``component``."""
        with self._lock:
            self.counts[component] = self.counts.get(component, 0) + 1
        _log.debug("lg_otel %s failed: %r", component, error, exc_info=error)
        for listener in self._listeners:
            try:
                listener(component)
            except Exception:  # noqa: BLE001 - the counter itself must not fail a run
                _log.debug("lg_otel internal error listener failed", exc_info=True)

    def total(self) -> int:
        """All errors counted so far."""
        with self._lock:
            return sum(self.counts.values())


class GuardedSink:
    """Forwards each record to one sink, swallowing and counting its failures."""

    __slots__ = ("_component", "_errors", "_sink")

    def __init__(self, sink: Sink, component: str, errors: InternalErrors) -> None:
        """Guard ``sink``; failures count under ``component``."""
        self._sink = sink
        self._component = component
        self._errors = errors

    def _call(self, method: str, *args: Any) -> None:
        try:
            getattr(self._sink, method)(*args)
        except Exception as exc:  # noqa: BLE001 - a sink failure must not reach the host
            self._errors.record(self._component, exc)

    def run_started(self, run: RunRecord) -> None:
        """Guarded :meth:`Sink.run_started`."""
        self._call("run_started", run)

    def run_ended(self, run: RunRecord) -> None:
        """Guarded :meth:`Sink.run_ended`."""
        self._call("run_ended", run)

    def run_first_token(self, run: RunRecord) -> None:
        """Guarded :meth:`Sink.run_first_token`."""
        self._call("run_first_token", run)

    def task_started(self, run: RunRecord, task: TaskRecord) -> None:
        """Guarded :meth:`Sink.task_started`."""
        self._call("task_started", run, task)

    def task_ended(self, run: RunRecord, task: TaskRecord) -> None:
        """Guarded :meth:`Sink.task_ended`."""
        self._call("task_ended", run, task)

    def llm_started(self, run: RunRecord, llm: LlmRecord) -> None:
        """Guarded :meth:`Sink.llm_started`."""
        self._call("llm_started", run, llm)

    def llm_first_chunk(self, run: RunRecord, llm: LlmRecord) -> None:
        """Guarded :meth:`Sink.llm_first_chunk`."""
        self._call("llm_first_chunk", run, llm)

    def llm_ended(self, run: RunRecord, llm: LlmRecord) -> None:
        """Guarded :meth:`Sink.llm_ended`."""
        self._call("llm_ended", run, llm)

    def tool_started(self, run: RunRecord, tool: ToolRecord) -> None:
        """Guarded :meth:`Sink.tool_started`."""
        self._call("tool_started", run, tool)

    def tool_ended(self, run: RunRecord, tool: ToolRecord) -> None:
        """Guarded :meth:`Sink.tool_ended`."""
        self._call("tool_ended", run, tool)


class FanOut:
    """Hands each record to several (guarded) sinks in order."""

    __slots__ = ("_sinks",)

    def __init__(self, sinks: list[Sink]) -> None:
        """Fan out to ``sinks``."""
        self._sinks = tuple(sinks)

    def run_started(self, run: RunRecord) -> None:
        """Fan out :meth:`Sink.run_started`."""
        for sink in self._sinks:
            sink.run_started(run)

    def run_ended(self, run: RunRecord) -> None:
        """Fan out :meth:`Sink.run_ended`."""
        for sink in self._sinks:
            sink.run_ended(run)

    def run_first_token(self, run: RunRecord) -> None:
        """Fan out :meth:`Sink.run_first_token`."""
        for sink in self._sinks:
            sink.run_first_token(run)

    def task_started(self, run: RunRecord, task: TaskRecord) -> None:
        """Fan out :meth:`Sink.task_started`."""
        for sink in self._sinks:
            sink.task_started(run, task)

    def task_ended(self, run: RunRecord, task: TaskRecord) -> None:
        """Fan out :meth:`Sink.task_ended`."""
        for sink in self._sinks:
            sink.task_ended(run, task)

    def llm_started(self, run: RunRecord, llm: LlmRecord) -> None:
        """Fan out :meth:`Sink.llm_started`."""
        for sink in self._sinks:
            sink.llm_started(run, llm)

    def llm_first_chunk(self, run: RunRecord, llm: LlmRecord) -> None:
        """Fan out :meth:`Sink.llm_first_chunk`."""
        for sink in self._sinks:
            sink.llm_first_chunk(run, llm)

    def llm_ended(self, run: RunRecord, llm: LlmRecord) -> None:
        """Fan out :meth:`Sink.llm_ended`."""
        for sink in self._sinks:
            sink.llm_ended(run, llm)

    def tool_started(self, run: RunRecord, tool: ToolRecord) -> None:
        """Fan out :meth:`Sink.tool_started`."""
        for sink in self._sinks:
            sink.tool_started(run, tool)

    def tool_ended(self, run: RunRecord, tool: ToolRecord) -> None:
        """Fan out :meth:`Sink.tool_ended`."""
        for sink in self._sinks:
            sink.tool_ended(run, tool)
