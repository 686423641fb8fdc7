"""The per-run state machine: turns stream parts and hook calls into ordered records.

Pure code over plain data, with an injected clock. Two sources feed it:

* the stream tap (LangGraph's ``tasks`` mode): which tasks exist and how they ended;
* the per-run hook, called in the node's own thread: *when* a task really started and
  returned (a slow consumer delays stream parts, never these), plus model and tool
  calls, which the stream cannot time without forcing models to stream.

Every method is thread-safe (nodes run in worker threads) and does nothing once the run
has finished, so a straggling worker can never reopen or double-end anything.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping
from time import monotonic_ns
from typing import Any, TypeVar

from lg_otel import _names as n
from lg_otel._batch import Batch
from lg_otel._parse import namespace_of, next_nodes, task_triggers
from lg_otel._records import (
    MAX_CALL_ERRORS,
    CheckpointRecord,
    LlmRecord,
    RunRecord,
    Sink,
    StoreRecord,
    TaskRecord,
    ToolRecord,
)

Clock = Callable[[], int]
#: ``written`` of a checkpointer call whose writes are not to be read.
NOT_READ: Any = object()
#: Sequences of writes LangGraph hands ``put_writes``: copied (a shallow tuple)
#: when the call is made, since a retried task's deque is cleared and refilled.
_WRITES_SEQUENCES = frozenset({list, deque})
#: What a dict's pop() gives for a call no longer open.
_GONE: Any = object()
_C = TypeVar("_C", CheckpointRecord, StoreRecord)

#: Bits of ``RunTracker.firsts_due``.
_FIRST_TOKEN, _FIRST_CHUNK = 1, 2


class RunTracker:
    """Tracks one run; owns every record of it until the run ends."""

    __slots__ = (
        "_announced",
        "_batch",
        "_call_batch",
        "_calls",
        "_clock",
        "_done",
        "_ended",
        "_ended_queued",
        "_failed",
        "_incoming",
        "_last_ns",
        "_llms",
        "_lock",
        "_on_error",
        "_parked",
        "_per_chunk",
        "_seen_lock",
        "_sink",
        "_stream_has_subgraphs",
        "_stream_tasks",
        "_tasks",
        "_tools",
        "_writes",
        "_writes_queued",
        "firsts_due",
        "run",
        "wants_writes",
    )

    def __init__(
        self,
        sink: Sink,
        clock: Clock,
        *,
        graph: str,
        thread_id: str | None = None,
        parent: object = None,
        links: tuple[object, ...] = (),
        stream_has_subgraphs: bool = True,
        stream_tasks: bool = True,
        on_clock_error: Callable[[BaseException], None] | None = None,
        per_chunk: bool = False,
        batch: Batch | None = None,
        defer_calls: bool = False,
    ) -> None:
        """Start tracking a run (emits ``run_started`` at once).

        ``stream_has_subgraphs`` says whether the stream reports tasks inside
        subgraphs; when it does not, those tasks end when their node returns.
        ``stream_tasks`` says whether the stream reports tasks at all (the ``tasks``
        mode); when it does not, every task ends when its node returns.
        ``per_chunk`` keeps every gap between a model call's chunks (for per-chunk
        metrics); otherwise only the largest. ``batch``: where the writes a
        checkpointer is handed are read (see :meth:`take_writes`); without one,
        during the call. ``defer_calls`` (with a ``batch``): the sinks hear of
        each checkpointer and store call from the batch, its start and its end
        together, after it ended (see :meth:`checkpoint_started`).
        """
        self._per_chunk = per_chunk
        self._stream_has_subgraphs = stream_has_subgraphs
        self._stream_tasks = stream_tasks
        self._sink = sink
        self._clock = clock
        self._on_error = on_clock_error
        self._last_ns = 0
        self._lock = threading.Lock()
        self._done = False
        #: The run's first token (1) and first chunk (2) when read but not yet
        #: handed to the sinks (see announce_firsts); 0 otherwise.
        self.firsts_due = 0
        self._tasks: dict[str, TaskRecord] = {}
        # Failed attempts of subgraph tasks (no stream result comes for them),
        # kept open in case the task is retried: task id -> record.
        self._failed: dict[str, TaskRecord] = {}
        # Tasks the stream announced and the hook has not (yet) seen start:
        # task id -> (name, parent task id, raw triggers, announced at).
        self._announced: dict[str, tuple[str, str | None, Any, int]] = {}
        self._llms: dict[Hashable, LlmRecord] = {}
        self._tools: dict[Hashable, ToolRecord] = {}
        # Checkpointer and store calls in flight (ended by finish() if still open).
        # Taken without the lock (see checkpoint_started): whoever pops a call
        # from it, its own end or finish(), ends it.
        self._calls: dict[CheckpointRecord | StoreRecord, None] = {}
        # Where tasks led (langgraph.task.next), from the writes LangGraph hands the
        # checkpointer: None when no such writes will come for this run. Under the
        # default "async" durability they often come after the task's result, so
        # an ended task waits for its writes (parked) until they come or the run
        # ends; writes that come first wait for their task.
        self._parked: dict[str, TaskRecord] | None = None
        #: Whether tasks wait for their writes (see :meth:`expect_writes`): an
        #: attribute, read once per saver call.
        self.wants_writes = False
        self._writes: dict[str, tuple[str, ...] | None] = {}
        # Writes handed to the checkpointer and not read yet: (task id, writes).
        self._incoming: deque[tuple[str, object]] = deque()
        self._batch = batch
        self._call_batch = batch if defer_calls else None
        # Makes a deferred call's start known to the sinks exactly once: from
        # the batch, or earlier for a reader of its span (see call_seen()).
        # Reentrant: a sink making a call's span may read another call's.
        self._seen_lock = threading.RLock()
        # Calls that ended and wait for the batch to hand them on (hand_on()),
        # oldest first; and whether the batch holds a hand_on() that has not
        # begun (as _writes_queued for take_writes()).
        self._ended: deque[CheckpointRecord | StoreRecord] = deque()
        self._ended_queued = False
        # Whether the batch holds a take_writes() call that has not begun: then
        # writes handed on before it begins need no other.
        self._writes_queued = False
        self.run = RunRecord(
            graph=graph,
            thread_id=thread_id,
            start_ns=self._now(),
            parent=parent,
            links=links,
        )
        sink.run_started(self.run)

    def _now(self) -> int:
        # A failing clock must not leave records open: reuse the last good reading.
        try:
            self._last_ns = self._clock()
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail the run
            return self._clock_failed(exc)
        return self._last_ns

    def _clock_failed(self, exc: Exception) -> int:
        """Report a failed clock reading; the last good one stands in for it.

        The readings on the hot paths (a node task's two, a checkpointer
        call's two, a streamed chunk's) read the clock inline, one call fewer
        each, and come here only when it fails.
        """
        if self._on_error is not None:
            self._on_error(exc)
        return self._last_ns

    #: For the hook's inline count of a streamed chunk (see ``RunHook``).
    clock_failed = _clock_failed

    def _led_to(self, written: object) -> tuple[str, ...] | None:
        """Where writes lead (see :func:`next_nodes`); None, counted, if reading
        them fails: the run's end reads them too, and must end everything."""
        try:
            return next_nodes(written)
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail the run
            if self._on_error is not None:
                self._on_error(exc)
            return None

    @property
    def clock(self) -> Clock:
        """The clock the run's records are read with (nanoseconds)."""
        return self._clock

    @property
    def open_llms(self) -> Mapping[Hashable, LlmRecord]:
        """The model calls in flight, by call id (the live mapping, not a copy).

        The hook counts each chunk after a call's first on its record directly,
        as :meth:`llm_chunk` would: one Python call fewer per streamed chunk.
        """
        return self._llms

    @property
    def finished(self) -> bool:
        """True once the run has ended and every record was handed out."""
        return self._done

    def open_counts(self) -> tuple[int, int, int]:
        """How many tasks, model calls and tool calls are still open (for tests)."""
        return len(self._tasks), len(self._llms), len(self._tools)

    # --- tasks ---------------------------------------------------------------
    #
    # The hot path, once per node task: the stream announces the task (one dict
    # write), the hook opens it in the node's thread (the record and its span),
    # the hook sees it return (fields on the record), the stream reports the
    # outcome (the task ends). Everything else is for tasks the hook never saw.

    def _new_task(
        self, task_id: str, name: str, parent_task_id: str | None, start_ns: int
    ) -> TaskRecord:
        """A record for a task only the stream reported (never seen by the hook);
        not kept in the run's tasks (the caller decides)."""
        task = TaskRecord(task_id, name, parent_task_id, start_ns)
        if parent_task_id is not None:
            # The hook, had it seen the task, would have given LangGraph's own
            # namespace: the parent's path is the same thing.
            parent = self._tasks.get(parent_task_id)
            if parent is not None:
                task.namespace = (
                    f"{parent.namespace}|{parent.name}"
                    if parent.namespace
                    else parent.name
                )
        return task

    def _start(self, task: TaskRecord) -> None:
        if task.started:
            return
        # A parent must be open before its child so the child can nest under it.
        if task.parent_task_id is not None:
            parent = self._tasks.get(task.parent_task_id)
            if parent is not None:
                self._start(parent)
        task.started = True
        self._sink.task_started(self.run, task)

    def task_announced(
        self, task_id: str, name: str, parent_task_id: str | None, triggers: Any
    ) -> None:
        """The stream announced a task (its real start comes from the hook).

        Only remembered, raw, for a task the hook never sees start: one the run
        stopped before it could run, say.
        """
        if self._done or task_id in self._tasks:
            return
        self._announced[task_id] = (name, parent_task_id, triggers, self._now())

    def task_began(
        self,
        task_id: str,
        name: str,
        parent_task_id: str | None,
        step: int | None,
        triggers: tuple[str, ...],
        checkpoint_ns: str | None,
        pushed: bool = False,
    ) -> TaskRecord | None:
        """The node started running, seen from its own thread; returns the record.

        ``pushed``: a functional-API ``@task`` call, run in the same graph loop as
        the task that called it (``parent_task_id``).
        """
        with self._lock:
            if self._done:
                return None
            task = self._tasks.get(task_id)
            if task is not None:
                # Another attempt of a retried task (only the hook puts tasks
                # here, started): it runs again.
                task.returned, task.end_ns = False, None
                if self._failed:
                    self._failed.pop(task_id, None)
                return task
            try:
                self._last_ns = now = self._clock()
            except Exception as exc:  # noqa: BLE001 - see _now()
                now = self._clock_failed(exc)
            task = TaskRecord(
                task_id,
                name,
                parent_task_id,
                now,
                step,
                triggers,
                checkpoint_ns,
                # A top-level task's ("node:<id>") is empty: no call for it.
                namespace_of(checkpoint_ns)
                if checkpoint_ns and "|" in checkpoint_ns
                else "",
            )
            if parent_task_id is not None:
                if pushed:
                    # Same loop as its caller: same namespace, and a stream result
                    # exactly when the caller gets one.
                    caller = self._tasks.get(parent_task_id)
                    if caller is not None:
                        task.namespace = caller.namespace
                        task.streamed = caller.streamed
                    else:
                        # The caller has ended (it need not wait for the call): a
                        # top-level caller's namespace has no "|".
                        outer = (checkpoint_ns or "").rpartition("|")[0]
                        task.streamed = self._stream_tasks and (
                            self._stream_has_subgraphs or "|" not in outer
                        )
                else:
                    task.streamed = self._stream_has_subgraphs and self._stream_tasks
            elif not self._stream_tasks:
                task.streamed = False
            self._tasks[task_id] = task
            if self._announced:
                self._announced.pop(task_id, None)
            if parent_task_id is None:  # _start(), inline: no parent to open first
                task.started = True
                self._sink.task_started(self.run, task)
            else:
                self._start(task)
            return task

    def subgraph_entered(self, task_id: str, name: str) -> None:
        """The node of task ``task_id`` runs the subgraph compiled as ``name``.

        The first subgraph a node runs names it; later ones leave it as it is.
        """
        with self._lock:
            task = self._tasks.get(task_id)
            if self._done or task is None or task.subgraph is not None:
                return
            task.subgraph = name

    def task_returned(
        self,
        task_id: str,
        status: str,
        error: BaseException | None = None,
        *,
        interrupts: int = 0,
        interrupt_ids: tuple[str, ...] = (),
        interrupt_value: str | None = None,
    ) -> None:
        """The node returned or raised, seen from its own thread.

        An interrupted node reports what its ``GraphInterrupt`` carried; the stream's
        result, where one comes, has the last word.
        """
        with self._lock:
            task = self._tasks.get(task_id)
            if self._done or task is None:
                return
            try:
                self._last_ns = now = self._clock()
            except Exception as exc:  # noqa: BLE001 - see _now()
                now = self._clock_failed(exc)
            if interrupts:
                task.interrupts = interrupts
                task.interrupt_ids = interrupt_ids
                task.interrupt_value = interrupt_value
            # A retried task reports once per attempt: the last one wins.
            task.end_ns, task.status, task.returned = now, status, True
            task.error = error
            if not task.streamed:
                # No stream result will come for this task (one inside a subgraph,
                # or any when the stream reports no tasks). A failed attempt may
                # be retried (task_began resumes the record): it ends, with this
                # end time and error, when the task running its subgraph ends (or
                # the run does).
                if status == n.STATUS_ERROR:
                    self._failed[task_id] = task
                    return
                del self._tasks[task_id]
                task.error = None
                if self._failed:
                    self._end_failed_below(task_id)
                if self._parked is None and status != n.STATUS_INTERRUPTED:
                    # _task_ended(), inline: nothing to wait for or to explain.
                    self._sink.task_ended(self.run, task)
                else:
                    self._task_ended(task)

    def task_ok(self, task_id: str, name: str, parent_task_id: str | None) -> None:
        """The stream reported that a task finished without error or interrupt."""
        with self._lock:
            if self._done:
                return
            task = self._tasks.pop(task_id, None)
            if task is None or not task.returned:
                self._result_slow(task_id, name, parent_task_id, task)
                return
            if self._announced:
                self._announced.pop(task_id, None)
            task.status, task.error = n.STATUS_OK, None
            if self._failed:
                self._end_failed_below(task_id)
            self._task_ended(task)

    def _result_slow(
        self,
        task_id: str,
        name: str,
        parent_task_id: str | None,
        task: TaskRecord | None,
        error: BaseException | str | None = None,
        interrupts: int = 0,
        interrupt_ids: tuple[str, ...] = (),
        interrupt_value: str | None = None,
    ) -> None:
        """End a task with the stream's outcome (lock held): any case at all."""
        now = self._now()
        announced = self._announced.pop(task_id, None)
        if task is None:
            # The hook never saw it: it started when the stream announced it.
            task = self._new_task(
                task_id, name, parent_task_id, announced[3] if announced else now
            )
            if announced is not None:
                task.triggers = task_triggers(announced[2])
        self._start(task)
        returned = task.returned
        hook_error = task.error if returned else None
        if interrupts:
            task.status, task.interrupts = n.STATUS_INTERRUPTED, interrupts
            if interrupt_ids:
                task.interrupt_ids = interrupt_ids
            if interrupt_value is not None:
                task.interrupt_value = interrupt_value
            task.error = None
            self.run.interrupted = True
        elif error is not None:
            task.status = n.STATUS_ERROR
            task.error = error if isinstance(error, BaseException) else hook_error
        else:
            task.status, task.error = n.STATUS_OK, None
        if not returned:
            task.end_ns = now
        if self._failed:
            self._end_failed_below(task_id)
        self._task_ended(task)

    def task_result(
        self,
        task_id: str,
        name: str,
        parent_task_id: str | None,
        *,
        error: BaseException | str | None,
        interrupts: int,
        interrupt_ids: tuple[str, ...] = (),
        interrupt_value: str | None = None,
    ) -> None:
        """The stream reported a task's outcome: the task ends here."""
        with self._lock:
            if self._done:
                return
            self._result_slow(
                task_id,
                name,
                parent_task_id,
                self._tasks.pop(task_id, None),
                error,
                interrupts,
                interrupt_ids,
                interrupt_value,
            )

    # --- model calls -----------------------------------------------------------

    def llm_started(
        self,
        call_id: Hashable,
        task_id: str | None,
        *,
        operation: str,
        model: str | None,
        provider: str | None,
        parent: object = None,
        input_messages: Any = None,
    ) -> None:
        """A model call began."""
        with self._lock:
            if self._done or call_id in self._llms:
                return
            task = self._tasks.get(task_id) if task_id is not None else None
            llm = LlmRecord(
                call_id=call_id,
                task_id=task_id,
                operation=operation,
                model=model,
                provider=provider,
                start_ns=self._now(),
                parent=parent,
                node=task.name if task is not None else None,
                input_messages=input_messages,
            )
            if self._per_chunk:
                llm.gaps = []
            self._llms[call_id] = llm
            self._sink.llm_started(self.run, llm)

    def llm_chunk(self, call_id: Hashable) -> None:
        """A model call streamed one chunk.

        The hot path of a streamed answer: one model call streams from one thread, so
        counting needs no lock; only the first chunk (which reaches the sinks) does.
        ``RunHook.on_llm_new_token`` counts every chunk after the first itself, on
        the record in :attr:`open_llms`, exactly as here.
        """
        llm = self._llms.get(call_id)
        if llm is None or self._done:
            return
        try:
            self._last_ns = now = self._clock()
        except Exception as exc:  # noqa: BLE001 - see _now()
            now = self._clock_failed(exc)
        llm.chunks += 1
        last = llm.last_chunk_ns
        llm.last_chunk_ns = now
        if last is not None:
            gap = now - last
            if gap > llm.max_gap_ns:
                llm.max_gap_ns = gap
            if llm.gaps is not None:
                llm.gaps.append(gap)
        if llm.first_chunk_ns is None:
            with self._lock:
                if self._done or llm.first_chunk_ns is not None:
                    return
                llm.first_chunk_ns = now
                self._sink.llm_first_chunk(self.run, llm)

    def llm_ended(
        self,
        call_id: Hashable,
        *,
        error: BaseException | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        response_model: str | None = None,
        finish_reasons: tuple[str, ...] = (),
        output_messages: Any = None,
    ) -> None:
        """A model call finished."""
        with self._lock:
            if self._done:
                return
            llm = self._llms.pop(call_id, None)
            if llm is None:
                return
            llm.end_ns = self._now()
            llm.status = n.STATUS_OK if error is None else n.STATUS_ERROR
            llm.error = error
            llm.input_tokens = input_tokens
            llm.output_tokens = output_tokens
            llm.response_model = response_model
            llm.finish_reasons = finish_reasons
            llm.output_messages = output_messages
            self._sink.llm_ended(self.run, llm)

    # --- tool calls --------------------------------------------------------------

    def tool_started(
        self,
        call_id: Hashable,
        task_id: str | None,
        *,
        name: str,
        tool_call_id: str | None,
        parent: object = None,
        arguments: Any = None,
    ) -> None:
        """A tool call began."""
        with self._lock:
            if self._done or call_id in self._tools:
                return
            tool = ToolRecord(
                call_id=call_id,
                task_id=task_id,
                name=name,
                tool_call_id=tool_call_id,
                start_ns=self._now(),
                parent=parent,
                arguments=arguments,
            )
            self._tools[call_id] = tool
            self._sink.tool_started(self.run, tool)

    def tool_ended(
        self,
        call_id: Hashable,
        *,
        error: BaseException | None = None,
        result: Any = None,
    ) -> None:
        """A tool call finished."""
        with self._lock:
            if self._done:
                return
            tool = self._tools.pop(call_id, None)
            if tool is None:
                return
            tool.end_ns = self._now()
            tool.status = n.STATUS_OK if error is None else n.STATUS_ERROR
            tool.error = error
            tool.result = result
            self._sink.tool_ended(self.run, tool)

    # --- checkpointer and store calls -----------------------------------------------

    def checkpoint_started(
        self,
        operation: str,
        saver: str,
        checkpoint_ns: str | None = None,
        task_id: str | None = None,
        writes: int | None = None,
        parent_task_id: str | None = None,
        parent: object = None,
        written: object = NOT_READ,
    ) -> CheckpointRecord | None:
        """A checkpointer call of this run began; None once the run has ended.

        ``written``: the writes of a ``put_writes`` (see :meth:`expect_writes`),
        passed only when :attr:`wants_writes`. They are read later, in the batch
        (:meth:`take_writes`).

        Takes no lock. Saver calls run in LangGraph's background threads while
        node tasks report from theirs: a lock both take twice per call was
        contended, and cost more than the rest of the call's telemetry
        (``benchmarks/README.md``).

        Under ``defer_calls`` the sinks hear nothing now: the record is
        ``deferred``, and its start and end reach them from the batch once the
        call ended. Its span and duration are the same; made among the batch's
        other calls rather than between stretches of the saver's and LangGraph's
        code, they cost less (``benchmarks/README.md``). A reader that needs the
        span during the call (a database instrumentation nesting its own under
        it) has it made then, through :meth:`call_seen`.
        """
        if self._done:
            return None
        if written is not NOT_READ and task_id is not None:
            if type(written) in _WRITES_SEQUENCES:
                written = tuple(written)  # type: ignore[arg-type]
            self._incoming.append((task_id, written))
            batch = self._batch
            if batch is None:
                self.take_writes()
            elif not self._writes_queued:
                # Set before take_writes() clears it and reads on: writes appended
                # before it clears it, it reads; after, their call queues another.
                self._writes_queued = True
                batch.items.append((_take_writes, self, None, None, None))
                if monotonic_ns() > batch.due_ns:
                    batch.arm()
        try:
            self._last_ns = now = self._clock()
        except Exception as exc:  # noqa: BLE001 - see _now()
            now = self._clock_failed(exc)
        # Positional, in the fields' order: once per saver call.
        call = CheckpointRecord(
            self.run.graph,
            operation,
            saver,
            now,
            parent_task_id,
            parent,
            checkpoint_ns,
            task_id,
            writes,
        )
        if self._call_batch is not None:
            call.deferred = True
        else:
            self._sink.checkpoint_started(self.run, call)
        # _open(), inline.
        calls = self._calls
        calls[call] = None
        if self._done and calls.pop(call, _GONE) is not _GONE:
            self._cancel(call, self._now())
            return None
        return call

    def store_started(
        self, operation: str, store: str, *, parent: object = None
    ) -> StoreRecord | None:
        """A store call made inside this run began; None once the run has ended."""
        if self._done:
            return None
        call = StoreRecord(
            graph=self.run.graph,
            operation=operation,
            store=store,
            start_ns=self._now(),
            parent=parent,
        )
        if self._call_batch is not None:
            call.deferred = True
        else:
            self._sink.store_started(self.run, call)
        return self._open(call)

    def _open(self, call: _C) -> _C | None:
        # Registered after its sinks started it (or once it is deferred, when
        # whoever ends it starts it first), so that whoever ends it finds a span
        # to end. finish() sets _done before it ends the calls it finds: a call
        # registered too late for it sees _done here and ends itself.
        calls = self._calls
        calls[call] = None
        if self._done and calls.pop(call, _GONE) is not _GONE:
            self._cancel(call, self._now())
            return None
        return call

    def call_ended(
        self,
        call: CheckpointRecord | StoreRecord,
        error: BaseException | None = None,
        results: int | None = None,
    ) -> None:
        """A checkpointer or store call returned or raised; ends it exactly once."""
        if self._calls.pop(call, _GONE) is _GONE:  # already ended (by finish())
            return
        try:
            self._last_ns = now = self._clock()
        except Exception as exc:  # noqa: BLE001 - see _now()
            now = self._clock_failed(exc)
        if error is None and results is None:
            # Nearly every call (one per task and superstep): inline.
            call.end_ns, call.status = now, n.STATUS_OK
        else:
            _close_call(call, now, error, results)
            if call.error is not None:
                with self._lock:
                    run = self.run
                    if len(run.call_errors) < MAX_CALL_ERRORS:
                        run.call_errors = (*run.call_errors, call.error)
        batch = self._call_batch
        if batch is None:
            _end_call(self._sink, self.run, call)
            return
        # Also a call whose span a reader made (call_seen), maybe still making
        # it in another thread: hand_on() waits for it. Appended before the flag
        # is read (hand_on() clears it before it reads on): handed on by a
        # hand_on() queued already, or by the one queued now.
        self._ended.append(call)
        if not self._ended_queued:
            self._ended_queued = True
            batch.items.append((_hand_on, self, None, None, None))
        if now > batch.due_ns:
            batch.arm()

    def _cancel(self, call: CheckpointRecord | StoreRecord, now: int) -> None:
        # A call the run's end took from the calls in flight: how it ends is not
        # known, so it ends cancelled, now.
        call.end_ns, call.status = now, n.STATUS_CANCELLED
        self.sink_call(call)

    def call_seen(self, call: CheckpointRecord | StoreRecord) -> None:
        """Someone reads the span of a call (see ``defer_calls``): the sinks hear
        of its start now, once, if they have not yet.

        Returns once they have, also when another thread is handing the call on
        (readers are rare: a database instrumentation's span, say)."""
        with self._seen_lock:
            if call.deferred:
                # Cleared first: a read of the same span while it is made, in this
                # thread (a processor's on_start), must not start it again.
                call.deferred = False
                _start_call(self._sink, self.run, call)

    def hand_on(self) -> None:
        """Hand the calls that ended since to the sinks, together (a batch's
        call): each started and ended at once, or only ended if its start was
        handed on already (see :meth:`call_seen`). Up to
        :data:`_CALLS_PER_LOCK` per hold of the lock :meth:`call_seen` takes,
        so a reader of a span in flight waits for a few calls at most.
        """
        self._ended_queued = False
        ended = self._ended
        sink, run = self._sink, self.run
        while ended:
            done: list[CheckpointRecord | StoreRecord] = []
            seen = []
            try:
                # Under the lock, as in sink_call().
                with self._seen_lock:
                    for _ in range(_CALLS_PER_LOCK):
                        try:
                            call = ended.popleft()
                        except IndexError:
                            break
                        if call.deferred:
                            call.deferred = False
                            done.append(call)
                        else:
                            seen.append(call)
                    if done:
                        sink.calls_done(run, done)
            finally:
                # Taken, so handed on, also after a failure above.
                for call in seen:
                    _end_call(sink, run, call)

    def sink_call(
        self, call: CheckpointRecord | StoreRecord, _b: None = None, _c: None = None
    ) -> None:
        """Hand an ended call to the sinks: start and end at once, or only its
        end if they had its start (see :meth:`call_seen`). The unused arguments
        make it a batch's call."""
        # Under the lock: a reader of its span (call_seen) that came first has
        # finished starting it before the end is handed on, and one that comes
        # now waits for the span.
        with self._seen_lock:
            if call.deferred:
                call.deferred = False
                if isinstance(call, CheckpointRecord):
                    self._sink.checkpoint_done(self.run, call)
                else:
                    self._sink.store_done(self.run, call)
                return
        _end_call(self._sink, self.run, call)

    # --- what the caller sees ------------------------------------------------------

    def token_delivered(self) -> None:
        """An LLM token part is being handed to the caller.

        Only the first of a run counts. Its time is read here; the sinks hear of it
        from :meth:`announce_firsts`, once the caller has the part.
        """
        if self.run.first_token_ns is not None:
            return  # every token after the first: nothing to do, no lock
        with self._lock:
            if self._done or self.run.first_token_ns is not None:
                return
            self.run.first_token_ns = self._now()
            self.firsts_due |= _FIRST_TOKEN

    def chunk_delivered(self, now_ns: int | None = None) -> None:
        """The first stream item of a streaming call is being handed to the caller.

        ``now_ns`` is the tap's own reading of the clock at that moment (None: read
        it here). Only the first call of a run counts; the sinks hear of it from
        :meth:`announce_firsts`.
        """
        with self._lock:
            if self._done or self.run.first_chunk_ns is not None:
                return
            self.run.first_chunk_ns = now_ns if now_ns is not None else self._now()
            self.firsts_due |= _FIRST_CHUNK

    def announce_firsts(self) -> None:
        """Hand the run's first token and first chunk to the sinks.

        The tap calls this after the caller got the item: whatever the sinks do
        (a metric's first label child, say) then never sits between the clock
        reading and the handover, where it would make the caller see the token
        later than the reading says. :meth:`finish` announces what is left.
        """
        with self._lock:
            if not self._done:
                self._announce_firsts()

    def _announce_firsts(self) -> None:
        # Under the lock.
        due, self.firsts_due = self.firsts_due, 0
        if due & _FIRST_TOKEN:
            self._sink.run_first_token(self.run)
        if due & _FIRST_CHUNK:
            self._sink.run_first_chunk(self.run)

    def add_consumer_wait(self, wait_ns: int) -> None:
        """The graph waited ``wait_ns`` for the caller to ask for the next chunk."""
        if wait_ns > 0:
            self.run.consumer_wait_ns += wait_ns

    def mark_interrupted(self) -> None:
        """The caller-visible output carried an interrupt (also static breakpoints)."""
        self.run.interrupted = True

    # --- the end ----------------------------------------------------------------------

    def finish(self, status: str, error: BaseException | None = None) -> None:
        """End the run and everything still open in it; safe to call more than once.

        Open tasks that the node's thread saw return keep that outcome and end time;
        the rest (and open model and tool calls) end now with the run's status.
        """
        with self._lock:
            if self._done:
                return
            self._announce_firsts()
            # The writes the checkpointer was handed and not yet read: their
            # tasks end with where they led.
            incoming = self._incoming
            while incoming:
                task_id, written = incoming.popleft()
                led = self._task_writes(task_id, self._led_to(written))
                if led is not None:
                    self._sink.task_ended(self.run, led)
            self._done = True
            now = self._now()
            leftover = n.STATUS_OK if status == n.STATUS_INTERRUPTED else status
            for llm in self._llms.values():
                llm.end_ns, llm.status, llm.error = now, leftover, error
                self._sink.llm_ended(self.run, llm)
            for tool in self._tools.values():
                tool.end_ns, tool.status, tool.error = now, leftover, error
                self._sink.tool_ended(self.run, tool)
            # A call still in flight outlived its run: how it ends is not known.
            # Popped one by one: a call that returns meanwhile ends itself.
            calls = self._calls
            for call in list(calls):
                if calls.pop(call, _GONE) is not _GONE:
                    self._cancel(call, now)
            # Tasks that ended but still waited for their writes: in the order they
            # ended (children before the tasks that run their subgraphs).
            if self._parked:
                for task in self._parked.values():
                    self._sink.task_ended(self.run, task)
                self._parked.clear()
            # Announced but never ran: the run stopped before it could.
            for task_id, (name, parent_id, triggers, at) in self._announced.items():
                if task_id not in self._tasks:
                    task = self._new_task(task_id, name, parent_id, at)
                    self._tasks[task_id] = task
                    task.triggers = task_triggers(triggers)
                    task.end_ns, task.status = now, n.STATUS_CANCELLED
            self._announced.clear()
            # Children first: a subgraph's tasks end before the task that runs it.
            for task in sorted(self._tasks.values(), key=self._depth, reverse=True):
                if task.end_ns is None:
                    task.end_ns, task.status = now, leftover
                    task.error = error if leftover == n.STATUS_ERROR else None
                elif task.status == n.STATUS_INTERRUPTED:
                    self.run.interrupted = True
                self._start(task)
                self._task_ended(task, final=True)
            self._tasks.clear()
            self._failed.clear()
            self._writes.clear()
            self._llms.clear()
            self._tools.clear()
            if status == n.STATUS_OK and self.run.interrupted:
                status = n.STATUS_INTERRUPTED
            self.run.end_ns = now
            self.run.status = status
            self.run.error = error
        # After the lock: the run's end flushes the batch, whose calls (reading a
        # run's writes) take a run's lock, holding the batch's.
        self._sink.run_ended(self.run)

    def _task_ended(self, task: TaskRecord, final: bool = False) -> None:
        """Hand out an ended task; an interrupted one also explains the run's pause.

        While the run's writes are awaited (see ``expect_writes``) a task whose
        writes have not come yet waits for them, unless the run is ``final``-ly
        ending.
        """
        if task.status == n.STATUS_INTERRUPTED:
            run = self.run
            run.interrupted = True
            if run.interrupt_task is None:
                # Children end before their parents: the first is the innermost.
                run.interrupt_task = task
            for interrupt_id in task.interrupt_ids:
                if interrupt_id not in run.interrupt_ids:
                    run.interrupt_ids = (*run.interrupt_ids, interrupt_id)
        parked = self._parked
        if parked is not None:
            if task.task_id in self._writes:
                task.next = self._writes.pop(task.task_id)
            elif not final:
                parked[task.task_id] = task
                return
        self._sink.task_ended(self.run, task)

    # --- where tasks led -------------------------------------------------------

    def take_writes(self) -> None:
        """Read the writes handed to the checkpointer so far: each ends its task
        if it waits for them (:meth:`expect_writes`).

        Made from the batch (or by the run's end), not during the saver's call: a
        call's own telemetry is all its thread pays for, and reading the writes
        and ending the task among the batch's other calls costs less than
        between stretches of LangGraph's code. The writes are read under the
        run's lock, so the run's end, which reads what is left under it first,
        never ends a task whose writes were taken but not yet handed over. Up to
        :data:`_WRITES_PER_LOCK` are read per hold: a task thread waits on the
        lock for a few of them at most, and most batches take it once.
        """
        self._writes_queued = False
        incoming = self._incoming
        sink, run = self._sink, self.run
        while incoming:
            led_tasks = []
            try:
                with self._lock:
                    for _ in range(_WRITES_PER_LOCK):
                        try:
                            task_id, written = incoming.popleft()
                        except IndexError:
                            break
                        if self._done:
                            continue  # the run ended: its tasks ended with it
                        led = self._task_writes(task_id, self._led_to(written))
                        if led is not None:
                            led_tasks.append(led)
            finally:
                # Their ends' sinks after the lock (the task threads wait on it),
                # also those taken before a failure.
                for led in led_tasks:
                    sink.task_ended(run, led)

    def expect_writes(self) -> None:
        """This run's checkpointer will be handed each task's writes: wait for them."""
        with self._lock:
            if self._parked is None:
                self._parked = {}
            self.wants_writes = True

    def _task_writes(
        self, task_id: str, nodes: tuple[str, ...] | None
    ) -> TaskRecord | None:
        # LangGraph handed the checkpointer the task's writes, leading to `nodes`
        # (under the lock, the run still open). A retried task's writes come once
        # per attempt: the last ones win. Returns the parked task they end, taken
        # out of finish()'s reach: the caller hands it to the sinks.
        parked = self._parked
        if parked is None:
            return None
        task = parked.pop(task_id, None)
        if task is None:
            if task_id in self._tasks:
                self._writes[task_id] = nodes
            return None
        task.next = nodes
        return task

    def graph_owner(self, checkpoint_ns: str) -> str | None:
        """The running task that runs the graph of ``checkpoint_ns``, if one does.

        For a subgraph compiled with ``checkpointer=True``, whose namespace keeps no
        task ids (``"outer"``, ``"a|outer"``): the one unfinished task of node
        ``outer`` in namespace ``a``. None when there is none, or several.
        """
        prefix, _, node = checkpoint_ns.rpartition("|")
        with self._lock:
            # Only such subgraphs' calls get here, and only open tasks are kept:
            # a scan, so the per-task path keeps no index for them.
            owners = [
                task.task_id
                for task in self._tasks.values()
                if task.name == node and task.namespace == prefix and not task.returned
            ]
        return owners[0] if len(owners) == 1 else None

    def _end_failed_below(self, task_id: str) -> None:
        # The task running their subgraph is ending, so no retry of these failed
        # attempts can come: they end first, children before parents (under the
        # lock).
        below = [t for t in self._failed.values() if task_id in self._parent_ids(t)]
        for task in sorted(below, key=self._depth, reverse=True):
            del self._failed[task.task_id]
            self._tasks.pop(task.task_id, None)
            self._task_ended(task)

    def _parent_ids(self, task: TaskRecord) -> Iterator[str]:
        # The task's parent task ids, nearest first, as far as open records go.
        parent, hops = task.parent_task_id, 0
        while parent is not None and hops < 64:
            yield parent
            hops += 1
            record = self._tasks.get(parent)
            parent = record.parent_task_id if record is not None else None

    def _depth(self, task: TaskRecord) -> int:
        return sum(1 for _ in self._parent_ids(task))


