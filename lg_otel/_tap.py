"""The stream tap: the one module that touches LangGraph's runtime.

LangGraph builds ``invoke``/``ainvoke``/``batch``/``abatch`` (and the v3
``stream_events``) on ``stream``/``astream``, so those two are the only chokepoints.
An instrumented graph is an instance of a subclass of the graph's own class that
overrides just them: it survives ``copy()``/``with_config()`` (LangGraph rebuilds
graphs as ``self.__class__(**self.__dict__)``) and is still served by the LangGraph
API server, while the original graph object is left untouched.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.messages import AIMessageChunk
from langchain_core.runnables.config import ensure_config
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.types import Command

from lg_otel import _names as n
from lg_otel._hook import Binder, RunHook, status_of
from lg_otel._parse import (
    TaskStart,
    carries_interrupt,
    parent_task_of_ns,
    parse_item,
    parse_task,
    payload_interrupts,
)
from lg_otel._reshape import TAP_MODES, Request
from lg_otel._savers import run_config, state_target
from lg_otel._tracker import RunTracker

#: Any compiled graph (Pregel is generic in its state/context/input/output).
AnyGraph = Pregel[Any, Any, Any, Any]

#: LangGraph's config key that marks a graph running as a task of another graph.
_TASK_ID_KEY = "__pregel_task_id"
_SKIP = object()
#: The graph whose ``invoke()``/``ainvoke()`` is running in this context: its own
#: ``stream()`` call then is not a streaming call (no time to first chunk).
_INVOKING: ContextVar[object] = ContextVar("lg_otel_invoking", default=None)
#: Ask LangGraph for the ``tasks`` mode even where the hook alone can end every
#: task (the path a graph with a node cache takes). Off in production; the test
#: suite runs its run-level suites both ways.
ALWAYS_STREAM_TASKS = False
#: LangGraph's configurable key for a run-time node cache (``CONFIG_KEY_CACHE``).
_CACHE_KEY = "__pregel_cache"


class Instrumentation:
    """What an instrumented graph class needs from ``instrument()`` (see there)."""

    clock: Callable[[], int]
    #: Save each run's traceparent in checkpoint metadata (Config.persist_links).
    persist_links: bool = False

    def new_run(
        self,
        graph: AnyGraph,
        config: dict[str, Any],
        parent: object,
        stream_has_subgraphs: bool,
        stored_link: object = None,
        stream_tasks: bool = True,
    ) -> tuple[RunTracker, RunHook]:
        """Start tracking one run."""
        raise NotImplementedError  # pragma: no cover - implemented by the subclass

    def traceparent(self, run: Any) -> str | None:
        """The run span's traceparent."""
        raise NotImplementedError  # pragma: no cover - implemented by the subclass

    def record_error(self, component: str, error: BaseException) -> None:
        """Count a swallowed telemetry failure."""
        raise NotImplementedError  # pragma: no cover - implemented by the subclass

    def current_context(self) -> object:
        """The caller's current trace context, captured when the graph is called."""
        raise NotImplementedError  # pragma: no cover - implemented by the subclass

    # --- checkpointer and store views (see _savers) ---

    def call_binder(self) -> Binder:
        """Makes a checkpoint or store span current during its call (no-op here)."""
        return Binder()

    def run_sink(self) -> Any:
        """The sinks a run starting now reports to."""
        raise NotImplementedError  # pragma: no cover - implemented by the subclass

    def graph_name(self, graph: AnyGraph) -> str:
        """The graph's name in span names and labels."""
        raise NotImplementedError  # pragma: no cover - implemented by the subclass


def _hooks_in(callbacks: object) -> bool:
    if isinstance(callbacks, list):
        return any(isinstance(h, RunHook) for h in callbacks)
    if isinstance(callbacks, BaseCallbackManager):
        return any(isinstance(h, RunHook) for h in callbacks.handlers)
    return False


def _with_hook(config: dict[str, Any], hook: RunHook) -> dict[str, Any] | None:
    """A copy of ``config`` whose callbacks also include ``hook`` (None: cannot)."""
    callbacks = config.get("callbacks")
    if callbacks is None:
        return {**config, "callbacks": [hook]}
    if isinstance(callbacks, list):
        return {**config, "callbacks": [*callbacks, hook]}
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(hook, inherit=True)
        return {**config, "callbacks": manager}
    return None


#: The key of an interrupt in an ``updates`` (or ``values``) payload.
_INTERRUPT = "__interrupt__"
#: See :attr:`_Plan.checked`.
_CHECKED = frozenset({"updates", "values"})


