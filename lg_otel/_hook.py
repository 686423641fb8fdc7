"""The per-run hook: a LangChain callback handler passed through the run's config only.

It does what LangGraph's stream cannot: it runs in the node's own thread or task, so
it can (1) make the node's task span current while the node runs, so spans that user
code or other instrumentations create inside a node nest under it, and (2) time task
starts/ends, model calls and tool calls exactly, without forcing models to stream.
It never re-derives the graph: task identity comes from LangGraph's own config
metadata (``langgraph_checkpoint_ns``), and outcomes from the node's return or
exception (and from the ``tasks`` stream where the run asks for it).

Nothing global is patched: the handler lives in one run's ``config["callbacks"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langgraph.errors import GraphBubbleUp, GraphInterrupt

from lg_otel import _names as n
from lg_otel._content import ContentPolicy, generations_json, messages_json
from lg_otel._parse import interrupt_parts, split_checkpoint_ns
from lg_otel._tracker import RunTracker

#: Key of the node's checkpoint namespace in LangGraph's run metadata.
_NS_KEY = "langgraph_checkpoint_ns"
#: LangChain's tag on the first step of a sequence: a ``@task`` call's root run.
_SEQ_FIRST = "seq:step:1"
#: The triggers of a task that LangGraph pushes (its ``PUSH``): calls and ``Send``s.
_PUSH_TRIGGERS = ("__pregel_push",)


def status_of(error: BaseException) -> str:
    """The ``langgraph.status`` an exception stands for (control flow is no error)."""
    if isinstance(error, GraphInterrupt):
        return n.STATUS_INTERRUPTED
    if isinstance(error, GraphBubbleUp):
        # ParentCommand and friends hand control elsewhere; the node did its job.
        return n.STATUS_OK
    if isinstance(error, Exception):
        return n.STATUS_ERROR
    # CancelledError, KeyboardInterrupt, GeneratorExit: stopped, not failed.
    return n.STATUS_CANCELLED


class Binder:
    """Makes a task's span current in the node's context; no-op by default."""

    def activate(self, run: Any, task: Any) -> object | None:
        """Make ``task`` current; returns a token for :meth:`deactivate`."""
        return None

    def deactivate(self, token: object) -> bool:
        """Undo :meth:`activate`; False when not in the context that activated."""
        return True

    def current_parent(self, run: Any) -> object | None:
        """The current context if it belongs to ``run``'s trace, else None."""
        return None

    def context_var(self) -> Any:
        """The context variable :meth:`activate` sets a record's context on
        (``record.slots[SPAN_CONTEXT_SLOT]``), for callers that set it inline;
        None: call :meth:`activate`."""
        return None

    def pending_context(self, owner: Any, call: Any) -> object | None:
        """A context to make current during a checkpointer or store ``call``
        whose sinks have not heard of it yet (its record is ``deferred``): its
        span is made when first read, by ``owner.call_seen(call)``."""
        return None


