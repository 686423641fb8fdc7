"""Plain records of what happened in one graph run, handed from the tracker to sinks.

Pure data: no OpenTelemetry, prometheus_client or structlog here. Times are
monotonic nanoseconds from the tracker's injected clock; sinks convert them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Slot where the spans sink keeps a record's span; the metrics and logs sinks read
#: it for exemplars and trace ids.
SPAN_SLOT = "span"
#: Slot where the spans sink keeps a context holding that span (for reuse).
SPAN_CONTEXT_SLOT = "ctx"


@dataclass(slots=True, eq=False)
class RunRecord:
    """One call of ``stream``/``astream`` (and so of ``invoke``, ``batch``...)."""

    graph: str
    thread_id: str | None
    start_ns: int
    #: Opaque parent context captured when the caller called the graph.
    parent: object = None
    #: Opaque links to earlier runs (a resumed thread links its interrupted run).
    links: tuple[object, ...] = ()
    end_ns: int | None = None
    status: str | None = None
    error: BaseException | None = None
    interrupted: bool = False
    #: When the first LLM token was handed to the caller.
    first_token_ns: int | None = None
    #: The first task that ended interrupted (its node names the run's pause).
    interrupt_task: TaskRecord | None = None
    #: Distinct interrupt ids the run's tasks reported, in order.
    interrupt_ids: tuple[str, ...] = ()
    #: When the first stream item of any mode was handed to the caller (streaming
    #: calls only: None under ``invoke()``).
    first_chunk_ns: int | None = None
    #: Total time the graph sat waiting for the caller to pull the next chunk.
    consumer_wait_ns: int = 0
    #: Per-sink state (a span, say), keyed by sink; sinks own what they put here.
    slots: dict[str, Any] = field(default_factory=dict)
    #: Exceptions the run's checkpointer and store calls raised (see
    #: :func:`raised_by_call`); a tuple, so a run without any allocates nothing.
    call_errors: tuple[BaseException, ...] = ()


#: At most this many call exceptions are kept per run (a node may catch many).
MAX_CALL_ERRORS = 32


def raised_by_call(run: RunRecord | None, error: BaseException | None) -> bool:
    """Whether ``error``, or an exception it was raised from, is one that a
    checkpointer or store call of ``run`` raised.

    A driver's message can quote keys and values, so such an error is reported by
    its type only, wherever it surfaces (the run, a task, a log line).
    """
    if run is None or error is None or not run.call_errors:
        return False
    exc: BaseException | None = error
    for _ in range(64):  # a cause chain can loop; never follow it for long
        if exc is None:
            return False
        if any(exc is raised for raised in run.call_errors):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass(slots=True, eq=False)
class TaskRecord:
    """One execution of a node, at any depth."""

    task_id: str
    name: str
    #: Task id of the node that runs this task's subgraph; None at the top level.
    parent_task_id: str | None
    start_ns: int
    step: int | None = None
    triggers: tuple[str, ...] = ()
    checkpoint_ns: str | None = None
    #: Node names leading to this task's subgraph, ``|``-joined; "" at the top level.
    namespace: str = ""
    #: Compiled name of the subgraph this task's node runs (None: runs none, or
    #: not seen).
    subgraph: str | None = None
    end_ns: int | None = None
    status: str | None = None
    error: BaseException | None = None
    interrupts: int = 0
    #: LangGraph's ids of this task's interrupts.
    interrupt_ids: tuple[str, ...] = ()
    #: The interrupts' value as the content policy rendered it; None unless opted in.
    interrupt_value: str | None = None
    #: Nodes this task's writes trigger; None when LangGraph reported no writes.
    next: tuple[str, ...] | None = None
    started: bool = False
    #: The node's own thread saw it return (``end_ns``, ``status`` and ``error``
    #: say how); the stream's report of its outcome may still come.
    returned: bool = False
    #: The stream will report this task's outcome (the task ends then); False: it
    #: ends when its node returns, as the hook sees it.
    streamed: bool = True
    slots: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class LlmRecord:
    """One chat-model or LLM call made inside a node."""

    #: Opaque key of the call (LangChain's run id), unique within the run.
    call_id: Hashable
    task_id: str | None
    operation: str
    model: str | None
    provider: str | None
    start_ns: int
    #: Opaque explicit parent (a user span current when the model was called).
    parent: object = None
    #: Name of the node whose task made the call (None if that task is unknown).
    node: str | None = None
    first_chunk_ns: int | None = None
    last_chunk_ns: int | None = None
    chunks: int = 0
    #: Largest gap between two consecutive chunks.
    max_gap_ns: int = 0
    #: Every gap between consecutive chunks, in order; None unless per-chunk
    #: metrics are on (``Config.per_chunk_metrics``).
    gaps: list[int] | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    response_model: str | None = None
    finish_reasons: tuple[str, ...] = ()
    end_ns: int | None = None
    status: str | None = None
    error: BaseException | None = None
    input_messages: Any = None
    output_messages: Any = None
    slots: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class ToolRecord:
    """One tool call made inside a node (``ToolNode`` or a direct tool invoke)."""

    #: Opaque key of the call (LangChain's run id), unique within the run.
    call_id: Hashable
    task_id: str | None
    name: str
    tool_call_id: str | None
    start_ns: int
    parent: object = None
    end_ns: int | None = None
    status: str | None = None
    error: BaseException | None = None
    arguments: Any = None
    result: Any = None
    slots: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class CheckpointRecord:
    """One call to a checkpointer, made by a run or by a state method.

    Never carries keys, values or payloads: only what the call is and how it went.
    """

    #: Graph name (metric label), also outside any run.
    graph: str
    #: The saver method, without its ``a`` prefix.
    operation: str
    #: The saver's class name.
    saver: str
    start_ns: int
    #: Task whose subgraph made the call (from the call's checkpoint namespace).
    parent_task_id: str | None = None
    #: Opaque explicit parent: outside a run, the caller's context at the call.
    parent: object = None
    checkpoint_ns: str | None = None
    #: The task whose writes a ``put_writes`` saves.
    task_id: str | None = None
    #: How many writes a ``put_writes`` saves.
    writes: int | None = None
    end_ns: int | None = None
    status: str | None = None
    error: BaseException | None = None
    #: The sinks have not heard of the call yet: they will hear of its start and
    #: its end together, after it ended (see ``RunTracker``'s ``defer_calls``).
    deferred: bool = False
    slots: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class StoreRecord:
    """One call node code made to the graph's long-term store (no keys, no values)."""

    graph: str
    #: The store method, without its ``a`` prefix.
    operation: str
    #: The store's class name.
    store: str
    start_ns: int
    #: Opaque explicit parent: the context current in the node at the call.
    parent: object = None
    #: Items returned, for ``search`` and ``list_namespaces``.
    results: int | None = None
    end_ns: int | None = None
    status: str | None = None
    error: BaseException | None = None
    #: As :attr:`CheckpointRecord.deferred`.
    deferred: bool = False
    slots: dict[str, Any] = field(default_factory=dict)


