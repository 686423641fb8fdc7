"""Parse LangGraph stream parts and checkpoint namespaces into plain values.

Pure: knows the *shapes* LangGraph emits (v1 tuples, v2 typed dicts, ``tasks``
payloads), imports nothing from LangGraph or any exporter, and never raises on a
shape it does not know: it answers ``None`` and the caller counts it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Namespace = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Part:
    """One item of the tap's own stream call, whatever version produced it."""

    ns: Namespace
    mode: str
    payload: Any
    #: A v2 ``values`` part's typed ``interrupts`` field was non-empty.
    interrupted: bool = False


def parse_item(item: object, version: str, subgraphs: bool = True) -> Part | None:
    """Read one item of a ``stream_mode=[...]`` stream call.

    ``subgraphs`` says whether the call asked for subgraph parts (v1 items then carry
    their namespace). ``None`` means an unknown shape (a future LangGraph, say).
    """
    if version == "v2":
        if isinstance(item, Mapping):
            mode = item.get("type")
            ns = item.get("ns", ())
            if isinstance(mode, str) and isinstance(ns, tuple):
                return Part(ns, mode, item.get("data"), bool(item.get("interrupts")))
        return None
    if not isinstance(item, tuple):
        return None
    if subgraphs and len(item) == 3:
        ns, mode, payload = item
        if isinstance(ns, tuple) and isinstance(mode, str):
            return Part(ns, mode, payload)
    elif not subgraphs and len(item) == 2:
        mode, payload = item
        if isinstance(mode, str):
            return Part((), mode, payload)
    return None


def task_id_of_segment(segment: str) -> str | None:
    """``"node:<task id>"`` → ``"<task id>"``; other segments (counters) → None."""
    _, sep, task_id = segment.partition(":")
    return task_id if sep and task_id else None


def parent_task_of_ns(ns: Namespace) -> str | None:
    """The task id of the node running the subgraph that namespace ``ns`` names."""
    for segment in reversed(ns):
        task_id = task_id_of_segment(segment)
        if task_id is not None:
            return task_id
    return None


def split_checkpoint_ns(checkpoint_ns: str) -> tuple[str | None, str | None]:
    """``"a:<t1>|b:<t2>"`` → (``"<t2>"``, ``"<t1>"``): the task and its parent task."""
    if "|" not in checkpoint_ns:  # a top-level task: the common case
        return task_id_of_segment(checkpoint_ns), None
    ids = [
        task_id
        for task_id in map(task_id_of_segment, checkpoint_ns.split("|"))
        if task_id is not None
    ]
    if not ids:
        return None, None
    return ids[-1], (ids[-2] if len(ids) > 1 else None)


def namespace_of(checkpoint_ns: str) -> str:
    """``"a:<t1>|b:<t2>"`` → ``"a"``: the node names leading to the task's subgraph.

    Task ids are left out; a top-level task (no ``|``) has the empty namespace. A
    subgraph compiled with ``checkpointer=True`` has a namespace without task ids
    (``"a|b:<t2>"``): its node names count the same.
    """
    if "|" not in checkpoint_ns:  # a top-level task: the common case
        return ""
    names = [segment.partition(":")[0] for segment in checkpoint_ns.split("|")[:-1]]
    return "|".join(name for name in names if name)


@dataclass(frozen=True, slots=True)
class TaskStart:
    """A ``tasks`` part announcing a task."""

    task_id: str
    name: str
    triggers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TaskResult:
    """A ``tasks`` part reporting a task's outcome."""

    task_id: str
    name: str
    error: BaseException | str | None
    interrupts: int
    #: LangGraph's ids of the task's interrupts, in order (those it reports).
    interrupt_ids: tuple[str, ...] = ()
    #: The interrupts' values: content, for the content policy to decide on.
    interrupt_values: tuple[Any, ...] = ()


def interrupt_parts(interrupts: object) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """(ids, values) of a list of ``Interrupt`` objects or their dict form."""
    if not isinstance(interrupts, list | tuple):
        return (), ()
    ids: list[str] = []
    values: list[Any] = []
    for item in interrupts:
        if isinstance(item, Mapping):
            interrupt_id, value = item.get("id"), item.get("value")
        else:
            interrupt_id = getattr(item, "id", None)
            value = getattr(item, "value", None)
        if isinstance(interrupt_id, str):
            ids.append(interrupt_id)
        values.append(value)
    return tuple(ids), tuple(values)


def parse_task(payload: object) -> TaskStart | TaskResult | None:
    """Read a ``tasks`` payload; ``None`` if it has neither known shape."""
    if type(payload) is not dict and not isinstance(payload, Mapping):
        return None
    task_id, name = payload.get("id"), payload.get("name")
    if not isinstance(task_id, str) or not isinstance(name, str):
        return None
    if "result" in payload or "error" in payload or "interrupts" in payload:
        error = payload.get("error")
        if error is not None and not isinstance(error, BaseException | str):
            error = repr(error)
        interrupts = payload.get("interrupts") or ()
        count = len(interrupts) if isinstance(interrupts, list | tuple) else 1
        if not count:
            return TaskResult(task_id, name, error, count)
        ids, values = interrupt_parts(interrupts)
        return TaskResult(task_id, name, error, count, ids, values)
    return TaskStart(task_id, name, task_triggers(payload.get("triggers")))