class RunHook(BaseCallbackHandler):
    """Feeds one run's tracker from inside the nodes; never raises."""

    # Called in the node's own context (also under asyncio), never in a thread pool:
    # the span must be current in the very context the node runs in.
    run_inline = True
    raise_error = False
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True
    # Plain attributes, not the base class's properties: LangChain reads the one
    # of each event before every call, twice per node task at the least.
    ignore_chain = False
    ignore_llm = False
    ignore_chat_model = False
    ignore_agent = False

    def __init__(
        self,
        tracker: RunTracker,
        binder: Binder,
        on_error: Callable[[str, BaseException], None],
        policy: ContentPolicy | None = None,
    ) -> None:
        """Bind the hook to one run; ``policy`` decides what content is captured."""
        super().__init__()
        self.tracker = tracker
        # For the inline count of chunks after a call's first (on_llm_new_token).
        self._llms = tracker.open_llms
        self._clock = tracker.clock
        self._policy = policy
        self._binder = binder
        self._on_error = on_error
        # Run ids are keyed by their int: a UUID hashes in Python, an int in C.
        # chain run id -> (task id, context token) for task roots only
        self._roots: dict[int, tuple[str, object | None]] = {}
        #: Tokens that could not be reset where the chain ended (see drain()).
        self.pending: list[object] = []
        # chain run id -> (name, the root's task id), for chains run directly by a
        # task root: the one whose run parents a subgraph task's root is the
        # subgraph (a Pregel run), run by that task.
        self._children: dict[int, tuple[str, str]] = {}

    def drain(self) -> None:
        """Reset context tokens that the chain's end could not reset.

        Under asyncio LangChain ends chains from a shielded task, i.e. in a copy of
        the context. When LangGraph ran the task inline in the stream's own context,
        the tap calls this from that context after the next part, so the task's span
        never stays current for the caller. Tokens of other contexts (a task's own,
        already gone) are dropped.
        """
        while self.pending:
            try:
                self._binder.deactivate(self.pending.pop())
            except Exception as exc:  # noqa: BLE001 - telemetry must not fail the host
                self._on_error(n.COMPONENT_HOOK, exc)

    # --- node tasks -------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Open a task when this chain is a task's root runnable."""
        if not tags or not metadata:
            return
        try:
            node = metadata.get("langgraph_node")
            # LangGraph tags a task's root run (only it) with its step, and names it
            # after the node; nested runnables inherit the metadata but not the tag.
            name = kwargs.get("name")
            step = metadata.get("langgraph_step")
            pushed = False
            if name != node or f"graph:step:{step}" not in tags:
                if name == node and _SEQ_FIRST in tags:
                    pushed = self._called_task(metadata, parent_run_id)
                if not pushed:
                    if (
                        parent_run_id is not None
                        and isinstance(name, str)
                        and parent_run_id.int in self._roots
                    ):
                        self._children[run_id.int] = (
                            name,
                            self._roots[parent_run_id.int][0],
                        )
                    return
            checkpoint_ns = metadata.get(_NS_KEY)
            if not isinstance(checkpoint_ns, str) or not isinstance(node, str):
                return
            task_id: str | None
            if "|" not in checkpoint_ns:  # a top-level task: the common case
                task_id, parent_task_id = checkpoint_ns.partition(":")[2], None
            else:
                task_id, parent_task_id = split_checkpoint_ns(checkpoint_ns)
                if parent_run_id is not None and not pushed:
                    # A subgraph's task: the run it runs in is its graph, named as
                    # compiled (LangGraph names a graph's run after get_name()).
                    child = self._children.get(parent_run_id.int)
                    if child is not None:
                        subgraph, runner = child
                        if parent_task_id is None:
                            # A subgraph compiled with checkpointer=True keeps no
                            # task ids in its namespace ("outer|inner:<id>"): its
                            # tasks' parent is the task that runs it.
                            parent_task_id = runner
                        self.tracker.subgraph_entered(parent_task_id, subgraph)
            if not task_id:
                return
            triggers = metadata.get("langgraph_triggers") or ()
            if type(triggers) is not tuple:
                triggers = tuple(map(str, triggers))
            task = self.tracker.task_began(
                task_id,
                node,
                parent_task_id,
                step if isinstance(step, int) else None,
                triggers,
                checkpoint_ns,
                pushed,
            )
            if task is None:
                return
            token = self._binder.activate(self.tracker.run, task)
            self._roots[run_id.int] = (task_id, token)
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail a node
            self._on_error(n.COMPONENT_HOOK, exc)

    def _called_task(
        self, metadata: Mapping[str, Any], parent_run_id: UUID | None
    ) -> bool:
        """Whether this run is the root of a functional-API ``@task`` call.

        LangGraph runs a ``@task`` as a pushed task of the caller's loop: its root
        run is named after it and tagged as the first step of a sequence (not with
        a graph step), and its namespace adds its own task id to the caller's. The
        run of a subgraph compiled with its node's name, in a ``Send`` task, has
        the same name, tag and trigger, but the namespace of the task running it.
        """
        if metadata.get("langgraph_triggers") != _PUSH_TRIGGERS:
            return False
        checkpoint_ns = metadata.get(_NS_KEY)
        if not isinstance(checkpoint_ns, str) or "|" not in checkpoint_ns:
            return False
        task_id, caller = split_checkpoint_ns(checkpoint_ns)
        if not task_id or caller is None or task_id == caller:
            return False
        if parent_run_id is not None:
            root = self._roots.get(parent_run_id.int)
            if root is not None and root[0] == task_id:
                return False
        return True

    def render_interrupts(self, values: tuple[Any, ...]) -> str | None:
        """Interrupt values as the content policy renders them (None unless opted
        in): the one value, or the list of them when there are several."""
        return self._capture(lambda: values[0] if len(values) == 1 else list(values))

    def _task_done(
        self, root: tuple[str, object | None], error: BaseException | None
    ) -> None:
        try:
            task_id, token = root
            if token is not None and not self._binder.deactivate(token):
                self.pending.append(token)
            status = n.STATUS_OK if error is None else status_of(error)
            if isinstance(error, GraphInterrupt) and error.args:
                # What interrupt() raised: the same Interrupt objects the stream's
                # result reports, for tasks whose result the stream never shows.
                ids, values = interrupt_parts(error.args[0])
                self.tracker.task_returned(
                    task_id,
                    status,
                    error,
                    interrupts=len(values),
                    interrupt_ids=ids,
                    interrupt_value=self.render_interrupts(values) if values else None,
                )
                return
            self.tracker.task_returned(task_id, status, error)
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail a node
            self._on_error(n.COMPONENT_HOOK, exc)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Close the task if this chain was its root."""
        key = run_id.int
        if self._children:
            self._children.pop(key, None)
        root = self._roots.pop(key, None)
        if root is None:
            return
        try:  # _task_done(root, None), inline: once per node task
            task_id, token = root
            if token is not None and not self._binder.deactivate(token):
                self.pending.append(token)
            self.tracker.task_returned(task_id, n.STATUS_OK)
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail a node
            self._on_error(n.COMPONENT_HOOK, exc)

    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Close the task (with the node's exception) if this chain was its root."""
        key = run_id.int
        if self._children:
            self._children.pop(key, None)
        root = self._roots.pop(key, None)
        if root is not None:
            self._task_done(root, error)

    # --- model calls ------------------------------------------------------------

    def _capture(self, value: Callable[[], Any]) -> str | None:
        """Render content only when the user opted in (no work otherwise)."""
        policy = self._policy
        if policy is None or not policy.enabled:
            return None
        return policy.render(value())

    def _llm_start(
        self,
        operation: str,
        run_id: int,
        metadata: Mapping[str, Any] | None,
        prompt: Callable[[], Any],
    ) -> None:
        try:
            meta = metadata or {}
            task_id = _task_of(meta)
            model, provider = meta.get("ls_model_name"), meta.get("ls_provider")
            self.tracker.llm_started(
                run_id,
                task_id,
                operation=operation,
                model=model if isinstance(model, str) else None,
                provider=provider if isinstance(provider, str) else None,
                parent=self._binder.current_parent(self.tracker.run),
                input_messages=self._capture(prompt),
            )
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail a node
            self._on_error(n.COMPONENT_HOOK, exc)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A chat model was called."""
        self._llm_start(
            n.OP_CHAT, run_id.int, metadata, lambda: messages_json(messages[0])
        )

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A completion-style model was called."""
        self._llm_start(
            n.OP_TEXT_COMPLETION,
            run_id.int,
            metadata,
            lambda: [
                {"role": "user", "parts": [{"type": "text", "content": p}]}
                for p in prompts
            ],
        )

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: Any = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """A model streamed one chunk."""
        try:
            llm = self._llms.get(run_id.int)
            if llm is None or llm.last_chunk_ns is None:
                # An unknown call, or its first chunk (the one the sinks hear of).
                self.tracker.llm_chunk(run_id.int)
                return
            # Every chunk after the first: the tracker's count, inline. It is the
            # one call LangChain makes per chunk, and a frame fewer measured
            # -0.17 µs per chunk in the graph. One call streams from one thread.
            try:
                now = self._clock()
            except Exception as exc:  # noqa: BLE001 - see RunTracker._now()
                now = self.tracker.clock_failed(exc)
            llm.chunks += 1
            gap = now - llm.last_chunk_ns
            llm.last_chunk_ns = now
            if gap > llm.max_gap_ns:
                llm.max_gap_ns = gap
            if llm.gaps is not None:
                llm.gaps.append(gap)
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail a node
            self._on_error(n.COMPONENT_HOOK, exc)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A model call finished; read provider-reported usage if any."""
        try:
            usage = _usage(response)
            self.tracker.llm_ended(
                run_id.int,
                input_tokens=usage[0],
                output_tokens=usage[1],
                response_model=usage[2],
                finish_reasons=usage[3],
                output_messages=self._capture(lambda: generations_json(response)),
            )
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail a node
            self._on_error(n.COMPONENT_HOOK, exc)

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """A model call failed."""
        try:
            self.tracker.llm_ended(run_id.int, error=error)
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail a node
            self._on_error(n.COMPONENT_HOOK, exc)

    # --- tool calls ------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A tool was called."""
        try:
            task_id = _task_of(metadata or {})
            name = kwargs.get("name") or (serialized or {}).get("name") or "tool"
            call_id = kwargs.get("tool_call_id")
            self.tracker.tool_started(
                run_id.int,
                task_id,
                name=str(name),
                tool_call_id=call_id if isinstance(call_id, str) else None,
                parent=self._binder.current_parent(self.tracker.run),
                arguments=self._capture(
                    lambda: inputs if inputs is not None else input_str
                ),
            )
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail a node
            self._on_error(n.COMPONENT_HOOK, exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """A tool call finished."""
        try:
            self.tracker.tool_ended(
                run_id.int,
                result=self._capture(lambda: str(getattr(output, "content", output))),
            )
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail a node
            self._on_error(n.COMPONENT_HOOK, exc)

    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """A tool call failed."""
        try:
            self.tracker.tool_ended(run_id.int, error=error)
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail a node
            self._on_error(n.COMPONENT_HOOK, exc)


def _task_of(metadata: Mapping[str, Any]) -> str | None:
    """The task a model or tool call runs in, from LangGraph's run metadata."""
    checkpoint_ns = metadata.get(_NS_KEY)
    if not isinstance(checkpoint_ns, str):
        return None
    return split_checkpoint_ns(checkpoint_ns)[0]


def _usage(
    response: Any,
) -> tuple[int | None, int | None, str | None, tuple[str, ...]]:
    """(input tokens, output tokens, response model, finish reasons) of an LLMResult."""
    input_tokens = output_tokens = None
    model: str | None = None
    reasons: list[str] = []
    for generations in getattr(response, "generations", None) or ():
        for generation in generations:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            if usage:
                input_tokens = (input_tokens or 0) + int(usage.get("input_tokens", 0))
                output_tokens = (output_tokens or 0) + int(
                    usage.get("output_tokens", 0)
                )
            meta = dict(getattr(message, "response_metadata", None) or {})
            meta.update(getattr(generation, "generation_info", None) or {})
            name = meta.get("model_name") or meta.get("model")
            if isinstance(name, str):
                model = name
            reason = meta.get("finish_reason") or meta.get("stop_reason")
            if isinstance(reason, str):
                reasons.append(reason)
    if input_tokens is None:
        llm_output = getattr(response, "llm_output", None) or {}
        token_usage = llm_output.get("token_usage") or llm_output.get("usage") or {}
        if isinstance(token_usage, Mapping) and token_usage:
            input_tokens = token_usage.get(
                "prompt_tokens", token_usage.get("input_tokens")
            )
            output_tokens = token_usage.get(
                "completion_tokens", token_usage.get("output_tokens")
            )
    return input_tokens, output_tokens, model, tuple(reasons)
