"""Per-run views of a graph's checkpointer and store that time every call.

Part of the tap: the module that owns how LangGraph reaches a run's
``BaseCheckpointSaver`` and ``BaseStore``. A view is an instance of a subclass of the
saver's (or store's) own class, made without calling its constructor, that hands
every attribute to the user's object. So ``isinstance`` checks hold, and ``serde``,
``config_specs``, ``get_next_version``, ``setup()``, context managers and anything
else of the user's class are the user's own; the user's object is never changed.
Only the methods named in ``CHECKPOINT_OPERATIONS`` / ``STORE_OPERATIONS`` (and their
``a`` twins) are timed. Each call reports its start and end to the run's tracker,
and makes its span current (through the binder) for exactly the duration of the
call, or of one step of a ``list``/``alist`` iterator, never across a ``yield``. So
spans that a database instrumentation creates nest under it. The signature of each
timed method is the user's (LangGraph reads ``put_writes``'s to decide whether to
pass ``task_path``).

How a run gets its views: LangGraph resolves a run's checkpointer from
``configurable["__pregel_checkpointer"]`` before the graph's own (that is how a
parent graph lends its saver to subgraphs, and how the LangGraph API server passes
its own), and its store from ``configurable["__pregel_runtime"].store`` before the
graph's own. :func:`run_config` puts the run's store view there, and its saver view
there too when the caller's config names a saver; otherwise the view is the own
saver of a copy of the graph made for the run. LangGraph then applies
its msgpack allow-list to the view (``with_allowlist`` returns a view of the user's
clone), and every subgraph inherits both through its task's config. State methods
(``get_state()``...) get a view through :func:`state_target`, parented under
whatever span is current when the saver is called.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import Token
from typing import Any, Protocol

# LangGraph's own config merge (ambient < graph config < call, with its rules for
# a call that names its own thread): what stream() and the state methods resolve
# the checkpointer from. Private, so both supported versions are tested.
from langgraph._internal._config import ensure_config
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.runtime import DEFAULT_RUNTIME, Runtime
from langgraph.store.base import BaseStore

from lg_otel import _names as n
from lg_otel._hook import Binder
from lg_otel._parse import NULL_TASK_ID, reports_next, split_checkpoint_ns
from lg_otel._records import (
    SPAN_CONTEXT_SLOT,
    CheckpointRecord,
    RunRecord,
    StoreRecord,
)
from lg_otel._tracker import NOT_READ, OutsideRun

#: LangGraph's config keys: the run's checkpointer, and the runtime holding its store.
_CHECKPOINTER_KEY = "__pregel_checkpointer"
_RUNTIME_KEY = "__pregel_runtime"
#: LangGraph's config key for the durability a parent hands its subgraphs.
_DURABILITY_KEY = "__pregel_durability"
_NS_KEY = "checkpoint_ns"
#: Instance attributes of a view (set with ``object.__setattr__``).
_INNER = "_lg_otel_inner"
_SITE = "_lg_otel_site"

OnError = Callable[[str, BaseException], None]
_Call = CheckpointRecord | StoreRecord


class CallTracker(Protocol):
    """What a :class:`CallSite` reports to: a run's tracker, or :class:`OutsideRun`."""

    @property
    def run(self) -> RunRecord | None:
        """The run's record; None outside any run."""
        ...

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
        """A checkpointer call began (a ``put_writes``: the writes it hands on)."""
        ...

    @property
    def wants_writes(self) -> bool:
        """Whether :meth:`checkpoint_started` should be told where tasks led."""
        ...

    def expect_writes(self) -> None:
        """Each task's writes will be handed to the checkpointer: wait for them."""
        ...

    def graph_owner(self, checkpoint_ns: str) -> str | None:
        """The running task that runs the graph of ``checkpoint_ns`` (no task ids)."""
        ...

    def store_started(
        self, operation: str, store: str, *, parent: object = None
    ) -> StoreRecord | None:
        """A store call began."""
        ...

    def call_ended(
        self,
        call: _Call,
        error: BaseException | None = None,
        results: int | None = None,
    ) -> None:
        """A call returned or raised."""
        ...

    def call_seen(self, call: _Call) -> None:
        """A ``deferred`` call's span is read during the call: start it now."""
        ...