#: Writes :meth:`RunTracker.take_writes` reads per hold of the run's lock.
_WRITES_PER_LOCK = 32


def _take_writes(tracker: RunTracker, _a: object, _b: object, _c: object) -> None:
    # A batch item (see lg_otel._batch): the call and its four arguments.
    tracker.take_writes()


#: Ended calls :meth:`RunTracker.hand_on` hands on per hold of the lock a reader
#: of a call's span waits on.
_CALLS_PER_LOCK = 32


def _hand_on(tracker: RunTracker, _a: object, _b: object, _c: object) -> None:
    # A batch item, as _take_writes.
    tracker.hand_on()


def _start_call(
    sink: Sink, run: RunRecord | None, call: CheckpointRecord | StoreRecord
) -> None:
    if isinstance(call, CheckpointRecord):
        sink.checkpoint_started(run, call)
    else:
        sink.store_started(run, call)


def _close_call(
    call: CheckpointRecord | StoreRecord,
    now: int,
    error: BaseException | None,
    results: int | None,
) -> None:
    call.end_ns = now
    if error is None:
        call.status = n.STATUS_OK
    elif isinstance(error, Exception):
        call.status, call.error = n.STATUS_ERROR, error
    else:  # CancelledError, KeyboardInterrupt...: stopped, not failed
        call.status = n.STATUS_CANCELLED
    if results is not None and isinstance(call, StoreRecord):
        call.results = results


