"""The boundary guard: telemetry failures are swallowed, counted and logged at debug.

Every sink call goes through :class:`FanOut`, here, so no call site needs its own
try/except (the pattern of OTel util-genai's ``_SafeCompletionHook``).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from lg_otel._records import (
    CheckpointRecord,
    LlmRecord,
    NullSink,
    RunRecord,
    Sink,
    StoreRecord,
    TaskRecord,
    ToolRecord,
)

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


#: The sink events, in the protocol's order.
_EVENTS = (
    "run_started",
    "run_ended",
    "run_first_token",
    "run_first_chunk",
    "task_started",
    "task_ended",
    "llm_started",
    "llm_first_chunk",
    "llm_ended",
    "tool_started",
    "tool_ended",
    "checkpoint_started",
    "checkpoint_ended",
    "store_started",
    "store_ended",
    "checkpoint_done",
    "store_done",
)
#: Events whose default makes others: a sink that overrides any of them takes it.
_MADE_OF = {
    "checkpoint_done": ("checkpoint_started", "checkpoint_ended"),
    "store_done": ("store_started", "store_ended"),
}

_Calls = tuple[tuple[Callable[..., None], str], ...]
#: The events of a checkpointer or store call, and those they are made of.
_CALL_EVENTS = tuple(
    e for event in ("checkpoint_done", "store_done") for e in (event, *_MADE_OF[event])
)


class FanOut:
    """Hands each record to several sinks in order, guarding each one.

    A sink's failure is swallowed and counted under that sink's component, and the
    next sink still gets the record. This sits on the hot path (several calls per
    node task), so each event keeps a precomputed tuple of bound methods and skips
    sinks that inherit :class:`NullSink`'s no-op for it.
    """

    __slots__ = ("_calls_done", "_errors", *(f"_{event}" for event in _EVENTS))

    _run_started: _Calls
    _run_ended: _Calls
    _run_first_token: _Calls
    _run_first_chunk: _Calls
    _task_started: _Calls
    _task_ended: _Calls
    _llm_started: _Calls
    _llm_first_chunk: _Calls
    _llm_ended: _Calls
    _tool_started: _Calls
    _tool_ended: _Calls
    _checkpoint_started: _Calls
    _checkpoint_ended: _Calls
    _store_started: _Calls
    _store_ended: _Calls
    _checkpoint_done: _Calls
    _store_done: _Calls

    def __init__(
        self, sinks: Sequence[tuple[Sink, str]], errors: InternalErrors
    ) -> None:
        """Fan out to ``(sink, component)`` pairs; failures count in ``errors``."""
        self._errors = errors
        for event in _EVENTS:
            events = (event, *_MADE_OF.get(event, ()))
            calls: _Calls = tuple(
                (getattr(sink, event), component)
                for sink, component in sinks
                if any(
                    getattr(type(sink), e, None) is not getattr(NullSink, e)
                    for e in events
                )
            )
            setattr(self, f"_{event}", calls)
        # The sinks that take a call's events, in order, each with what counts
        # its failures: calls_done()'s.
        self._calls_done: tuple[tuple[Any, Callable[[BaseException], None]], ...] = (
            tuple(
                (sink.calls_done, functools.partial(errors.record, component))
                for sink, component in sinks
                if any(
                    getattr(type(sink), e, None) is not getattr(NullSink, e)
                    for e in _CALL_EVENTS
                )
            )
        )

    def _fire(self, calls: _Calls, *args: Any) -> None:
        for call, component in calls:
            try:
                call(*args)
            except Exception as exc:  # noqa: BLE001 - a sink must not reach the host
                self._errors.record(component, exc)

    def run_started(self, run: RunRecord) -> None:
        """Fan out :meth:`Sink.run_started`."""
        self._fire(self._run_started, run)

    def run_ended(self, run: RunRecord) -> None:
        """Fan out :meth:`Sink.run_ended`."""
        self._fire(self._run_ended, run)

    def run_first_token(self, run: RunRecord) -> None:
        """Fan out :meth:`Sink.run_first_token`."""
        self._fire(self._run_first_token, run)

    def run_first_chunk(self, run: RunRecord) -> None:
        """Fan out :meth:`Sink.run_first_chunk`."""
        self._fire(self._run_first_chunk, run)

    # The events of every node task and every saver call: the fan-out inline, one
    # call fewer each (store calls are rarer and go through _fire).

    def task_started(self, run: RunRecord, task: TaskRecord) -> None:
        """Fan out :meth:`Sink.task_started`."""
        for call, component in self._task_started:
            try:
                call(run, task)
            except Exception as exc:  # noqa: BLE001 - a sink must not reach the host
                self._errors.record(component, exc)

    def task_ended(self, run: RunRecord, task: TaskRecord) -> None:
        """Fan out :meth:`Sink.task_ended`."""
        for call, component in self._task_ended:
            try:
                call(run, task)
            except Exception as exc:  # noqa: BLE001 - a sink must not reach the host
                self._errors.record(component, exc)

    def llm_started(self, run: RunRecord, llm: LlmRecord) -> None:
        """Fan out :meth:`Sink.llm_started`."""
        self._fire(self._llm_started, run, llm)

    def llm_first_chunk(self, run: RunRecord, llm: LlmRecord) -> None:
        """Fan out :meth:`Sink.llm_first_chunk`."""
        self._fire(self._llm_first_chunk, run, llm)

    def llm_ended(self, run: RunRecord, llm: LlmRecord) -> None:
        """Fan out :meth:`Sink.llm_ended`."""
        self._fire(self._llm_ended, run, llm)

    def tool_started(self, run: RunRecord, tool: ToolRecord) -> None:
        """Fan out :meth:`Sink.tool_started`."""
        self._fire(self._tool_started, run, tool)

    def tool_ended(self, run: RunRecord, tool: ToolRecord) -> None:
        """Fan out :meth:`Sink.tool_ended`."""
        self._fire(self._tool_ended, run, tool)

    def checkpoint_started(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        """Fan out :meth:`Sink.checkpoint_started`."""
        for fn, component in self._checkpoint_started:
            try:
                fn(run, call)
            except Exception as exc:  # noqa: BLE001 - a sink must not reach the host
                self._errors.record(component, exc)

    def checkpoint_ended(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        """Fan out :meth:`Sink.checkpoint_ended`."""
        for fn, component in self._checkpoint_ended:
            try:
                fn(run, call)
            except Exception as exc:  # noqa: BLE001 - a sink must not reach the host
                self._errors.record(component, exc)

    def store_started(self, run: RunRecord | None, call: StoreRecord) -> None:
        """Fan out :meth:`Sink.store_started`."""
        self._fire(self._store_started, run, call)

    def store_ended(self, run: RunRecord | None, call: StoreRecord) -> None:
        """Fan out :meth:`Sink.store_ended`."""
        self._fire(self._store_ended, run, call)

    def checkpoint_done(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        """Fan out :meth:`Sink.checkpoint_done`."""
        for fn, component in self._checkpoint_done:
            try:
                fn(run, call)
            except Exception as exc:  # noqa: BLE001 - a sink must not reach the host
                self._errors.record(component, exc)

    def store_done(self, run: RunRecord | None, call: StoreRecord) -> None:
        """Fan out :meth:`Sink.store_done`."""
        self._fire(self._store_done, run, call)

    def calls_done(
        self,
        run: RunRecord,
        calls: Sequence[CheckpointRecord | StoreRecord],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Fan out :meth:`Sink.calls_done`: each sink takes every call in turn,
        each call guarded alone (counted under the sink's component), so a
        failure loses only that call's telemetry in that sink. The spans sink
        first, as for one call: the others read the span it stored. (Failures are
        counted here: ``on_error`` is not used.)"""
        for calls_done, failed in self._calls_done:
            try:
                calls_done(run, calls, failed)
            except Exception as exc:  # noqa: BLE001 - a sink must not reach the host
                failed(exc)