@dataclass(slots=True)
class _Plan:
    """One traced run: the call to make and how to route what comes back."""

    instr: Instrumentation
    request: Request
    subgraphs: bool
    config: dict[str, Any]
    kwargs: dict[str, Any]
    tracker: RunTracker
    hook: RunHook
    #: The graph whose ``stream()`` runs: the caller's, or a copy of it for this
    #: run with the checkpointer's view as its own (see ``_savers.run_config``).
    graph: AnyGraph
    #: Modes handed to the caller untouched, with nothing to read (v2 fast path).
    passthrough: frozenset[str] = frozenset()
    fast: bool = False
    #: The caller did not ask for ``tasks``: every tasks part is the tap's own.
    own_tasks: bool = False
    #: A streaming call (not under ``invoke()``): time its first item out.
    ttfc: bool = False
    #: Time the graph waited for the caller to ask for the next item (ns).
    wait_ns: int = 0
    #: Modes whose v1 ``(mode, payload)`` items the tap hands over without
    #: ``route``: what it would return unchanged and read nothing from. It grows
    #: by ``messages`` once the run's first token is in.
    direct: set[str] = field(default_factory=set)
    #: Modes whose v1 items (``updates``, ``values``) matter to the tap only for
    #: an interrupt: one with a dict payload that holds none skips ``route`` too.
    checked: frozenset[str] = frozenset()

    def route(self, item: object) -> object:
        """Feed telemetry from one raw item; return the caller's item or ``_SKIP``."""
        if self.fast:
            # The caller's own parts with nothing to read (tokens after the first,
            # custom, debug...) go straight through: they are already in the caller's
            # shape (a v2 dict, or a v1 tuple of a listed stream_mode).
            mode: object = None
            if type(item) is tuple:
                if self.subgraphs:
                    if len(item) == 3:
                        ns, mode, payload = item
                elif len(item) == 2:
                    mode, payload = item
                    ns = ()
            elif type(item) is dict:
                mode, ns, payload = item.get("type"), item.get("ns"), item.get("data")
            if type(mode) is str:  # anything else: parse_item reports it
                keep = item if (not ns or self.request.subgraphs) else _SKIP
                if mode == "tasks":
                    if self.own_tasks:
                        # Two per node task, never the caller's: no Part built.
                        self._task(ns, payload)
                        return _SKIP
                elif mode == "updates" or mode == "values":
                    # One per node task under invoke(): the caller's own, already
                    # in the caller's shape; only an interrupt in it matters here.
                    if (
                        type(payload) is not dict
                        or _INTERRUPT in payload
                        or type(item) is dict
                    ) and _interrupt_in(item, mode):
                        self.tracker.mark_interrupted()
                    return keep
                elif mode == "messages":
                    # One per streamed chunk: after the first, nothing to read.
                    if self.tracker.run.first_token_ns is not None:
                        if type(item) is tuple and not self.subgraphs:
                            self.direct.add("messages")
                        return keep
                elif mode in self.passthrough:
                    return keep
        part = parse_item(item, self.request.version, self.subgraphs)
        if part is None:
            self.instr.record_error(
                n.COMPONENT_PARSE, ValueError(f"unknown stream item {type(item)!r}")
            )
            return item
        try:
            if part.mode == "tasks":
                self._task(part.ns, part.payload)
            wanted = self.request.wants(part)
            if wanted:
                if part.mode == "messages":
                    message = (
                        part.payload[0] if isinstance(part.payload, tuple) else None
                    )
                    if isinstance(message, AIMessageChunk):
                        self.tracker.token_delivered()
                elif carries_interrupt(part):
                    self.tracker.mark_interrupted()
        except Exception as exc:  # noqa: BLE001 - telemetry must not change the output
            self.instr.record_error(n.COMPONENT_PARSE, exc)
            wanted = self.request.wants(part)
        return self.request.shape(part, item) if wanted else _SKIP

    def _task(self, ns: Any, payload: Any) -> None:
        """One ``tasks`` payload: a task announced, or its outcome (never raises)."""
        try:
            parent = parent_task_of_ns(ns) if ns else None
            if type(payload) is dict:
                # The shapes LangGraph emits, read in place (no event object):
                # an announcement, or a result with neither error nor interrupt.
                task_id, name = payload.get("id"), payload.get("name")
                if type(task_id) is str and type(name) is str:
                    if "result" in payload or "error" in payload:
                        if payload.get("error") is None and not payload.get(
                            "interrupts"
                        ):
                            self.tracker.task_ok(task_id, name, parent)
                            return
                    elif "interrupts" not in payload:
                        self.tracker.task_announced(
                            task_id, name, parent, payload.get("triggers")
                        )
                        return
            event = parse_task(payload)
            if event is None:
                self.instr.record_error(n.COMPONENT_PARSE, ValueError("bad tasks part"))
            elif isinstance(event, TaskStart):
                self.tracker.task_announced(
                    event.task_id, event.name, parent, event.triggers
                )
            else:
                value = None
                if event.interrupt_values:
                    value = self.hook.render_interrupts(event.interrupt_values)
                self.tracker.task_result(
                    event.task_id,
                    event.name,
                    parent,
                    error=event.error,
                    interrupts=event.interrupts,
                    interrupt_ids=event.interrupt_ids,
                    interrupt_value=value,
                )
        except Exception as exc:  # noqa: BLE001 - telemetry must not change the output
            self.instr.record_error(n.COMPONENT_PARSE, exc)

    def clock_failed(self, error: BaseException) -> None:
        """The clock raised while timing what the caller gets (counted)."""
        self.instr.record_error(n.COMPONENT_PARSE, error)

    def first_out(self, now: int | None) -> None:
        """The first item is being handed to the caller (read at ``now``).

        Only the reading is kept here: the sinks hear of it after the handover.
        """
        try:
            self.tracker.chunk_delivered(now)
        except Exception as exc:  # noqa: BLE001 - telemetry must not reach the host
            self.instr.record_error(n.COMPONENT_PARSE, exc)

    def announce_firsts(self) -> None:
        """The caller has the first token or chunk: tell the sinks (never raises)."""
        try:
            self.tracker.announce_firsts()
        except Exception as exc:  # noqa: BLE001 - telemetry must not reach the host
            self.instr.record_error(n.COMPONENT_PARSE, exc)

    def finish(self, status: str, error: BaseException | None) -> None:
        """End the run; never raises."""
        try:
            self.tracker.add_consumer_wait(self.wait_ns)
            self.hook.drain()
            self.tracker.finish(status, error if status == n.STATUS_ERROR else None)
        except Exception as exc:  # noqa: BLE001 - telemetry must not reach the host
            self.instr.record_error(n.COMPONENT_SPANS, exc)


