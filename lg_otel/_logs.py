"""The log sink: one structlog event per lifecycle point, carrying the trace ids.

The only module that touches structlog. It logs to ``structlog.get_logger("lg_otel")``
and never configures structlog. Levels keep production logs quiet: per-task, per-tool
and first-token events are ``debug``; run ends, interrupts and model-call ends are
``info``; failures are ``error``. Content never goes to logs.

Each run ends with one line: ``run.end``, or ``run.interrupt`` for a run paused by
``interrupt()``. An exception's traceback is logged once per run, on the first event
that reports it (the ``task.end`` of the node that raised it, or the ``llm.end`` /
``tool.end`` of a failed model or tool call inside it); later events about the same
exception say ``status=error`` and ``error.type`` only, and a failed ``run.end`` names
the task (``failed_node``, ``failed_task_id``) instead of repeating the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

from lg_otel import _names as n
from lg_otel._records import SPAN_SLOT as _SPAN
from lg_otel._records import (
    LlmRecord,
    NullSink,
    RunRecord,
    TaskRecord,
    ToolRecord,
    raised_by_call,
)
from lg_otel._spans import error_type

#: Run slot holding the log sink's per-run state (a :class:`RunLog`).
_STATE = "log_state"


class RunLog:
    """What the log sink remembers about one run until the run ends."""

    __slots__ = ("debug", "failed", "log", "logged")

    def __init__(self, log: Any, debug: bool) -> None:
        #: The logger as configured when the run started (bound once per run).
        self.log = log
        #: Whether debug events would go anywhere: if not, none is even built.
        self.debug = debug
        #: Exceptions whose traceback this run already logged, by id (the value
        #: keeps the object alive so its id cannot be reused within the run).
        self.logged: dict[int, BaseException] = {}
        #: Failed tasks in the order they ended: (exception, node, task id).
        self.failed: list[tuple[BaseException | None, str, str]] = []

    def failed_task(self, error: BaseException | None) -> tuple[str, str] | None:
        """The (node, task id) whose failure ``error`` is, else the first failed."""
        for exc, node, task_id in self.failed:
            if exc is error:
                return node, task_id
        if self.failed:
            _, node, task_id = self.failed[0]
            return node, task_id
        return None


def _debug_enabled(log: Any) -> bool:
    """Whether a structlog bound logger lets debug events through.

    structlog's filtering loggers and its stdlib ``BoundLogger`` answer
    ``is_enabled_for``; for anything else assume they do (and let it filter).
    """
    check = getattr(log, "is_enabled_for", None) or getattr(log, "isEnabledFor", None)
    if not callable(check):
        return True
    try:
        return bool(check(logging.DEBUG))
    except Exception:  # noqa: BLE001 - an odd logger: let it decide per event
        return True


def _failure(
    state: RunLog | None,
    error: BaseException | None,
    fields: dict[str, Any],
    run: RunRecord,
) -> None:
    """Add ``error.type``, and the exception itself the first time this run sees it
    (never one a saver or store raised: its message can quote keys and values)."""
    fields[n.FIELD_ERROR_TYPE] = (
        error_type(error) if error is not None else n.ERROR_TYPE_OTHER
    )
    if error is None or raised_by_call(run, error):
        return
    if state is not None:
        if id(error) in state.logged:
            return
        state.logged[id(error)] = error
    fields[n.FIELD_EXC_INFO] = error


def _ids(record: Any) -> dict[str, str]:
    span = record.slots.get(_SPAN)
    if span is None:
        return {}
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}


def _seconds(start: int, end: int | None) -> float | None:
    return None if end is None else max(end - start, 0) / 1e9


class LogSink(NullSink):
    """Writes lifecycle events to the ``lg_otel`` structlog logger."""

    #: Run slot of this sink's per-run state; another sink built on this one
    #: (the OTel logs sink) keeps its own.
    _state_slot = _STATE

    def __init__(self) -> None:
        """Bind the ``lg_otel`` logger (structlog resolves its config lazily)."""
        self._log = structlog.get_logger(n.SCOPE_NAME)

    def _run_log(self) -> RunLog:
        """A run's state, with structlog as configured now (once per run)."""
        log = self._log.bind()
        return RunLog(log, _debug_enabled(log))

    def _emit(
        self, state: RunLog | None, owner: Any, level: str, event: str, fields: Any
    ) -> None:
        """Write one event; ``owner`` is the record whose span it is about.

        The one place events leave this class: the OTel logs sink overrides it, so
        both sinks share how every event and its fields are built.
        """
        log = state.log if state is not None else self._log
        getattr(log, level)(event, **fields)

    def run_started(self, run: RunRecord) -> None:
        """``run.start`` (debug)."""
        state = run.slots[self._state_slot] = self._run_log()
        if state.debug:
            fields = {"graph": run.graph, "thread_id": run.thread_id, **_ids(run)}
            self._emit(state, run, "debug", n.LOG_RUN_START, fields)

    def run_ended(self, run: RunRecord) -> None:
        """One line: ``run.interrupt`` (info) when paused, else ``run.end``.

        ``run.end`` is info, or error on failure: then it names the failed task and
        carries the exception only if no earlier event of the run logged it.
        """
        state: RunLog | None = run.slots.pop(self._state_slot, None)
        fields: dict[str, Any] = {
            "graph": run.graph,
            "thread_id": run.thread_id,
            "status": run.status,
            "duration_s": _seconds(run.start_ns, run.end_ns),
            **_ids(run),
        }
        if run.first_token_ns is not None:
            fields["ttft_s"] = _seconds(run.start_ns, run.first_token_ns)
        if run.consumer_wait_ns:
            fields["consumer_wait_s"] = run.consumer_wait_ns / 1e9
        if run.status == n.STATUS_INTERRUPTED:
            self._emit(state, run, "info", n.LOG_RUN_INTERRUPT, fields)
        elif run.status == n.STATUS_ERROR:
            failed = state.failed_task(run.error) if state is not None else None
            if failed is not None:
                fields[n.FIELD_FAILED_NODE], fields[n.FIELD_FAILED_TASK_ID] = failed
            _failure(state, run.error, fields, run)
            self._emit(state, run, "error", n.LOG_RUN_END, fields)
        else:
            self._emit(state, run, "info", n.LOG_RUN_END, fields)

    def _task_fields(self, run: RunRecord, task: TaskRecord) -> dict[str, Any]:
        return {
            "graph": run.graph,
            "node": task.name,
            "step": task.step,
            "task_id": task.task_id,
            **_ids(task),
        }

    def task_started(self, run: RunRecord, task: TaskRecord) -> None:
        """``task.start`` (debug)."""
        state = run.slots.get(self._state_slot)
        if state is None or state.debug:
            fields = self._task_fields(run, task)
            self._emit(state, task, "debug", n.LOG_TASK_START, fields)

    def task_ended(self, run: RunRecord, task: TaskRecord) -> None:
        """``task.end`` (debug, error on failure, with the exception if first)."""
        state: RunLog | None = run.slots.get(self._state_slot)
        if task.status == n.STATUS_ERROR:
            fields = self._task_fields(run, task)
            fields["status"] = task.status
            fields["duration_s"] = _seconds(task.start_ns, task.end_ns)
            if state is not None:
                state.failed.append((task.error, task.name, task.task_id))
            _failure(state, task.error, fields, run)
            self._emit(state, task, "error", n.LOG_TASK_END, fields)
        elif state is None or state.debug:
            fields = self._task_fields(run, task)
            fields["status"] = task.status
            fields["duration_s"] = _seconds(task.start_ns, task.end_ns)
            self._emit(state, task, "debug", n.LOG_TASK_END, fields)

    def _llm_fields(self, run: RunRecord, llm: LlmRecord) -> dict[str, Any]:
        return {
            "graph": run.graph,
            "node": llm.node,
            "task_id": llm.task_id,
            "model": llm.model,
            "provider": llm.provider,
            **_ids(llm),
        }

    def llm_first_chunk(self, run: RunRecord, llm: LlmRecord) -> None:
        """``llm.first_token`` (debug)."""
        state = run.slots.get(self._state_slot)
        if state is None or state.debug:
            fields = self._llm_fields(run, llm)
            fields["ttft_s"] = _seconds(llm.start_ns, llm.first_chunk_ns)
            self._emit(state, llm, "debug", n.LOG_LLM_FIRST_TOKEN, fields)

    def llm_ended(self, run: RunRecord, llm: LlmRecord) -> None:
        """``llm.end`` (info, error on failure) with tokens, tokens/s and ttft."""
        fields = self._llm_fields(run, llm)
        fields["status"] = llm.status
        fields["duration_s"] = _seconds(llm.start_ns, llm.end_ns)
        fields["chunks"] = llm.chunks
        if llm.first_chunk_ns is not None:
            fields["ttft_s"] = _seconds(llm.start_ns, llm.first_chunk_ns)
        if llm.input_tokens is not None:
            fields["input_tokens"] = llm.input_tokens
        if llm.output_tokens is not None:
            fields["output_tokens"] = llm.output_tokens
        if llm.first_chunk_ns is not None and llm.last_chunk_ns is not None:
            stream_s = (llm.last_chunk_ns - llm.first_chunk_ns) / 1e9
            tokens = llm.output_tokens if llm.output_tokens is not None else llm.chunks
            if stream_s > 0:
                fields["tokens_per_s"] = tokens / stream_s
        state = run.slots.get(self._state_slot)
        if llm.status == n.STATUS_ERROR:
            _failure(state, llm.error, fields, run)
            self._emit(state, llm, "error", n.LOG_LLM_END, fields)
        else:
            self._emit(state, llm, "info", n.LOG_LLM_END, fields)

    def tool_ended(self, run: RunRecord, tool: ToolRecord) -> None:
        """``tool.end`` (debug, error on failure)."""
        state: RunLog | None = run.slots.get(self._state_slot)
        failed = tool.status == n.STATUS_ERROR
        if not failed and state is not None and not state.debug:
            return
        fields: dict[str, Any] = {
            "graph": run.graph,
            "tool": tool.name,
            "tool_call_id": tool.tool_call_id,
            "task_id": tool.task_id,
            "status": tool.status,
            "duration_s": _seconds(tool.start_ns, tool.end_ns),
            **_ids(tool),
        }
        if failed:
            _failure(state, tool.error, fields, run)
            self._emit(state, tool, "error", n.LOG_TOOL_END, fields)
        else:
            self._emit(state, tool, "debug", n.LOG_TOOL_END, fields)


def add_trace_ids(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add the current span's ``trace_id``/``span_id``.

    Works for spans that are sampled out too (their ids still correlate). Keys the
    event already has are left alone. Add it to your own structlog processors.
    """
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", f"{ctx.trace_id:032x}")
        event_dict.setdefault("span_id", f"{ctx.span_id:016x}")
    return event_dict