def task_triggers(raw: object) -> tuple[str, ...]:
    """A ``tasks`` announcement's triggers (a list or tuple) as strings; else none."""
    if not isinstance(raw, list | tuple):
        return ()
    return tuple(map(str, raw))


def payload_interrupts(mode: object, payload: object) -> bool:
    """Whether an ``updates``/``values`` payload carries the interrupt marker."""
    if type(payload) is not dict and not isinstance(payload, Mapping):
        return False
    if mode == "updates":
        return "__interrupt__" in payload
    if mode == "values":
        return bool(payload.get("__interrupt__"))
    return False


def carries_interrupt(part: Part) -> bool:
    """Whether a caller-visible ``updates``/``values`` part reports an interrupt."""
    return part.interrupted or payload_interrupts(part.mode, part.payload)


#: LangGraph's channel names that say where a task's writes lead (1.x).
_BRANCH_PREFIX = "branch:to:"
_JOIN_PREFIX = "join:"
_PUSH_CHANNEL = "__pregel_tasks"
#: Writes of an attempt that did not finish: its writes say nothing of what next.
_UNFINISHED = frozenset({"__error__", "__interrupt__"})
#: What LangGraph hands ``put_writes`` (checked by type first: an ABC check costs more).
_PAIR_SEQUENCES = frozenset({list, tuple, deque})
#: The task id LangGraph gives writes no task made (``update_state``, resumes).
NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"


#: What a channel name says of where a write leads: a node, or one of these.
_STATE, _STOP, _PUSH = 0, 1, 2
#: Channel name -> what it says (a node's name, or one of the three above): a
#: graph's channel names are few and fixed, so each is read once per process. The
#: names of every graph a process runs; cleared once it holds this many.
_CHANNELS: dict[str, str | int] = {}
_MAX_CHANNELS = 4096


def _channel(channel: str) -> str | int:
    """What a channel name says (see :data:`_CHANNELS`), remembered.

    Raises:
        TypeError: ``channel`` is no ``str`` (so never kept in the table).
    """
    if type(channel) is not str:
        raise TypeError(f"channel names are str, got {type(channel).__name__}")
    said: str | int
    if ":" not in channel and not channel.startswith("__"):
        said = _STATE  # a state channel: LangGraph's own names all have one or other
    elif channel in _UNFINISHED:
        said = _STOP
    elif channel.startswith(_BRANCH_PREFIX):
        said = channel[len(_BRANCH_PREFIX) :] or _STATE
    elif channel.startswith(_JOIN_PREFIX):
        said = channel.rpartition(":")[2] or _STATE
    elif channel == _PUSH_CHANNEL:
        said = _PUSH
    else:
        said = _STATE
    if len(_CHANNELS) >= _MAX_CHANNELS:
        _CHANNELS.clear()
    _CHANNELS[channel] = said
    return said


def next_nodes(writes: object) -> tuple[str, ...] | None:
    """The nodes a task's writes trigger, deduplicated in order; None if unknown.

    ``writes`` is what LangGraph hands the checkpointer's ``put_writes``: pairs of
    (channel, value). Only channel names and a ``Send``'s target node are read,
    never a value. An empty tuple means the writes trigger nothing (the task led
    to the end); None means they cannot say (a failed or interrupted attempt, or a
    shape this does not know).
    """
    # LangGraph hands a deque or a list; any sequence of pairs reads the same.
    if type(writes) not in _PAIR_SEQUENCES and (
        not isinstance(writes, Sequence) or isinstance(writes, str | bytes)
    ):
        return None
    # A dict keeps the first-seen order and finds a node already seen in one step
    # (a join's task writes one trigger per node of the next superstep).
    found: dict[str, None] = {}
    # Checked above to be a sequence; each item is unpacked as a pair. A channel
    # may be anything: the table holds str names only, and _channel() refuses
    # the rest.
    pairs: Sequence[tuple[Any, object]] = writes  # type: ignore[assignment]
    channels = _CHANNELS
    try:
        # A write that is no pair fails to unpack, and a channel that is no str
        # (never in the table) fails in _channel(): the writes cannot say.
        for channel, value in pairs:
            said = channels.get(channel)
            if said is None:
                said = _channel(channel)
            if said is _STATE:  # most writes: a state channel, leading nowhere
                continue
            if type(said) is str:
                found[said] = None
            elif said is _PUSH:
                node = getattr(value, "node", None)
                if type(node) is str and node:
                    found[node] = None
            else:  # _STOP
                return None
    except (TypeError, ValueError):
        return None
    return tuple(found)


def reports_next(channels: object) -> bool:
    """Whether a graph's channels follow the naming :func:`next_nodes` reads."""
    return isinstance(channels, Mapping) and any(
        type(name) is str and name.startswith(_BRANCH_PREFIX) for name in channels
    )