def _checkpointer(graph: AnyGraph) -> BaseCheckpointSaver[Any] | None:
    saver = graph.checkpointer
    return saver if isinstance(saver, BaseCheckpointSaver) else None


def _link_lookup(
    instr: Instrumentation, graph: AnyGraph, config: Any, input: Any
) -> tuple[BaseCheckpointSaver[Any], dict[str, Any]] | None:
    """Where to read a resumed run's stored link from, if it needs one."""
    if not instr.persist_links or not isinstance(input, Command):
        return None
    if input.resume is None:
        return None
    saver = _checkpointer(graph)
    thread = (ensure_config(config).get("configurable") or {}).get("thread_id")
    if saver is None or thread is None:
        return None
    return saver, {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}


def _stored_link(
    instr: Instrumentation, graph: AnyGraph, config: Any, input: Any
) -> Any:
    """The interrupted run's traceparent from the thread's checkpoint metadata."""
    try:
        lookup = _link_lookup(instr, graph, config, input)
        if lookup is None:
            return None
        found = lookup[0].get_tuple(lookup[1])  # type: ignore[arg-type]
        return found.metadata.get(n.CHECKPOINT_LINK_KEY) if found else None
    except Exception as exc:  # noqa: BLE001 - a missing link must not fail the run
        instr.record_error(n.COMPONENT_PARSE, exc)
        return None


async def _astored_link(
    instr: Instrumentation, graph: AnyGraph, config: Any, input: Any
) -> Any:
    """Async twin of :func:`_stored_link`."""
    try:
        lookup = _link_lookup(instr, graph, config, input)
        if lookup is None:
            return None
        found = await lookup[0].aget_tuple(lookup[1])  # type: ignore[arg-type]
        return found.metadata.get(n.CHECKPOINT_LINK_KEY) if found else None
    except Exception as exc:  # noqa: BLE001 - a missing link must not fail the run
        instr.record_error(n.COMPONENT_PARSE, exc)
        return None


