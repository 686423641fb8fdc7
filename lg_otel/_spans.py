"""The tracing sink: turns tracker records into OpenTelemetry spans.

The only module that touches ``opentelemetry.trace``. Spans are started with an
explicit parent context, never by attaching a context across a ``yield``; the one
place a context is attached is :class:`SpanBinder`, for exactly the duration of a
node's own execution, in the node's own context.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from lg_otel import _names as n
from lg_otel._batch import Batch
from lg_otel._hook import Binder
from lg_otel._records import SPAN_CONTEXT_SLOT as _CTX
from lg_otel._records import SPAN_SLOT as _SPAN
from lg_otel._records import (
    CheckpointRecord,
    LlmRecord,
    NullSink,
    RunRecord,
    StoreRecord,
    TaskRecord,
    ToolRecord,
    raised_by_call,
)
from lg_otel._spanpath import (
    _SPAN_KEY,
    Child,
    RecordedSpan,
    SpanMaker,
    SpanPath,
    context_with,
)

_OFFSET = "wall_offset"
_EMPTY = otel_context.Context()
_new = object.__new__
_TASK_CTX = "task_ctx"
#: The run's span maker (one path for the whole run).
_MAKER = "span_maker"
#: ``checkpoint {operation}`` for every operation lg_otel times, made once.
_CHECKPOINT_NAMES = {
    operation: f"{n.SPAN_CHECKPOINT} {operation}"
    for operation in n.CHECKPOINT_OPERATIONS
}


def error_type(error: BaseException) -> str:
    """The ``error.type`` value of an exception: its qualified class name."""
    return type(error).__qualname__


def _interrupt_event(task: TaskRecord | None, count: int) -> dict[str, Any]:
    """Attributes of an ``interrupt`` event: which task paused, with what."""
    if task is None:  # a static breakpoint (interrupt_before/after): no task raised
        return {n.ATTR_INTERRUPT_COUNT: count}
    attributes: dict[str, Any] = {
        n.ATTR_NODE: task.name,
        n.ATTR_TASK_ID: task.task_id,
        n.ATTR_INTERRUPT_COUNT: count,
    }
    if task.interrupt_ids:
        attributes[n.ATTR_INTERRUPT_ID] = task.interrupt_ids[0]
    if task.interrupt_value is not None:  # only when content capture is on
        attributes[n.ATTR_INTERRUPT_VALUE] = task.interrupt_value
    return attributes


def _error_by_type(span: Span, error: BaseException) -> None:
    """``error.type`` and an ``exception`` event naming the class only: a driver's
    message can quote keys and values."""
    kind = error_type(error)
    span.set_attribute(n.ATTR_ERROR_TYPE, kind)
    span.add_event(n.EVENT_EXCEPTION, {n.ATTR_EXCEPTION_TYPE: kind})


class SpanSink:
    """Creates and ends one span per run, task, model call and tool call."""

    def __init__(
        self,
        tracer: trace.Tracer,
        clock: Callable[[], int],
        *,
        content_on_spans: bool = False,
        content_as_events: bool = False,
        provider: object = None,
        batch: Batch | None = None,
    ) -> None:
        """Use ``tracer`` (made by ``provider``); ``clock`` is the tracker's
        monotonic clock (ns).

        With a ``batch``, the task spans (and a run's saver and store call spans)
        that lg_otel records itself reach the processors in batches: at their
        run's end, or from the batch's timer (see :mod:`lg_otel._batch`).

        Captured content (present on records only when the user opted in) goes to
        span attributes and/or a span event, as the capture mode says. Where it is
        equivalent, lg_otel records its spans and emits them finished (see
        :mod:`lg_otel._spanpath`); ``provider`` is the tracer's provider (None: the
        global one).
        """
        self._path = SpanPath(tracer, provider)
        self._batch = batch
        self._clock = clock
        self._content_on_spans = content_on_spans
        self._content_as_events = content_as_events

    def _content(self, span: Span, content: dict[str, str | None]) -> None:
        present = {k: v for k, v in content.items() if v is not None}
        if not present:
            return
        if self._content_on_spans:
            span.set_attributes(present)
        if self._content_as_events:
            span.add_event(n.EVENT_CONTENT, present)

    def _wall(self, run: RunRecord, mono_ns: int) -> int:
        offset: int = run.slots[_OFFSET]
        return offset + mono_ns

    def _maker(self, run: RunRecord) -> SpanMaker:
        maker: SpanMaker | None = run.slots.get(_MAKER)
        if maker is None:  # the run's start failed before choosing
            maker = run.slots[_MAKER] = self._path.current()
        return maker

    @staticmethod
    def _end(
        span: Span,
        status: str | None,
        error: BaseException | None,
        end_ns: int,
        interrupt: dict[str, Any] | None = None,
        run: RunRecord | None = None,
    ) -> None:
        if type(span) is RecordedSpan and (status is None or status == n.STATUS_OK):
            span.end_with(n.ATTR_STATUS, n.STATUS_OK, end_ns)  # most spans: in one
            return
        if not span.is_recording():  # unsampled: nothing to record or export
            return
        span.set_attribute(n.ATTR_STATUS, status or n.STATUS_OK)
        if status == n.STATUS_ERROR:
            if error is not None and raised_by_call(run, error):
                # A saver's or store's exception (or one raised from it): its
                # class only, as on the call's own span.
                _error_by_type(span, error)
                span.set_status(Status(StatusCode.ERROR))
            elif error is not None:
                span.set_attribute(n.ATTR_ERROR_TYPE, error_type(error))
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)[:1024]))
            else:
                span.set_status(Status(StatusCode.ERROR))
        elif status == n.STATUS_INTERRUPTED:
            span.add_event(n.EVENT_INTERRUPT, interrupt)
        span.end(end_time=end_ns)

    # --- runs -----------------------------------------------------------------

    def run_started(self, run: RunRecord) -> None:
        """Open the run span under whatever span was current at the call."""
        # Wall-clock anchor for this run: durations come from the monotonic clock.
        run.slots[_OFFSET] = time.time_ns() - self._clock()
        attributes: dict[str, Any] = {
            n.ATTR_OPERATION_NAME: n.OP_INVOKE_WORKFLOW,
            n.ATTR_WORKFLOW_NAME: run.graph,
        }
        if run.thread_id is not None:
            attributes[n.ATTR_CONVERSATION_ID] = run.thread_id
        links = [Link(ctx) for ctx in run.links if isinstance(ctx, trace.SpanContext)]
        parent = run.parent if isinstance(run.parent, otel_context.Context) else None
        # Set before starting: if the start fails (a raising processor), the run's
        # tasks still get spans, under the caller's context.
        run.slots[_CTX] = parent if parent is not None else otel_context.Context()
        run.slots[_TASK_CTX] = {}
        maker = run.slots[_MAKER] = self._path.current()
        span = maker.start(
            f"{n.SPAN_RUN} {run.graph}",
            parent,
            SpanKind.INTERNAL,
            attributes,
            self._wall(run, run.start_ns),
            links,
            root=True,
        )
        run.slots[_SPAN] = span
        # The caller's context with the run span: what it held besides its span
        # (baggage) reaches the nodes.
        run.slots[_CTX] = context_with(span, parent)

    def run_first_token(self, run: RunRecord) -> None:
        """Nothing on the span: the run TTFT is a metric."""

    def run_first_chunk(self, run: RunRecord) -> None:
        """Nothing on the span: the run's time to first chunk is a metric."""

    def run_ended(self, run: RunRecord) -> None:
        """End the run span with its status."""
        if self._batch is not None:
            self._batch.flush()  # the run's spans before the run's own
        run.slots.pop(_TASK_CTX, None)
        span: Span | None = run.slots.get(_SPAN)
        if span is None:  # its start failed, and was counted then
            return
        if run.consumer_wait_ns:
            span.set_attribute(n.ATTR_CONSUMER_WAIT, run.consumer_wait_ns / 1e9)
        event = None
        if run.status == n.STATUS_INTERRUPTED:
            task = run.interrupt_task
            count = len(run.interrupt_ids) or (task.interrupts if task else 0)
            event = _interrupt_event(task, count)
        end = self._wall(run, run.end_ns or 0)
        self._end(span, run.status, run.error, end, event, run)

    # --- tasks ----------------------------------------------------------------

    def _parent_of(self, run: RunRecord, task_id: str | None) -> otel_context.Context:
        if task_id is not None:
            by_task = run.slots.get(_TASK_CTX)
            ctx = by_task.get(task_id) if by_task else None
            if ctx is not None:
                return ctx  # type: ignore[no-any-return]
        return run.slots.get(_CTX) or _EMPTY

    def task_started(self, run: RunRecord, task: TaskRecord) -> None:
        """Open a task span under the run span or the task that runs its subgraph."""
        attributes: dict[str, Any] = {
            n.ATTR_NODE: task.name,
            n.ATTR_TASK_ID: task.task_id,
        }
        if task.step is not None:
            attributes[n.ATTR_STEP] = task.step
        if task.triggers:
            attributes[n.ATTR_TRIGGERS] = task.triggers
        if task.checkpoint_ns:
            attributes[n.ATTR_CHECKPOINT_NS] = task.checkpoint_ns
        if task.namespace:
            attributes[n.ATTR_NAMESPACE] = task.namespace
        parent = (
            run.slots.get(_CTX) or _EMPTY  # _parent_of(), inline: a top-level task
            if task.parent_task_id is None
            else self._parent_of(run, task.parent_task_id)
        )
        by_task = run.slots.get(_TASK_CTX)
        if by_task is None:
            by_task = run.slots[_TASK_CTX] = {}
        # Until (or unless) the span starts, this task's children and the spans
        # its node makes nest under the nearest span that did start.
        by_task[task.task_id] = task.slots[_CTX] = parent
        slots = run.slots
        span = (slots.get(_MAKER) or self._maker(run)).start(
            f"{n.SPAN_TASK} {task.name}",
            parent,
            SpanKind.INTERNAL,
            attributes,
            slots[_OFFSET] + task.start_ns,  # _wall(), inline on the hot path
        )
        task.slots[_SPAN] = span
        by_task[task.task_id] = task.slots[_CTX] = (
            # context_with(span, parent), inline: once per node task
            otel_context.Context({**parent, _SPAN_KEY: span})
            if _SPAN_KEY is not None
            else context_with(span, parent)
        )

    def task_ended(self, run: RunRecord, task: TaskRecord) -> None:
        """End a task span with its status."""
        span: Span | None = task.slots.get(_SPAN)
        if span is None:  # its start failed, and was counted then
            return
        if task.subgraph is not None and span.is_recording():
            # Known only once the subgraph's first task started: set at the end.
            span.set_attribute(n.ATTR_SUBGRAPH_NAME, task.subgraph)
        if task.next is not None:
            # Node names next_nodes() read: a tuple of str (one per checkpointed task).
            if type(span) is RecordedSpan:
                span.set_own(n.ATTR_TASK_NEXT, task.next)
            elif span.is_recording():
                span.set_attribute(n.ATTR_TASK_NEXT, task.next)
        event = None
        if task.status == n.STATUS_INTERRUPTED:
            event = _interrupt_event(task, task.interrupts or len(task.interrupt_ids))
        end = run.slots[_OFFSET] + (task.end_ns or 0)  # _wall(), inline
        status = task.status
        if type(span) is RecordedSpan and (status is None or status == n.STATUS_OK):
            span.end_with(n.ATTR_STATUS, n.STATUS_OK, end, self._batch)
            return
        self._end(span, status, task.error, end, event, run)

    # --- model calls ----------------------------------------------------------

    def _explicit_or_task(
        self, run: RunRecord, parent: object, task_id: str | None
    ) -> otel_context.Context:
        if isinstance(parent, otel_context.Context):
            return parent
        return self._parent_of(run, task_id)

    def llm_started(self, run: RunRecord, llm: LlmRecord) -> None:
        """Open a CLIENT span; operation, provider and model are set for samplers."""
        attributes: dict[str, Any] = {n.ATTR_OPERATION_NAME: llm.operation}
        if llm.provider:
            attributes[n.ATTR_PROVIDER_NAME] = llm.provider
        if llm.model:
            attributes[n.ATTR_REQUEST_MODEL] = llm.model
        name = f"{llm.operation} {llm.model}" if llm.model else llm.operation
        llm.slots[_SPAN] = self._maker(run).start(
            name,
            self._explicit_or_task(run, llm.parent, llm.task_id),
            SpanKind.CLIENT,
            attributes,
            self._wall(run, llm.start_ns),
        )

    def llm_first_chunk(self, run: RunRecord, llm: LlmRecord) -> None:
        """Nothing yet: time to first chunk is set when the call ends."""

    def llm_ended(self, run: RunRecord, llm: LlmRecord) -> None:
        """End a model span with streaming figures and usage."""
        span: Span | None = llm.slots.get(_SPAN)
        if span is None or not span.is_recording():  # failed start, or unsampled
            return
        span.set_attribute(n.ATTR_REQUEST_STREAM, llm.chunks > 0)
        if llm.first_chunk_ns is not None:
            span.set_attribute(
                n.ATTR_TIME_TO_FIRST_CHUNK, (llm.first_chunk_ns - llm.start_ns) / 1e9
            )
            span.set_attribute(n.ATTR_CHUNK_COUNT, llm.chunks)
        if llm.input_tokens is not None:
            span.set_attribute(n.ATTR_USAGE_INPUT_TOKENS, llm.input_tokens)
        if llm.output_tokens is not None:
            span.set_attribute(n.ATTR_USAGE_OUTPUT_TOKENS, llm.output_tokens)
        if llm.response_model:
            span.set_attribute(n.ATTR_RESPONSE_MODEL, llm.response_model)
        if llm.finish_reasons:
            span.set_attribute(n.ATTR_FINISH_REASONS, tuple(llm.finish_reasons))
        self._content(
            span,
            {
                n.ATTR_INPUT_MESSAGES: llm.input_messages,
                n.ATTR_OUTPUT_MESSAGES: llm.output_messages,
            },
        )
        self._end(
            span, llm.status, llm.error, self._wall(run, llm.end_ns or 0), None, run
        )

    # --- tool calls -----------------------------------------------------------

    def tool_started(self, run: RunRecord, tool: ToolRecord) -> None:
        """Open an ``execute_tool`` span."""
        attributes: dict[str, Any] = {
            n.ATTR_OPERATION_NAME: n.OP_EXECUTE_TOOL,
            n.ATTR_TOOL_NAME: tool.name,
        }
        if tool.tool_call_id:
            attributes[n.ATTR_TOOL_CALL_ID] = tool.tool_call_id
        tool.slots[_SPAN] = self._maker(run).start(
            f"{n.SPAN_TOOL} {tool.name}",
            self._explicit_or_task(run, tool.parent, tool.task_id),
            SpanKind.INTERNAL,
            attributes,
            self._wall(run, tool.start_ns),
        )

    def tool_ended(self, run: RunRecord, tool: ToolRecord) -> None:
        """End an ``execute_tool`` span."""
        span: Span | None = tool.slots.get(_SPAN)
        if span is None:  # its start failed, and was counted then
            return
        self._content(
            span,
            {n.ATTR_TOOL_ARGUMENTS: tool.arguments, n.ATTR_TOOL_RESULT: tool.result},
        )
        self._end(
            span, tool.status, tool.error, self._wall(run, tool.end_ns or 0), None, run
        )

    # --- checkpoints and stores -------------------------------------------------

    def _call_wall(
        self, run: RunRecord | None, call: CheckpointRecord | StoreRecord, ns: int
    ) -> int:
        if run is not None:
            return self._wall(run, ns)
        # Outside a run: the call's own wall-clock anchor, set when it started.
        offset = call.slots.get(_OFFSET)
        if offset is None:
            offset = call.slots[_OFFSET] = time.time_ns() - self._clock()
        return int(offset) + ns

    @staticmethod
    def _call_error(span: Span, call: CheckpointRecord | StoreRecord) -> None:
        if call.status == n.STATUS_ERROR and call.error is not None:
            _error_by_type(span, call.error)

    def _call_started(
        self,
        run: RunRecord | None,
        call: CheckpointRecord | StoreRecord,
        name: str,
        attributes: dict[str, Any],
        parent_task_id: str | None,
    ) -> None:
        span = self._call_span(run, call, name, attributes, parent_task_id)
        slots = call.slots
        slots[_SPAN] = span
        # context_with(span), inline: once per saver call.
        slots[_CTX] = (
            otel_context.Context({_SPAN_KEY: span})
            if _SPAN_KEY is not None
            else context_with(span)
        )

    def _call_done(
        self,
        run: RunRecord | None,
        call: CheckpointRecord | StoreRecord,
        name: str,
        attributes: dict[str, Any],
        parent_task_id: str | None,
    ) -> None:
        # A call handed on once it ended, from the batch (see Sink.checkpoint_done):
        # its span started at the call's start and ended at its end, at once, and
        # handed to the processors now (queued again, it would only wait).
        if (
            run is not None
            and call.status == n.STATUS_OK
            and (not isinstance(call, StoreRecord) or call.results is None)
        ):
            # Nearly every call: ok, in a run whose spans lg_otel records. Emitted
            # finished, with no live span made and ended in between.
            slots = run.slots
            maker = slots.get(_MAKER) or self._maker(run)
            if maker.finished:
                offset = slots[_OFFSET]
                parent = self._explicit_or_task(run, call.parent, parent_task_id)
                start, end = offset + call.start_ns, offset + (call.end_ns or 0)
                # What a reader of the call's span gets from now on (its
                # stand-in, an exemplar): the span's context, ended.
                if not maker.emit_children(  # type: ignore[union-attr]
                    ((name, parent, attributes, start, end, call.slots),),
                    _SPAN,
                    n.ATTR_STATUS,
                    n.STATUS_OK,
                ):
                    return
        self._call_live(run, call, name, attributes, parent_task_id)

    def _call_live(
        self,
        run: RunRecord | None,
        call: CheckpointRecord | StoreRecord,
        name: str,
        attributes: dict[str, Any],
        parent_task_id: str | None,
    ) -> None:
        # A call that ended, through a live span started and ended at once.
        call.slots[_SPAN] = self._call_span(run, call, name, attributes, parent_task_id)
        self._call_ended(run, call, queue=False)

    def _call_span(
        self,
        run: RunRecord | None,
        call: CheckpointRecord | StoreRecord,
        name: str,
        attributes: dict[str, Any],
        parent_task_id: str | None,
    ) -> Span:
        # An explicit parent: outside a run (the caller's context at the call), or
        # the context current in the node; else the run or the subgraph's task.
        parent = call.parent
        if run is not None:  # the hot path: _maker(), inline
            slots = run.slots
            maker = slots.get(_MAKER) or self._maker(run)
            return maker.start(
                name,
                self._explicit_or_task(run, parent, parent_task_id),
                SpanKind.INTERNAL,
                attributes,
                slots[_OFFSET] + call.start_ns,
            )
        if not isinstance(parent, otel_context.Context):
            parent = None
        return self._path.current().start(
            name,
            parent,
            SpanKind.INTERNAL,
            attributes,
            self._call_wall(None, call, call.start_ns),
            root=True,
        )

    def _call_ended(
        self,
        run: RunRecord | None,
        call: CheckpointRecord | StoreRecord,
        queue: bool = True,
    ) -> None:
        """End a ``checkpoint`` or ``store`` span: status ERROR and ``error.type``
        on failure, the result count of a search. ``queue=False``: hand an ok
        span to the processors now, not through the batch."""
        span: Span | None = call.slots.get(_SPAN)
        if span is None:  # its start failed, and was counted then
            return
        if run is not None:  # the hot path: _wall(), inline
            end = run.slots[_OFFSET] + (call.end_ns or 0)
        else:
            end = self._call_wall(None, call, call.end_ns or 0)
        results = call.results if isinstance(call, StoreRecord) else None
        # An ok call without results (nearly all of them) ends in one step.
        status = call.status
        if results is None and status == n.STATUS_OK and type(span) is RecordedSpan:
            # _end()'s first step; emitted in a batch if a run's end will flush it.
            batch = self._batch if run is not None and queue else None
            span.end_with(n.ATTR_STATUS, n.STATUS_OK, end, batch)
            return
        if (results is not None or status != n.STATUS_OK) and span.is_recording():
            if results is not None:
                span.set_attribute(n.ATTR_STORE_RESULTS, results)
            self._call_error(span, call)
        self._end(span, status, None, end)

    def checkpoint_started(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        """Open a ``checkpoint {operation}`` span under the run, the task whose
        subgraph made the call, or (outside a run) the caller's span."""
        name, attributes = _checkpoint_span(call)
        self._call_started(run, call, name, attributes, call.parent_task_id)

    def checkpoint_done(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        """The ``checkpoint {operation}`` span of a call that ended, at once."""
        name, attributes = _checkpoint_span(call)
        self._call_done(run, call, name, attributes, call.parent_task_id)

    def store_started(self, run: RunRecord | None, call: StoreRecord) -> None:
        """Open a ``store {operation}`` span under the span current in the node."""
        name, attributes = _store_span(call)
        self._call_started(run, call, name, attributes, None)

    def store_done(self, run: RunRecord | None, call: StoreRecord) -> None:
        """The ``store {operation}`` span of a call that ended, at once."""
        name, attributes = _store_span(call)
        self._call_done(run, call, name, attributes, None)

    # The sinks' call-end events are _call_ended itself: one frame fewer per call.
    checkpoint_ended = _call_ended
    store_ended = _call_ended

    def calls_done(
        self,
        run: RunRecord,
        calls: Sequence[CheckpointRecord | StoreRecord],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """The spans of a run's calls that ended, handed on together: for each,
        what :meth:`checkpoint_done` or :meth:`store_done` does (see
        :meth:`Sink.calls_done` for ``on_error``). Each stretch of ok
        checkpointer calls in a run whose spans lg_otel records is emitted in one
        step (:meth:`FinishedSpans.emit_children`)."""
        slots = run.slots
        maker = slots.get(_MAKER)
        offset = slots.get(_OFFSET)
        if maker is None or not maker.finished or offset is None:
            for call in calls:
                self._one_done(run, call, on_error)
            return
        run_parent = slots.get(_CTX) or _EMPTY
        count, i = len(calls), 0
        while i < count:
            # _call_done()'s first branch, for a stretch of the batch: ok
            # checkpointer calls, emitted finished.
            stretch: list[Child] = []
            members: list[CheckpointRecord] = []
            while i < count:
                call = calls[i]
                if type(call) is not CheckpointRecord or call.status != n.STATUS_OK:
                    break
                i += 1
                try:
                    name, attributes = _checkpoint_span(call)
                    # _explicit_or_task(), inline.
                    parent = call.parent
                    if not isinstance(parent, otel_context.Context):
                        task_id = call.parent_task_id
                        parent = (
                            run_parent
                            if task_id is None
                            else self._parent_of(run, task_id)
                        )
                    stretch.append(
                        (
                            name,
                            parent,
                            attributes,
                            offset + call.start_ns,
                            offset + (call.end_ns or 0),
                            call.slots,
                        )
                    )
                    members.append(call)
                except Exception as exc:
                    if on_error is None:
                        raise
                    on_error(exc)
            if stretch:
                missed = maker.emit_children(
                    stretch, _SPAN, n.ATTR_STATUS, n.STATUS_OK, on_error
                )
                for index in missed:  # not emitted: a live span
                    call = members[index]
                    name, _, attributes, _, _, _ = stretch[index]
                    try:
                        self._call_live(
                            run, call, name, attributes, call.parent_task_id
                        )
                    except Exception as exc:
                        if on_error is None:
                            raise
                        on_error(exc)
            if i < count:
                self._one_done(run, calls[i], on_error)
                i += 1

    def _one_done(
        self,
        run: RunRecord,
        call: CheckpointRecord | StoreRecord,
        on_error: Callable[[BaseException], None] | None,
    ) -> None:
        # One call of calls_done() as checkpoint_done() or store_done() takes it.
        try:
            if type(call) is CheckpointRecord:
                self.checkpoint_done(run, call)
            else:
                self.store_done(run, call)  # type: ignore[arg-type]
        except Exception as exc:
            if on_error is None:
                raise
            on_error(exc)


def _checkpoint_span(call: CheckpointRecord) -> tuple[str, dict[str, Any]]:
    """A checkpointer call's span name and attributes."""
    attributes: dict[str, Any] = {
        n.ATTR_CHECKPOINT_OPERATION: call.operation,
        n.ATTR_CHECKPOINT_SAVER: call.saver,
    }
    if call.checkpoint_ns:
        attributes[n.ATTR_CHECKPOINT_NS] = call.checkpoint_ns
    if call.task_id:
        attributes[n.ATTR_TASK_ID] = call.task_id
    if call.writes is not None:
        attributes[n.ATTR_CHECKPOINT_WRITES] = call.writes
    name = _CHECKPOINT_NAMES.get(call.operation)
    if name is None:
        name = f"{n.SPAN_CHECKPOINT} {call.operation}"
    return name, attributes


def _store_span(call: StoreRecord) -> tuple[str, dict[str, Any]]:
    """A store call's span name and attributes."""
    attributes: dict[str, Any] = {
        n.ATTR_STORE_OPERATION: call.operation,
        n.ATTR_STORE_CLASS: call.store,
    }
    return f"{n.SPAN_STORE} {call.operation}", attributes


class SpanBinder(Binder):
    """Makes a task's span current while its node runs (in the node's context)."""

    def activate(self, run: Any, task: Any) -> object | None:
        """Attach the task's context; returns the token to detach with."""
        ctx = task.slots.get(_CTX)
        if ctx is None:
            return None
        runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
        if type(runtime) is ContextVarsRuntimeContext:
            # What its attach() does, two calls fewer, once per node task.
            return runtime._current_context.set(ctx)
        return otel_context.attach(ctx)

    def context_var(self) -> contextvars.ContextVar[Any] | None:
        """OTel's context variable under its default (contextvars) runtime."""
        runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
        if type(runtime) is ContextVarsRuntimeContext:
            return runtime._current_context
        return None

    def deactivate(self, token: object) -> bool:
        """Detach what :meth:`activate` attached, if in the context that attached it.

        Returns False when this is another context (under asyncio LangChain ends a
        chain from a shielded task, a copy of the context); see ``RunHook.drain``.
        """
        var = getattr(token, "var", None)
        if isinstance(var, contextvars.ContextVar):
            try:
                var.reset(token)  # type: ignore[arg-type]
            except (ValueError, RuntimeError):
                return False
            return True
        otel_context.detach(token)  # type: ignore[arg-type]  # non-contextvars runtime
        return True

    def pending_context(self, owner: Any, call: Any) -> object | None:
        """A context holding a stand-in for ``call``'s span, made on first use."""
        if _SPAN_KEY is None:
            return None
        # PendingSpan(owner, call), one frame fewer: made once per saver call.
        span = _new(PendingSpan)
        span._owner, span._call = owner, call
        return otel_context.Context({_SPAN_KEY: span})

    def current_parent(self, run: Any) -> object | None:
        """The current context when its span is in this run's trace."""
        current = trace.get_current_span().get_span_context()
        run_span = run.slots.get(_SPAN)
        if run_span is None or not current.is_valid:
            return None
        if current.trace_id != run_span.get_span_context().trace_id:
            return None
        return otel_context.get_current()


class PendingSpan(trace.Span):
    """Stands in for the span of a checkpointer or store call whose sinks hear
    of it after it ended (a ``deferred`` record): current during the call.

    Nearly always nobody reads it, and the span is made from the batch, with the
    call's own start and end. Any use of it during the call (a database
    instrumentation starting its span under it, code reading the current span)
    has the span made then, through ``owner.call_seen(call)``, and is the real
    span's. After the call, the same, and on the span as it ended.
    """

    __slots__ = ("_call", "_owner")

    def __init__(self, owner: Any, call: CheckpointRecord | StoreRecord) -> None:
        """The stand-in for ``call``'s span; ``owner`` is its run's tracker."""
        self._owner = owner
        self._call = call

    def real(self) -> Span:
        """The call's span, made now if it was not yet."""
        self._owner.call_seen(self._call)
        span: Span | None = self._call.slots.get(_SPAN)
        return span if span is not None else trace.INVALID_SPAN

    def get_span_context(self) -> trace.SpanContext:
        """The real span's context (its ids)."""
        return self.real().get_span_context()

    def is_recording(self) -> bool:
        """Whether the real span records."""
        return self.real().is_recording()

    def set_attribute(self, key: str, value: Any) -> None:
        """Set an attribute on the real span."""
        self.real().set_attribute(key, value)

    def set_attributes(self, attributes: Any) -> None:
        """Set attributes on the real span."""
        self.real().set_attributes(attributes)

    def add_event(
        self, name: str, attributes: Any = None, timestamp: int | None = None
    ) -> None:
        """Add an event to the real span."""
        self.real().add_event(name, attributes, timestamp)

    def add_link(self, context: trace.SpanContext, attributes: Any = None) -> None:
        """Add a link to the real span."""
        self.real().add_link(context, attributes)

    def update_name(self, name: str) -> None:
        """Rename the real span."""
        self.real().update_name(name)

    def set_status(
        self, status: Status | StatusCode, description: str | None = None
    ) -> None:
        """Set the real span's status."""
        self.real().set_status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Any = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Record an exception on the real span."""
        self.real().record_exception(exception, attributes, timestamp, escaped)

    def end(self, end_time: int | None = None) -> None:
        """End the real span (lg_otel ends it when the call ends otherwise)."""
        self.real().end(end_time)

    def __getattr__(self, name: str) -> Any:
        # An SDK span's other attributes (name, attributes, parent...); never
        # its private ones (copy and pickle probe those before any slot is set).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.real(), name)


def current_context() -> otel_context.Context:
    """The caller's current OTel context (the run span's parent)."""
    return otel_context.get_current()


def span_context_of(run: RunRecord) -> trace.SpanContext | None:
    """The run span's context (to link a resumed run to it)."""
    span = run.slots.get(_SPAN)
    return span.get_span_context() if span is not None else None


class InterruptLinks(NullSink):
    """Remembers each thread's last interrupted run span, for the resumed run's link.

    Bounded: the oldest threads are forgotten first. In memory only: a resume in
    another process gets no link.
    """

    def __init__(self, capacity: int) -> None:
        """Remember at most ``capacity`` threads."""
        self._capacity = capacity
        self._lock = threading.Lock()
        self._by_thread: OrderedDict[str, trace.SpanContext] = OrderedDict()

    def links_for(self, thread_id: str | None) -> tuple[object, ...]:
        """The span contexts a new run on ``thread_id`` should link to."""
        if thread_id is None:
            return ()
        with self._lock:
            ctx = self._by_thread.get(thread_id)
        return (ctx,) if ctx is not None else ()

    def run_ended(self, run: RunRecord) -> None:
        """Remember an interrupted run; forget a thread whose run went on."""
        if run.thread_id is None:
            return
        with self._lock:
            self._by_thread.pop(run.thread_id, None)
            if run.status != n.STATUS_INTERRUPTED or not self._capacity:
                return
            ctx = span_context_of(run)
            if ctx is not None and ctx.is_valid:
                self._by_thread[run.thread_id] = ctx
                while len(self._by_thread) > self._capacity:
                    self._by_thread.popitem(last=False)


def traceparent_of(run: RunRecord) -> str | None:
    """The run span's W3C ``traceparent`` (to persist a resume link)."""
    ctx = span_context_of(run)
    if ctx is None or not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def parse_traceparent(value: object) -> trace.SpanContext | None:
    """A span context from a W3C ``traceparent`` string; None if malformed."""
    if not isinstance(value, str):
        return None
    parts = value.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        ctx = trace.SpanContext(
            trace_id=int(parts[1], 16),
            span_id=int(parts[2], 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(int(parts[3], 16)),
        )
    except ValueError:
        return None
    return ctx if ctx.is_valid else None