class CallSite:
    """Where the calls of one run's views (or of one state method's) are reported.

    Never raises: a failure is counted and the call goes on untraced.
    """

    __slots__ = (
        "_binder",
        "_current",
        "_lent",
        "_on_error",
        "_pend",
        "_plain",
        "_run",
        "_runtimes",
        "_tracker",
        "_var",
    )

    def __init__(
        self,
        tracker: CallTracker,
        binder: Binder,
        on_error: OnError,
        current: Callable[[], object] | None = None,
        lent: bool = True,
        plain: bool = False,
    ) -> None:
        """Report to ``tracker``; outside a run ``current`` gives each call's parent.

        ``lent``: the caller's config named the checkpointer itself (the API server
        does), so without lg_otel the run's own configs would carry it too.
        ``plain``: no store view is in the run's runtime, so only a config that
        lends a saver can hold a view to take out (see :meth:`enter`).
        """
        self._tracker = tracker
        self._run = tracker.run
        self._binder = binder
        self._on_error = on_error
        self._current = current
        self._lent = lent
        self._plain = plain
        # id(runtime) -> (runtime, the same with the user's store): the runtimes
        # of one run's graphs (a few), the first kept alive so its id stays its own.
        self._runtimes: dict[int, tuple[Any, Any]] = {}
        self._var = binder.context_var()
        self._pend = binder.pending_context

    def _bare(self, config: Any, conf: dict[str, Any]) -> Any:
        lent = conf.get(_CHECKPOINTER_KEY)
        lent_view = isinstance(lent, _View)
        runtime: Any = conf.get(_RUNTIME_KEY)
        viewed = runtime is not None and isinstance(
            getattr(runtime, "store", None), _View
        )
        if not viewed and not lent_view:
            return config
        conf = dict(conf)
        if lent_view:
            if not self._lent and not conf.get(_NS_KEY):
                del conf[_CHECKPOINTER_KEY]
            else:  # a subgraph's (LangGraph lends it the saver), or the caller's
                conf[_CHECKPOINTER_KEY] = object.__getattribute__(lent, _INNER)
        if viewed:
            # The run's runtime holds the store's view for the nodes; the saver
            # gets it with the user's store, made once per runtime object.
            bare = self._runtimes.get(id(runtime))
            if bare is None or bare[0] is not runtime:
                store = object.__getattribute__(runtime.store, _INNER)
                bare = self._runtimes[id(runtime)] = (
                    runtime,
                    runtime.override(store=store),
                )
            conf[_RUNTIME_KEY] = bare[1]
        return {**config, "configurable": conf}

    def enter(
        self, operation: str, saver: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[CheckpointRecord | None, object, tuple[Any, ...], dict[str, Any]]:
        """Start a checkpointer call and make its span current; and the call's
        arguments as they would be without lg_otel: ``(record, token, args,
        kwargs)``. One call per saver call, never raises.

        LangGraph copies the run's ``configurable`` into the configs it hands the
        saver, and there it finds the view lg_otel put in: without lg_otel the key
        holds the saver the view wraps, and at the top of a run whose caller lent
        none it is absent. Anything else passes as it is (the same objects).
        """
        config = args[0] if args else kwargs.get("config")
        conf = config.get("configurable") if type(config) is dict else None
        call: CheckpointRecord | None = None
        token: object = None
        try:
            ns = None
            if type(conf) is dict:
                value = conf.get(_NS_KEY)
                if value and type(value) is str:
                    ns = value
            task_id = writes = None
            handed: Any = NOT_READ
            if operation == "put_writes":
                written: Any
                if len(args) > 2:  # LangGraph's own calls: all positional
                    written, task = args[1], args[2]
                else:
                    written = args[1] if len(args) > 1 else kwargs.get("writes")
                    task = kwargs.get("task_id")
                task_id = task if type(task) is str else None
                try:
                    writes = len(written)
                except TypeError:  # no length: not counted
                    writes = None
                if (
                    task_id is not None
                    and task_id != NULL_TASK_ID
                    and self._tracker.wants_writes
                ):
                    # Where the task led (read later: channel names and Send
                    # targets only).
                    handed = written
            if ns is None and self._current is None:
                parent_task = parent = None  # a run's top-level call: the run's span
            else:
                parent_task, parent = self._parent(ns)
            # Positional: once per saver call.
            call = self._tracker.checkpoint_started(
                operation, saver, ns, task_id, writes, parent_task, parent, handed
            )
            if call is not None:
                # activate(), inline where it only sets the context variable.
                var = self._var
                if call.deferred:
                    ctx = self._pend(self._tracker, call)
                    if operation == "list":
                        # Made current again for each step of its iterator
                        # (CallSite.activate); dropped when it ends (see end()).
                        call.slots[SPAN_CONTEXT_SLOT] = ctx
                else:
                    ctx = call.slots.get(SPAN_CONTEXT_SLOT)
                if var is not None and ctx is not None:
                    token = var.set(ctx)
                else:
                    token = self._binder.activate(self._run, call)
        except Exception as exc:  # noqa: BLE001 - the call itself must go on
            self._on_error(n.COMPONENT_SAVERS, exc)
        if type(conf) is dict and (not self._plain or _CHECKPOINTER_KEY in conf):
            try:
                bare = self._bare(config, conf)
                if bare is not config:
                    if args:
                        args = (bare, *args[1:])
                    else:
                        kwargs = {**kwargs, "config": bare}
            except Exception as exc:  # noqa: BLE001 - the call itself must go on
                self._on_error(n.COMPONENT_SAVERS, exc)
        return call, token, args, kwargs

    def _parent(self, ns: str | None) -> tuple[str | None, object]:
        """A call's parent: (the task whose subgraph made it, an explicit parent)."""
        if self._current is not None:
            return None, self._current()
        if ns is None:
            return None, None
        parent_task = split_checkpoint_ns(ns)[0]
        if parent_task is not None:
            return parent_task, None
        # A checkpointer=True subgraph keeps no task ids in its namespace: the
        # task running it is found by its node. Before any of its tasks began,
        # the subgraph's loop runs in the node's context, where that task's span
        # is current. (Later, under asyncio, a save can run in a context copied
        # from one of the subgraph's own tasks: the context alone would be wrong.)
        parent_task = self._tracker.graph_owner(ns)
        if parent_task is not None:
            return parent_task, None
        return None, self._binder.current_parent(self._run)

    def store(self, operation: str, store: str) -> tuple[StoreRecord | None, object]:
        """Start a store call and make its span current: (record, token)."""
        try:
            if self._current is not None:
                parent = self._current()
            else:
                # Node code calls the store: the span current there is the task's
                # (or one the user made inside it).
                parent = self._binder.current_parent(self._run)
            call = self._tracker.store_started(operation, store, parent=parent)
            if call is None:
                return None, None
            if call.deferred:
                # The stand-in's context, not kept on the record (see end()).
                ctx = self._pend(self._tracker, call)
                var = self._var
                if var is not None and ctx is not None:
                    return call, var.set(ctx)
            return call, self._binder.activate(self._run, call)
        except Exception as exc:  # noqa: BLE001 - the call itself must go on
            self._on_error(n.COMPONENT_SAVERS, exc)
            return None, None

    def activate(self, call: _Call | None) -> object:
        """Make ``call``'s span current again (one iterator step); a token or None."""
        if call is None:
            return None
        try:
            return self._binder.activate(self._run, call)
        except Exception as exc:  # noqa: BLE001 - the call itself must go on
            self._on_error(n.COMPONENT_SAVERS, exc)
            return None

    def deactivate(self, token: object) -> None:
        """Undo :meth:`activate` (or the activation of a start)."""
        if token is None:
            return
        try:
            self._binder.deactivate(token)
        except Exception as exc:  # noqa: BLE001 - the call itself must go on
            self._on_error(n.COMPONENT_SAVERS, exc)

    def end(
        self,
        call: _Call | None,
        token: object,
        error: BaseException | None = None,
        results: int | None = None,
    ) -> None:
        """The call returned (or raised ``error``): leave its span, then end it."""
        if token is not None:
            try:
                var = self._var
                if var is not None and type(token) is Token and token.var is var:
                    # deactivate(), inline, as enter() set it: once per saver call.
                    try:  # noqa: SIM105 - suppress() adds two calls per saver call
                        var.reset(token)
                    except (ValueError, RuntimeError):
                        pass  # another context: as deactivate() leaves it
                else:
                    self._binder.deactivate(token)
            except Exception as exc:  # noqa: BLE001 - the call itself must go on
                self._on_error(n.COMPONENT_SAVERS, exc)
        if call is None:
            return
        if call.deferred and call.slots:
            # A list's stand-in context: the record holds it, and it holds the
            # record, a cycle only the garbage collector would break.
            call.slots.pop(SPAN_CONTEXT_SLOT, None)
        try:
            self._tracker.call_ended(call, error, results)
        except Exception as exc:  # noqa: BLE001 - the call itself must go on
            self._on_error(n.COMPONENT_SAVERS, exc)


# --- the views -------------------------------------------------------------------


class _View:
    """Mixin of every view: all attributes but the class's own are the inner's."""

    #: Names this view class answers itself (its timed methods and bookkeeping).
    _lg_otel_own: frozenset[str] = frozenset()

    def __getattribute__(self, name: str) -> Any:
        if name in type(self)._lg_otel_own:
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, _INNER), name)

    def __setattr__(self, name: str, value: Any) -> None:
        # What a run sets on its saver lands where it would without lg_otel.
        setattr(object.__getattribute__(self, _INNER), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(object.__getattribute__(self, _INNER), name)

    def __copy__(self) -> Any:
        inner = object.__getattribute__(self, _INNER)
        return _view(copy.copy(inner), object.__getattribute__(self, _SITE))


def _results(operation: str, result: Any) -> int | None:
    if operation in n.STORE_COUNTED_OPERATIONS and isinstance(result, list):
        return len(result)
    return None


def _timed_sync(
    name: str, operation: str, store: bool, original: Any, label: str
) -> Any:
    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        inner = object.__getattribute__(self, _INNER)
        site: CallSite = object.__getattribute__(self, _SITE)
        call: CheckpointRecord | StoreRecord | None
        if store:
            call, token = site.store(operation, label)
        else:
            call, token, args, kwargs = site.enter(operation, label, args, kwargs)
        try:
            result = getattr(inner, name)(*args, **kwargs)
        except BaseException as exc:
            site.end(call, token, exc)
            raise
        site.end(call, token, None, _results(operation, result) if store else None)
        return result

    return method


def _timed_async(
    name: str, operation: str, store: bool, original: Any, label: str
) -> Any:
    @functools.wraps(original)
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        inner = object.__getattribute__(self, _INNER)
        site: CallSite = object.__getattribute__(self, _SITE)
        call: CheckpointRecord | StoreRecord | None
        if store:
            call, token = site.store(operation, label)
        else:
            call, token, args, kwargs = site.enter(operation, label, args, kwargs)
        try:
            result = await getattr(inner, name)(*args, **kwargs)
        except BaseException as exc:
            site.end(call, token, exc)
            raise
        site.end(call, token, None, _results(operation, result) if store else None)
        return result

    return method


class _Listing(Iterator[Any]):
    """A saver's ``list`` iterator, timed from the call until exhausted or closed."""

    __slots__ = ("_call", "_it", "_site")

    def __init__(self, site: CallSite, call: CheckpointRecord | None, it: Any):
        self._site, self._call, self._it = site, call, it

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        call = self._call
        token = self._site.activate(call)
        try:
            item = next(self._it)
        except BaseException as exc:
            self._site.deactivate(token)
            self._call = None
            self._site.end(call, None, None if isinstance(exc, StopIteration) else exc)
            raise
        self._site.deactivate(token)
        return item

    def close(self) -> None:
        """Close the saver's iterator (a consumer that stopped early)."""
        call, self._call = self._call, None
        try:
            close = getattr(self._it, "close", None)
            if close is not None:
                close()
        finally:
            self._site.end(call, None)

    def __del__(self) -> None:
        # Dropped before the end: its span still ends, once.
        call, self._call = self._call, None
        if call is not None:
            self._site.end(call, None)


class _AsyncListing(AsyncIterator[Any]):
    """A saver's ``alist`` iterator, timed from the call until exhausted or closed."""

    __slots__ = ("_call", "_it", "_site")

    def __init__(self, site: CallSite, call: CheckpointRecord | None, it: Any):
        self._site, self._call, self._it = site, call, it

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        call = self._call
        # Current only while this step awaits the saver, never across our caller's
        # own code between steps.
        token = self._site.activate(call)
        try:
            item = await self._it.__anext__()
        except BaseException as exc:
            self._site.deactivate(token)
            self._call = None
            ended = isinstance(exc, StopAsyncIteration)
            self._site.end(call, None, None if ended else exc)
            raise
        self._site.deactivate(token)
        return item

    async def aclose(self) -> None:
        """Close the saver's iterator (a consumer that stopped early)."""
        call, self._call = self._call, None
        try:
            aclose = getattr(self._it, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._site.end(call, None)

    def __del__(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            self._site.end(call, None)


def _timed_list(name: str, original: Any, label: str) -> Any:
    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        inner = object.__getattribute__(self, _INNER)
        site: CallSite = object.__getattribute__(self, _SITE)
        call, token, args, kwargs = site.enter("list", label, args, kwargs)
        try:
            found = getattr(inner, name)(*args, **kwargs)
            it = found.__aiter__() if name == "alist" else iter(found)
        except BaseException as exc:
            site.end(call, token, exc)
            raise
        site.deactivate(token)
        return (
            _AsyncListing(site, call, it)
            if name == "alist"
            else _Listing(site, call, it)
        )

    return method


def _with_allowlist(original: Any) -> Any:
    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        inner = object.__getattribute__(self, _INNER)
        clone = inner.with_allowlist(*args, **kwargs)
        if clone is inner:
            return self
        # LangGraph's allow-listed clone of the user's saver, for this run only.
        return _view(clone, object.__getattribute__(self, _SITE))

    return method


_CLASSES: dict[type, type] = {}
_CLASSES_LOCK = threading.Lock()


def _view_class(base: type) -> type:
    """The view class of ``base`` (made once per class)."""
    cls = _CLASSES.get(base)
    if cls is not None:
        return cls
    with _CLASSES_LOCK:
        cls = _CLASSES.get(base)
        if cls is not None:
            return cls
        store = issubclass(base, BaseStore)
        namespace: dict[str, Any] = {
            "__module__": base.__module__,
            "__doc__": base.__doc__,
        }
        operations = n.STORE_OPERATIONS if store else n.CHECKPOINT_OPERATIONS
        for operation in operations:
            for name in (operation, f"a{operation}"):
                original = getattr(base, name, None)
                if not callable(original):
                    continue
                if operation == "list" and not store:
                    namespace[name] = _timed_list(name, original, base.__name__)
                elif name.startswith("a") and name != operation:
                    namespace[name] = _timed_async(
                        name, operation, store, original, base.__name__
                    )
                else:
                    namespace[name] = _timed_sync(
                        name, operation, store, original, base.__name__
                    )
        allowlist = getattr(base, "with_allowlist", None)
        if not store and callable(allowlist):
            namespace["with_allowlist"] = _with_allowlist(allowlist)
        namespace["_lg_otel_own"] = frozenset(namespace) | {
            "__class__",
            "__dict__",
            "__copy__",
            "_lg_otel_own",
            _INNER,
            _SITE,
        }
        # The base's metaclass (ABCMeta for stores) builds the class.
        cls = type(base)(base.__name__, (_View, base), namespace)
        _CLASSES[base] = cls
        return cls


def _view(inner: Any, site: CallSite) -> Any:
    view: Any = object.__new__(_view_class(type(inner)))
    object.__setattr__(view, _INNER, inner)
    object.__setattr__(view, _SITE, site)
    return view


def is_view(obj: object) -> bool:
    """Whether ``obj`` is a view made here (a run's, or a state method's)."""
    return isinstance(obj, _View)


def inner_of(obj: Any) -> Any:
    """The user's object behind a view."""
    return object.__getattribute__(obj, _INNER)


# --- where views go in ---------------------------------------------------------------


class Wiring(Protocol):
    """What the views need from an instrumentation (see ``_tap.Instrumentation``)."""

    clock: Callable[[], int]

    def call_binder(self) -> Binder:
        """Makes a checkpoint or store span current during its call."""
        ...

    def record_error(self, component: str, error: BaseException) -> None:
        """Count a swallowed telemetry failure."""
        ...

    def current_context(self) -> object:
        """The caller's current trace context."""
        ...

    def run_sink(self) -> Any:
        """The sinks of a run starting now."""
        ...

    def graph_name(self, graph: Any) -> str:
        """The graph's name in span names and labels."""
        ...


def _saver_of(graph: Any, conf: dict[str, Any]) -> BaseCheckpointSaver[Any] | None:
    """The saver LangGraph will use for this config (its own resolution order)."""
    own = graph.checkpointer
    if own is False:
        return None
    saver = conf.get(_CHECKPOINTER_KEY, own)
    if isinstance(saver, BaseCheckpointSaver) and not is_view(saver):
        return saver
    return None


def _may_have_calls(graph: Any, merged: Mapping[str, Any]) -> bool:
    """Cheaply: could this run use a checkpointer or a store at all?"""
    if isinstance(graph.checkpointer, BaseCheckpointSaver) or graph.store is not None:
        return True
    own = (graph.config or {}).get("configurable") or {}
    conf = merged.get("configurable") or {}
    return any(
        key in c for c in (conf, own) for key in (_RUNTIME_KEY, _CHECKPOINTER_KEY)
    )


def run_config(
    wiring: Wiring,
    graph: Any,
    config: Any,
    merged: Mapping[str, Any],
    hooked: dict[str, Any],
    tracker: CallTracker,
    durability: object = None,
) -> tuple[dict[str, Any], Any]:
    """``(config, graph)`` to run: with this run's checkpointer and store views.

    ``config`` is the caller's, ``merged`` the caller's ensured config,
    ``durability`` the call's own (None: LangGraph's default). Returns ``hooked``
    and ``graph`` themselves when the run has neither (nothing is wrapped: no
    cost). The store's view goes in the config's runtime. The checkpointer's view
    goes where LangGraph would find the saver: in ``configurable`` when the
    caller's config names one (as the API server's does), else as the checkpointer
    of a copy of ``graph`` made for this run. LangGraph copies a run's
    ``configurable`` into every config it hands the saver, so a view put there
    would have to be taken out of each call's config again (two dict copies per
    call, measured in ``benchmarks/README.md``). When each task's writes will
    reach the checkpointer view during the run, the tracker is told to wait for
    them (``langgraph.task.next``).
    """
    try:
        if not _may_have_calls(graph, merged):
            return hooked, graph
        # What LangGraph's stream() resolves from: context < graph config < call.
        conf = ensure_config(graph.config, config).get("configurable") or {}
        saver = _saver_of(graph, conf)
        if saver is not None and not conf:
            # LangGraph refuses a checkpointed run whose `configurable` is empty
            # (no thread_id...) by checking just that: adding a view's key would
            # let the run start and fail later, with another exception.
            return hooked, graph
        store = runtime = None
        if _RUNTIME_KEY in conf:
            runtime = conf[_RUNTIME_KEY]
            if isinstance(runtime, Runtime) and isinstance(runtime.store, BaseStore):
                store = runtime.store
        elif isinstance(graph.store, BaseStore):
            runtime, store = DEFAULT_RUNTIME, graph.store
        if store is not None and is_view(store):
            store = None
        if saver is None and store is None:
            return hooked, graph
        site = CallSite(
            tracker,
            wiring.call_binder(),
            wiring.record_error,
            lent=_CHECKPOINTER_KEY in conf,
            # The run's runtime holds no store view: neither ours nor (in a graph
            # run inside another's node) the outer run's.
            plain=store is None
            and not (isinstance(runtime, Runtime) and is_view(runtime.store)),
        )
        configurable = {**(hooked.get("configurable") or {})}
        run_graph = graph
        if saver is not None:
            if _CHECKPOINTER_KEY in conf:
                configurable[_CHECKPOINTER_KEY] = _view(saver, site)
            else:
                run_graph = _with_checkpointer(graph, _view(saver, site))
            if durability is None:
                durability = conf.get(_DURABILITY_KEY, "async")
            # Under "exit" durability the writes are saved once, after the run.
            if durability != "exit" and reports_next(getattr(graph, "channels", None)):
                tracker.expect_writes()
        if store is not None and isinstance(runtime, Runtime):
            configurable[_RUNTIME_KEY] = runtime.override(store=_view(store, site))
        return {**hooked, "configurable": configurable}, run_graph
    except Exception as exc:  # noqa: BLE001 - if we cannot wrap, run it unwrapped
        wiring.record_error(n.COMPONENT_SAVERS, exc)
        return hooked, graph


def _with_checkpointer(graph: Any, saver: Any) -> Any:
    """A copy of ``graph`` for one run whose own checkpointer is ``saver``.

    Of the same class, sharing every other value (as the instrumented copy does):
    LangGraph's ``stream()`` reads the saver from it, and the graph the caller
    holds is not changed.
    """
    run_graph = object.__new__(type(graph))
    run_graph.__dict__.update(graph.__dict__)
    run_graph.checkpointer = saver
    return run_graph


def state_target(wiring: Wiring, graph: Any, config: Any) -> tuple[Any, Any]:
    """(graph, config) to run a state method on, its checkpointer calls traced.

    When the config names the checkpointer (a parent lending it, the API server),
    the view replaces it there; otherwise a shallow copy of the graph holds the
    view as its own ``checkpointer``. Adding the config key instead would change
    what LangGraph does with a namespaced config (it reads the key's presence).
    """
    try:
        if type(config) is not dict:
            return graph, config
        conf = ensure_config(config).get("configurable") or {}  # type: ignore[arg-type]
        saver = _saver_of(graph, conf)
        if saver is None:
            return graph, config
        calls = OutsideRun(
            wiring.run_sink(),
            wiring.clock,
            graph=wiring.graph_name(graph),
            on_clock_error=lambda exc: wiring.record_error(n.COMPONENT_SAVERS, exc),
        )
        site = CallSite(
            calls, wiring.call_binder(), wiring.record_error, wiring.current_context
        )
        view = _view(saver, site)
        if _CHECKPOINTER_KEY in conf:
            configurable = {**(config.get("configurable") or {})}
            configurable[_CHECKPOINTER_KEY] = view
            return graph, {**config, "configurable": configurable}
        target = object.__new__(type(graph))
        target.__dict__.update(graph.__dict__)
        target.__dict__["checkpointer"] = view
        return target, config
    except Exception as exc:  # noqa: BLE001 - if we cannot wrap, call it unwrapped
        wiring.record_error(n.COMPONENT_SAVERS, exc)
        return graph, config