def _interrupt_in(item: Any, mode: str) -> bool:
    """Whether a raw ``updates``/``values`` item reports an interrupt (never raises)."""
    try:
        if type(item) is dict:
            return bool(item.get("interrupts")) or payload_interrupts(
                mode, item.get("data")
            )
        return payload_interrupts(mode, item[-1])
    except Exception:  # noqa: BLE001 - an odd item is not an interrupt
        return False


def _plan(
    instr: Instrumentation,
    graph: AnyGraph,
    config: Any,
    kwargs: dict[str, Any],
    parent: object,
    stored_link: object = None,
) -> _Plan | None:
    """Decide how to trace this call; None means pass it through untouched."""
    try:
        merged = ensure_config(config)
        if _hooks_in(merged.get("callbacks")):
            # Running inside a traced run (as a subgraph): the outer tap sees it all.
            return None
        stream_mode = kwargs.get("stream_mode")
        if stream_mode is None:
            # LangGraph's own default, reproduced so the output shape matches.
            stream_mode = (
                "values"
                if _TASK_ID_KEY in merged.get("configurable", {})
                else graph.stream_mode
            )
        request = Request(
            stream_mode=stream_mode,
            subgraphs=bool(kwargs.get("subgraphs", False)),
            version=str(kwargs.get("version", "v1")),
        )
        # Never force subgraphs=True: it makes LangGraph stream concurrently, which
        # changes when (and so in which state) the caller sees each chunk. The hook
        # times and closes subgraph tasks instead.
        subgraphs = request.subgraphs
        # The hook alone times and ends every task (as it always has inside
        # subgraphs): no tasks mode, so no stream items to build and read, two per
        # task. Only a cache hit runs no node (the hook never sees it), so a graph
        # that may hit its cache keeps the stream's report of tasks; so does a
        # caller who asked for tasks (the parts come anyway).
        stream_tasks = (
            ALWAYS_STREAM_TASKS
            or "tasks" in request.modes()
            or graph.cache is not None
            or (merged.get("configurable") or {}).get(_CACHE_KEY) is not None
        )
        tracker, hook = instr.new_run(
            graph, dict(merged), parent, subgraphs, stored_link, stream_tasks
        )
        base = dict(config) if isinstance(config, dict) else {}
        hooked = _with_hook(base, hook)
        if hooked is None:
            hooked = base
        if instr.persist_links and tracker.run.thread_id and _checkpointer(graph):
            # LangGraph copies string values of `configurable` into the metadata of
            # the checkpoints it writes: the resumed run reads it back from there.
            traceparent = instr.traceparent(tracker.run)
            if traceparent is not None:
                configurable = {**(hooked.get("configurable") or {})}
                configurable[n.CHECKPOINT_LINK_KEY] = traceparent
                hooked = {**hooked, "configurable": configurable}
        # The run's own views of its checkpointer and store (nothing without them).
        durability = kwargs.get("durability")
        if durability is None and kwargs.get("checkpoint_during") is False:
            durability = "exit"  # LangGraph's deprecated spelling of it
        hooked, run_graph = run_config(
            instr, graph, config, merged, hooked, tracker, durability
        )
        call_kwargs = {
            **kwargs,
            "stream_mode": request.tap_modes(TAP_MODES if stream_tasks else ()),
            "subgraphs": subgraphs,
        }
        plan = _Plan(
            instr, request, subgraphs, hooked, call_kwargs, tracker, hook, run_graph
        )
        plan.ttfc = _INVOKING.get() is not graph
        if isinstance(request.stream_mode, list) or request.version == "v2":
            # tasks feed the tracker; updates/values may carry an interrupt; the
            # first messages part marks the run's first token.
            plan.passthrough = frozenset(request.modes()) - {
                "tasks",
                "messages",
                "updates",
                "values",
            }
            plan.fast = True
            plan.own_tasks = "tasks" not in request.stream_mode
            if not subgraphs:
                plan.direct.update(plan.passthrough)
                plan.checked = _CHECKED
        return plan
    except Exception as exc:  # noqa: BLE001 - if we cannot trace, run it bare
        instr.record_error(n.COMPONENT_PARSE, exc)
        return None


