"""The log sink: one structlog event per lifecycle point, carrying the trace ids.

The only module that touches structlog. It logs to ``structlog.get_logger("lg_otel")``
and never configures structlog. Levels keep production logs quiet: per-task, per-tool
and first-token events are ``debug``; run ends, interrupts and model-call ends are
``info``; failures are ``error`` with the exception. Content never goes to logs.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

from lg_otel import _names as n
from lg_otel._records import SPAN_SLOT as _SPAN
from lg_otel._records import LlmRecord, NullSink, RunRecord, TaskRecord, ToolRecord

_NODES = "log_nodes"


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

    def __init__(self) -> None:
        """Bind the ``lg_otel`` logger (structlog resolves its config lazily)."""
        self._log = structlog.get_logger(n.SCOPE_NAME)

    def run_started(self, run: RunRecord) -> None:
        """``run.start`` (debug)."""
        run.slots[_NODES] = {}
        self._log.debug(
            n.LOG_RUN_START, graph=run.graph, thread_id=run.thread_id, **_ids(run)
        )

    def run_ended(self, run: RunRecord) -> None:
        """``run.end`` (info, error on failure) and ``run.interrupt`` when paused."""
        run.slots.pop(_NODES, None)
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
            self._log.info(n.LOG_RUN_INTERRUPT, **fields)
        if run.status == n.STATUS_ERROR:
            self._log.error(n.LOG_RUN_END, exc_info=run.error, **fields)
        else:
            self._log.info(n.LOG_RUN_END, **fields)

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
        nodes: MutableMapping[str, str] | None = run.slots.get(_NODES)
        if nodes is not None:
            nodes[task.task_id] = task.name
        self._log.debug(n.LOG_TASK_START, **self._task_fields(run, task))

    def task_ended(self, run: RunRecord, task: TaskRecord) -> None:
        """``task.end`` (debug, error on failure)."""
        fields = self._task_fields(run, task)
        fields["status"] = task.status
        fields["duration_s"] = _seconds(task.start_ns, task.end_ns)
        if task.status == n.STATUS_ERROR:
            self._log.error(n.LOG_TASK_END, exc_info=task.error, **fields)
        else:
            self._log.debug(n.LOG_TASK_END, **fields)

    def _llm_fields(self, run: RunRecord, llm: LlmRecord) -> dict[str, Any]:
        nodes = run.slots.get(_NODES) or {}
        return {
            "graph": run.graph,
            "node": nodes.get(llm.task_id) if llm.task_id else None,
            "task_id": llm.task_id,
            "model": llm.model,
            "provider": llm.provider,
            **_ids(llm),
        }

    def llm_first_chunk(self, run: RunRecord, llm: LlmRecord) -> None:
        """``llm.first_token`` (debug)."""
        self._log.debug(
            n.LOG_LLM_FIRST_TOKEN,
            ttft_s=_seconds(llm.start_ns, llm.first_chunk_ns),
            **self._llm_fields(run, llm),
        )

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
        if llm.status == n.STATUS_ERROR:
            self._log.error(n.LOG_LLM_END, exc_info=llm.error, **fields)
        else:
            self._log.info(n.LOG_LLM_END, **fields)

    def tool_ended(self, run: RunRecord, tool: ToolRecord) -> None:
        """``tool.end`` (debug, error on failure)."""
        fields: dict[str, Any] = {
            "graph": run.graph,
            "tool": tool.name,
            "tool_call_id": tool.tool_call_id,
            "task_id": tool.task_id,
            "status": tool.status,
            "duration_s": _seconds(tool.start_ns, tool.end_ns),
            **_ids(tool),
        }
        if tool.status == n.STATUS_ERROR:
            self._log.error(n.LOG_TOOL_END, exc_info=tool.error, **fields)
        else:
            self._log.debug(n.LOG_TOOL_END, **fields)


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