class Sink(Protocol):
    """Receives lifecycle records in order; each call is made once per record."""

    def run_started(self, run: RunRecord) -> None:
        """A run began."""
        return None

    def run_ended(self, run: RunRecord) -> None:
        """A run finished (any status); called last, exactly once."""
        return None

    def task_started(self, run: RunRecord, task: TaskRecord) -> None:
        """A node task began executing."""
        return None

    def task_ended(self, run: RunRecord, task: TaskRecord) -> None:
        """A node task finished."""
        return None

    def llm_started(self, run: RunRecord, llm: LlmRecord) -> None:
        """A model call began."""
        return None

    def llm_first_chunk(self, run: RunRecord, llm: LlmRecord) -> None:
        """A model call produced its first streamed chunk."""
        return None

    def llm_ended(self, run: RunRecord, llm: LlmRecord) -> None:
        """A model call finished."""
        return None

    def tool_started(self, run: RunRecord, tool: ToolRecord) -> None:
        """A tool call began."""
        return None

    def tool_ended(self, run: RunRecord, tool: ToolRecord) -> None:
        """A tool call finished."""
        return None

    def run_first_token(self, run: RunRecord) -> None:
        """The first LLM token of the run was handed to the caller."""
        return None

    def run_first_chunk(self, run: RunRecord) -> None:
        """The first stream item of a streaming call was handed to the caller."""
        return None

    # --- checkpoints and stores: ``run`` is None for calls outside any run ---

    def checkpoint_started(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        """A checkpointer call began."""
        return None

    def checkpoint_ended(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        """A checkpointer call finished (before ``run_ended`` of its run)."""
        return None

    def store_started(self, run: RunRecord | None, call: StoreRecord) -> None:
        """A store call began."""
        return None

    def store_ended(self, run: RunRecord | None, call: StoreRecord) -> None:
        """A store call finished (before ``run_ended`` of its run)."""
        return None

    # A run's calls usually reach the sinks once they ended, from a batch, start
    # and end together: a sink may do both at once (and need queue nothing).

    def checkpoint_done(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        """A checkpointer call that ended, handed on only now: its start and end."""
        self.checkpoint_started(run, call)
        self.checkpoint_ended(run, call)

    def store_done(self, run: RunRecord | None, call: StoreRecord) -> None:
        """A store call that ended, handed on only now: its start and end."""
        self.store_started(run, call)
        self.store_ended(run, call)

    def calls_done(
        self,
        run: RunRecord,
        calls: Sequence[CheckpointRecord | StoreRecord],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Calls of a run that ended, handed on together from its batch: each, in
        order, as :meth:`checkpoint_done` or :meth:`store_done`.

        ``on_error``: given, a call that fails goes to it and the next call goes
        on (one failure loses that call's telemetry alone); None: it raises. A
        sink that does this itself does for each call what those two do.
        """
        for call in calls:
            try:
                if isinstance(call, CheckpointRecord):
                    self.checkpoint_done(run, call)
                else:
                    self.store_done(run, call)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(exc)


class NullSink(Sink):
    """A sink that ignores everything; subclass it and override what you need.

    The no-op bodies are the protocol's own (explicitly subclassing a Protocol
    inherits its methods).
    """