def _sync_tap(
    instr: Instrumentation,
    base_stream: Callable[..., Iterator[Any]],
    graph: AnyGraph,
    input: Any,
    config: Any,
    kwargs: dict[str, Any],
    parent: object,
) -> Iterator[Any]:
    plan = _plan(
        instr, graph, config, kwargs, parent, _stored_link(instr, graph, config, input)
    )
    if plan is None:
        yield from base_stream(graph, input, config, **kwargs)
        return
    inner = base_stream(plan.graph, input, plan.config, **plan.kwargs)
    status, error = n.STATUS_OK, None
    try:
        hook, route, clock = plan.hook, plan.route, plan.instr.clock
        tracker, direct, checked = plan.tracker, plan.direct, plan.checked
        # Under invoke() LangGraph's own loop consumes the items at once: there is
        # no first chunk to time and no consumer to wait for.
        timed = first = plan.ttfc
        for item in inner:
            if hook.pending:
                hook.drain()
            if (
                type(item) is tuple
                and len(item) == 2
                and type(item[0]) is str  # hashable: set membership cannot raise
                and (
                    item[0] in direct
                    # One per node task under invoke(): route() would read it
                    # only for an interrupt.
                    or (
                        item[0] in checked
                        and type(item[1]) is dict
                        and _INTERRUPT not in item[1]
                    )
                )
            ):
                out: object = item
            else:
                out = route(item)
                if out is _SKIP:
                    continue
            if not timed:
                yield out
                continue
            # A streaming call: time the first item out, and how long the caller
            # took to ask for each next one (summed here, handed over at the end).
            try:
                since: int | None = clock()
            except Exception as exc:  # noqa: BLE001 - never reach the host
                plan.clock_failed(exc)
                since = None
            if first:
                first = False
                plan.first_out(since)
            yield out
            if tracker.firsts_due:
                plan.announce_firsts()
            if since is not None:
                try:
                    plan.wait_ns += clock() - since
                except Exception as exc:  # noqa: BLE001 - see above
                    plan.clock_failed(exc)
    except BaseException as exc:
        status, error = status_of(exc), exc
        raise
    finally:
        try:
            inner.close()  # type: ignore[attr-defined]
        finally:
            plan.finish(status, error)


async def _async_tap(
    instr: Instrumentation,
    base_astream: Callable[..., AsyncIterator[Any]],
    graph: AnyGraph,
    input: Any,
    config: Any,
    kwargs: dict[str, Any],
    parent: object,
) -> AsyncIterator[Any]:
    link = await _astored_link(instr, graph, config, input)
    plan = _plan(instr, graph, config, kwargs, parent, link)
    if plan is None:
        async for item in base_astream(graph, input, config, **kwargs):
            yield item
        return
    inner = base_astream(plan.graph, input, plan.config, **plan.kwargs)
    status, error = n.STATUS_OK, None
    try:
        hook, route, clock = plan.hook, plan.route, plan.instr.clock
        tracker, direct, checked = plan.tracker, plan.direct, plan.checked
        # Under ainvoke() LangGraph's own loop consumes the items at once: there is
        # no first chunk to time and no consumer to wait for.
        timed = first = plan.ttfc
        async for item in inner:
            if hook.pending:
                hook.drain()
            if (
                type(item) is tuple
                and len(item) == 2
                and type(item[0]) is str  # hashable: set membership cannot raise
                and (
                    item[0] in direct
                    # One per node task under invoke(): route() would read it
                    # only for an interrupt.
                    or (
                        item[0] in checked
                        and type(item[1]) is dict
                        and _INTERRUPT not in item[1]
                    )
                )
            ):
                out: object = item
            else:
                out = route(item)
                if out is _SKIP:
                    continue
            if not timed:
                yield out
                continue
            # A streaming call: time the first item out, and how long the caller
            # took to ask for each next one (summed here, handed over at the end).
            try:
                since: int | None = clock()
            except Exception as exc:  # noqa: BLE001 - never reach the host
                plan.clock_failed(exc)
                since = None
            if first:
                first = False
                plan.first_out(since)
            yield out
            if tracker.firsts_due:
                plan.announce_firsts()
            if since is not None:
                try:
                    plan.wait_ns += clock() - since
                except Exception as exc:  # noqa: BLE001 - see above
                    plan.clock_failed(exc)
    except BaseException as exc:
        status, error = status_of(exc), exc
        raise
    finally:
        try:
            await inner.aclose()  # type: ignore[attr-defined]
        finally:
            plan.finish(status, error)