def _end_call(
    sink: Sink, run: RunRecord | None, call: CheckpointRecord | StoreRecord
) -> None:
    if isinstance(call, CheckpointRecord):
        sink.checkpoint_ended(run, call)
    else:
        sink.store_ended(run, call)


class OutsideRun:
    """Checkpointer calls made outside any run (``get_state()``...): no run record.

    Each call is its own record, ended by the one that started it; sinks get
    ``run=None`` and the call's explicit parent (the caller's context at the call).
    """

    __slots__ = ("_clock", "_last_ns", "_on_error", "_sink", "graph", "run")

    def __init__(
        self,
        sink: Sink,
        clock: Clock,
        *,
        graph: str,
        on_clock_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Report to ``sink``, timed by ``clock``, labelled with ``graph``."""
        self._sink = sink
        self._clock = clock
        self._on_error = on_clock_error
        self._last_ns = 0
        self.graph = graph
        self.run: RunRecord | None = None

    def _now(self) -> int:
        try:
            self._last_ns = self._clock()
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail the call
            if self._on_error is not None:
                self._on_error(exc)
        return self._last_ns

    def expect_writes(self) -> None:
        """Nothing to wait for: no task runs outside a run."""

    def call_seen(self, call: CheckpointRecord | StoreRecord) -> None:
        """Nothing to do: calls outside a run are never deferred."""

    #: Writes made outside any run (``update_state``) end no task.
    wants_writes = False

    def graph_owner(self, checkpoint_ns: str) -> str | None:
        """No task runs outside a run."""
        return None

    def checkpoint_started(
        self,
        operation: str,
        saver: str,
        checkpoint_ns: str | None = None,
        task_id: str | None = None,
        writes: int | None = None,
        parent_task_id: str | None = None,
        parent: object = None,
        written: object = NOT_READ,
    ) -> CheckpointRecord | None:
        """A checkpointer call began (``written`` is not read: no task waits)."""
        call = CheckpointRecord(
            graph=self.graph,
            operation=operation,
            saver=saver,
            start_ns=self._now(),
            parent=parent,
            checkpoint_ns=checkpoint_ns,
            task_id=task_id,
            writes=writes,
        )
        self._sink.checkpoint_started(None, call)
        return call

    def store_started(
        self, operation: str, store: str, *, parent: object = None
    ) -> StoreRecord | None:
        """A store call began."""
        call = StoreRecord(
            graph=self.graph,
            operation=operation,
            store=store,
            start_ns=self._now(),
            parent=parent,
        )
        self._sink.store_started(None, call)
        return call

    def call_ended(
        self,
        call: CheckpointRecord | StoreRecord,
        error: BaseException | None = None,
        results: int | None = None,
    ) -> None:
        """A call returned or raised; a second end of the same call does nothing."""
        if call.end_ns is not None:
            return
        _close_call(call, self._now(), error, results)
        _end_call(self._sink, None, call)