class _InstrumentedMixin:
    """Overrides of ``stream``/``astream``; the rest is the graph's own class."""

    _lg_otel: ClassVar[Instrumentation]
    _lg_otel_base: ClassVar[type[AnyGraph]]

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
        """Stream the graph, traced; yields exactly what the bare graph yields."""
        cls = type(self)
        # Captured at the call, not at the first next(): the caller's span is current.
        parent = cls._lg_otel.current_context()
        return _sync_tap(
            cls._lg_otel,
            cls._lg_otel_base.stream,
            self,  # type: ignore[arg-type]
            input,
            config,
            kwargs,
            parent,
        )

    def astream(
        self, input: Any, config: Any = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Async-stream the graph, traced; yields exactly what the bare graph yields."""
        cls = type(self)
        parent = cls._lg_otel.current_context()
        return _async_tap(
            cls._lg_otel,
            cls._lg_otel_base.astream,
            self,  # type: ignore[arg-type]
            input,
            config,
            kwargs,
            parent,
        )

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        """The graph's own ``invoke()``, marked as not a streaming call."""
        token = _INVOKING.set(self)
        try:
            base: Any = type(self)._lg_otel_base
            return base.invoke(self, *args, **kwargs)
        finally:
            _INVOKING.reset(token)

    async def ainvoke(self, *args: Any, **kwargs: Any) -> Any:
        """The graph's own ``ainvoke()``, marked as not a streaming call."""
        token = _INVOKING.set(self)
        try:
            base: Any = type(self)._lg_otel_base
            return await base.ainvoke(self, *args, **kwargs)
        finally:
            _INVOKING.reset(token)

    # --- state methods: their checkpointer calls traced under the current span ---

    def get_state(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        """The graph's state at ``config``; its checkpointer calls are traced."""
        cls = type(self)
        target, config = state_target(cls._lg_otel, self, config)
        return cls._lg_otel_base.get_state(target, config, *args, **kwargs)

    async def aget_state(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        """Async twin of :meth:`get_state`."""
        cls = type(self)
        target, config = state_target(cls._lg_otel, self, config)
        return await cls._lg_otel_base.aget_state(target, config, *args, **kwargs)

    def get_state_history(
        self, config: Any, *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        """The graph's state history; its checkpointer calls are traced."""
        cls = type(self)
        target, config = state_target(cls._lg_otel, self, config)
        return cls._lg_otel_base.get_state_history(target, config, *args, **kwargs)

    def aget_state_history(
        self, config: Any, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Async twin of :meth:`get_state_history`."""
        cls = type(self)
        target, config = state_target(cls._lg_otel, self, config)
        return cls._lg_otel_base.aget_state_history(target, config, *args, **kwargs)

    def update_state(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        """Update the graph's state; its checkpointer calls are traced."""
        cls = type(self)
        target, config = state_target(cls._lg_otel, self, config)
        return cls._lg_otel_base.update_state(target, config, *args, **kwargs)

    async def aupdate_state(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        """Async twin of :meth:`update_state`."""
        cls = type(self)
        target, config = state_target(cls._lg_otel, self, config)
        return await cls._lg_otel_base.aupdate_state(target, config, *args, **kwargs)

    def bulk_update_state(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        """Apply updates in bulk; the checkpointer calls are traced."""
        cls = type(self)
        target, config = state_target(cls._lg_otel, self, config)
        return cls._lg_otel_base.bulk_update_state(target, config, *args, **kwargs)

    async def abulk_update_state(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        """Async twin of :meth:`bulk_update_state`."""
        cls = type(self)
        target, config = state_target(cls._lg_otel, self, config)
        return await cls._lg_otel_base.abulk_update_state(
            target, config, *args, **kwargs
        )


def is_instrumented(graph: object) -> bool:
    """Whether ``graph`` is already an instrumented graph."""
    return isinstance(graph, _InstrumentedMixin)


_G = TypeVar("_G", bound=AnyGraph)


def instrumented_copy(graph: _G, instr: Instrumentation) -> _G:
    """A traced copy of ``graph`` of a subclass of its class; ``graph`` is untouched."""
    base = type(graph)
    cls = type(
        base.__name__,
        (_InstrumentedMixin, base),
        {
            "_lg_otel": instr,
            "_lg_otel_base": base,
            "__module__": base.__module__,
            "__doc__": base.__doc__,
        },
    )
    # The whole instance state, not the constructor's arguments: compile() sets some
    # attributes after construction (the v2 output mapper, the strict-msgpack
    # allow-list, ...), which a rebuild through __init__ would drop. Values are
    # shared, as LangGraph's own copy() shares them.
    copy: _G = object.__new__(cls)
    copy.__dict__.update(graph.__dict__)
    return copy


#: The default clock (monotonic nanoseconds): the builtin itself, read a few times
#: per node task, so no Python frame around it.
monotonic_ns: Callable[[], int] = time.perf_counter_ns
