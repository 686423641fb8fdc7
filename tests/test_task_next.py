"""langgraph.task.next: where each task sent the run, as LangGraph saved its writes."""

from __future__ import annotations

import asyncio
import operator
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Annotated, Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Durability, Send, interrupt
from typing_extensions import TypedDict

import lg_otel
from lg_otel import _names as n
from lg_otel._batch import Batch
from lg_otel._parse import next_nodes
from lg_otel._records import NullSink, RunRecord, TaskRecord
from lg_otel._tracker import RunTracker
from tests.conftest import attrs_of, duration_s, provider_for
from tests.graphs import nested

DURABILITIES = ("sync", "async")


class S(TypedDict, total=False):
    """A log of visited nodes, and a value the Send packets carry."""

    log: Annotated[list[str], operator.add]
    x: int


def _visit(name: str, pause: float = 0.0) -> Any:
    def node(state: S) -> dict[str, Any]:
        if pause:
            time.sleep(pause)
        return {"log": [name]}

    return node


def routed(checkpointer: Any = None) -> Any:
    """a -(conditional)-> b -(Command goto)-> c -(Send x2)-> w -> END, and d by edge."""

    def b(state: S) -> Command[Any]:
        return Command(goto="c", update={"log": ["b"]})

    g = StateGraph(S)
    g.add_node("a", _visit("a"))
    g.add_node("b", b)
    g.add_node("c", _visit("c"))
    g.add_node("w", _visit("w"))
    g.add_node("d", _visit("d"))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "b", ["b", "c"])
    g.add_conditional_edges("c", lambda s: [Send("w", {"x": 1}), Send("w", {"x": 2})])
    g.add_edge("c", "d")
    g.add_edge("w", END)
    g.add_edge("d", END)
    return g.compile(name="routed", checkpointer=checkpointer)


#: What each task of ``routed`` triggers, in the order LangGraph wrote it (w and d
#: end the run).
ROUTED_NEXT = {"a": ("b",), "b": ("c",), "c": ("d", "w"), "w": (), "d": ()}


def _next_by_node(spans: Any) -> dict[str, set[tuple[str, ...] | None]]:
    found: dict[str, set[tuple[str, ...] | None]] = {}
    for span in spans:
        if span.name.startswith(f"{n.SPAN_TASK} "):
            node = span.attributes[n.ATTR_NODE]
            found.setdefault(node, set()).add(span.attributes.get(n.ATTR_TASK_NEXT))
    return found


def _config() -> RunnableConfig:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


@pytest.mark.parametrize("durability", DURABILITIES)
def test_edges_commands_and_sends_are_reported(tracing: Any, durability: str) -> None:
    """Conditional edge, Command(goto), Send fan-out, plain edge and the end."""
    provider, exporter = tracing
    graph = lg_otel.instrument(routed(InMemorySaver()), tracer_provider=provider)
    graph.invoke({"log": []}, _config(), durability=durability)
    got = _next_by_node(exporter.get_finished_spans())
    assert got == {node: {nxt} for node, nxt in ROUTED_NEXT.items()}


@pytest.mark.parametrize("durability", DURABILITIES)
async def test_async_runs_report_it_too(tracing: Any, durability: str) -> None:
    """astream() under each durability gives the same attributes."""
    provider, exporter = tracing
    graph = lg_otel.instrument(routed(InMemorySaver()), tracer_provider=provider)
    async for _ in graph.astream({"log": []}, _config(), durability=durability):
        pass
    got = _next_by_node(exporter.get_finished_spans())
    assert got == {node: {nxt} for node, nxt in ROUTED_NEXT.items()}


@pytest.mark.parametrize("durability", DURABILITIES)
def test_a_wide_fan_out_is_reported_while_the_run_goes_on(
    tracing: Any, durability: Durability, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seventy tasks of one superstep, their writes read by the batch's timer
    while the join still runs, more than one hold of the run's lock takes: by
    then every one of their spans is exported, with where it led."""
    from lg_otel import _batch, _tracker

    monkeypatch.setattr(_batch, "FLUSH_INTERVAL_S", 0.05)
    width = 2 * _tracker._WRITES_PER_LOCK + 6
    provider, exporter = tracing
    seen_in_join: list[dict[str, set[tuple[str, ...] | None]]] = []

    def join(state: S) -> dict[str, Any]:
        time.sleep(0.3)  # the timer's flush comes meanwhile
        seen_in_join.append(_next_by_node(exporter.get_finished_spans()))
        return {"log": ["join"]}

    g = StateGraph(S)
    for i in range(width):
        g.add_node(f"n{i}", _visit(f"n{i}"))
        g.add_edge(START, f"n{i}")
        g.add_edge(f"n{i}", "join")
    g.add_node("join", join)
    g.add_edge("join", END)
    graph = lg_otel.instrument(
        g.compile(name="fan", checkpointer=InMemorySaver()), tracer_provider=provider
    )
    graph.invoke({"log": []}, _config(), durability=durability)
    fanned = {f"n{i}": {("join",)} for i in range(width)}
    assert seen_in_join == [fanned]
    assert _next_by_node(exporter.get_finished_spans()) == {**fanned, "join": {()}}


def test_concurrent_async_runs_keep_their_own(tracing: Any) -> None:
    """Ten runs at once: every task span of every run carries its own next."""
    provider, exporter = tracing
    graph = lg_otel.instrument(routed(InMemorySaver()), tracer_provider=provider)

    async def main() -> None:
        async def one() -> None:
            async for _ in graph.astream({"log": []}, _config()):
                pass

        await asyncio.gather(*(one() for _ in range(10)))

    asyncio.run(main())
    spans = exporter.get_finished_spans()
    assert len([s for s in spans if s.name.startswith(n.SPAN_RUN)]) == 10
    got = _next_by_node(spans)
    assert got == {node: {nxt} for node, nxt in ROUTED_NEXT.items()}


@pytest.mark.parametrize(
    ("checkpointer", "durability"),
    [(None, None), (InMemorySaver, "exit")],
    ids=["no-checkpointer", "exit-durability"],
)
def test_absent_when_langgraph_reports_no_writes(
    tracing: Any, checkpointer: Any, durability: str | None
) -> None:
    """No checkpointer, or writes saved only at exit: the attribute is absent."""
    provider, exporter = tracing
    saver = checkpointer() if checkpointer else None
    graph = lg_otel.instrument(routed(saver), tracer_provider=provider)
    kwargs = {"durability": durability} if durability else {}
    graph.invoke({"log": []}, _config(), **kwargs)
    got = _next_by_node(exporter.get_finished_spans())
    assert set(got) == set(ROUTED_NEXT)
    assert all(values == {None} for values in got.values())


def test_interrupted_and_failed_tasks_have_none(tracing: Any) -> None:
    """An attempt that did not finish says nothing of where it led."""
    provider, exporter = tracing

    def ask(state: S) -> dict[str, Any]:
        interrupt("approve?")
        return {"log": ["ask"]}

    g = StateGraph(S)
    g.add_node("prep", _visit("prep"))
    g.add_node("ask", ask)
    g.add_edge(START, "prep")
    g.add_edge("prep", "ask")
    graph = lg_otel.instrument(
        g.compile(name="asks", checkpointer=InMemorySaver()), tracer_provider=provider
    )
    graph.invoke({"log": []}, _config())
    got = _next_by_node(exporter.get_finished_spans())
    assert got == {"prep": {("ask",)}, "ask": {None}}


def test_subgraph_tasks_report_within_their_graph(tracing: Any) -> None:
    """Inside a subgraph, next names the subgraph's own nodes."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        nested().copy(update={"checkpointer": InMemorySaver()}),
        tracer_provider=provider,
    )
    graph.invoke({"log": []}, _config(), durability="sync")
    got = _next_by_node(exporter.get_finished_spans())
    assert got["pre"] == {("mid",)}
    assert got["mid"] == {("post",)}
    assert got["inner"] == {("after",)}  # the inner subgraph's next, in mid's graph
    assert got["leaf"] == {()}  # the end of the innermost subgraph


def test_waiting_for_writes_keeps_the_measured_end(span_path: str) -> None:
    """A task whose writes come after its result still ends when it returned."""
    provider, exporter = provider_for(span_path)
    g = StateGraph(S)
    g.add_node("slow", _visit("slow", pause=0.05))
    g.add_node("after", _visit("after", pause=0.05))
    g.add_edge(START, "slow")
    g.add_edge("slow", "after")
    graph = lg_otel.instrument(
        g.compile(name="timed", checkpointer=InMemorySaver()), tracer_provider=provider
    )
    graph.invoke({"log": []}, _config(), durability="async")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    slow = spans[f"{n.SPAN_TASK} slow"]
    assert attrs_of(slow)[n.ATTR_TASK_NEXT] == ("after",)
    after = spans[f"{n.SPAN_TASK} after"]
    assert slow.end_time is not None
    assert after.start_time is not None
    assert slow.end_time <= after.start_time
    assert 0.05 <= duration_s(slow) < 0.05 + 0.04


def test_writes_parse_channel_names_only() -> None:
    """Only channel names and Send targets are read, in order, deduplicated."""

    class Opaque:
        """A state value that must never be looked at."""

        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"read {name}")

        def __eq__(self, other: object) -> bool:
            raise AssertionError("compared")

        __hash__ = None  # type: ignore[assignment]

    writes = [
        ("log", Opaque()),
        ("branch:to:b", None),
        ("__pregel_tasks", Send("w", Opaque())),
        ("join:b+c:d", None),
        ("branch:to:b", None),
    ]
    assert next_nodes(writes) == ("b", "w", "d")
    assert next_nodes([("log", Opaque())]) == ()
    # State channels named like LangGraph's own pass the quick skip and still
    # trigger nothing.
    assert next_nodes([("a:b", Opaque()), ("__mine", Opaque())]) == ()
    assert next_nodes([("__interrupt__", Opaque()), ("branch:to:b", None)]) is None
    assert next_nodes([("__error__", Opaque())]) is None
    assert next_nodes("branch:to:b") is None
    assert next_nodes([("just-one",)]) is None
    # A channel that is no str cannot say, whatever it holds, and is not kept.
    from lg_otel import _parse

    odd: list[Any] = [(("branch:to:b",), None), (b"branch:to:b", None), (7, None)]
    for write in odd:
        assert next_nodes([("branch:to:c", None), write]) is None
        assert write[0] not in _parse._CHANNELS
    assert next_nodes([(["unhashable"], None)]) is None


def test_next_nodes_answers_the_same_from_its_channel_table() -> None:
    """Each channel name is read once and remembered (a bounded table, cleared
    when full): the answers are the same the first time, the next, and after
    the table was cleared by the names of many graphs."""
    from lg_otel import _parse

    writes = [
        ("log", 1),
        ("branch:to:b", None),
        ("__pregel_tasks", Send("w", 2)),
        ("join:b+c:d", None),
    ]
    _parse._CHANNELS.clear()
    first = next_nodes(writes)
    assert first == ("b", "w", "d")
    assert set(_parse._CHANNELS) == {w[0] for w in writes}
    assert next_nodes(writes) == first
    # A Send's target is read from each write's value, never remembered.
    assert next_nodes([("__pregel_tasks", Send("v", 2))]) == ("v",)
    for i in range(_parse._MAX_CHANNELS):
        next_nodes([(f"branch:to:n{i}", None)])
    assert len(_parse._CHANNELS) <= _parse._MAX_CHANNELS
    assert next_nodes(writes) == first
    assert next_nodes([("__error__", 1), ("branch:to:b", None)]) is None
    assert next_nodes([("__error__", 1)]) is None  # remembered: still unknown


# --- the hand-over, at the tracker ----------------------------------------------------


class _Ended(NullSink):
    """Keeps each task end: (task id, where it led)."""

    def __init__(self) -> None:
        self.ended: list[tuple[str, tuple[str, ...] | None]] = []
        self._lock = threading.Lock()

    def task_ended(self, run: RunRecord, task: TaskRecord) -> None:
        with self._lock:
            self.ended.append((task.task_id, task.next))


@pytest.mark.parametrize("read", ["batched", "during-the-call"])
@pytest.mark.parametrize("interval_s", [0.0005, 60.0], ids=["timer", "at-the-end"])
def test_every_task_ends_once_with_its_writes_under_threads(
    read: str, interval_s: float
) -> None:
    """Writes come from saver threads before or after their task ends, while the
    batch's timer reads them (or only the run's end does): every task ends exactly
    once, and with where it led, on both ways of reading them."""
    sink = _Ended()
    batch = Batch(lambda exc: pytest.fail(repr(exc)), interval_s)
    tracker = RunTracker(
        sink,
        time.monotonic_ns,
        graph="g",
        stream_tasks=False,
        batch=batch if read == "batched" else None,
    )
    tracker.expect_writes()
    ids = [str(uuid.uuid4()) for _ in range(400)]
    led = {task_id: (f"n{i % 7}",) for i, task_id in enumerate(ids)}

    def run_tasks(chunk: list[str]) -> None:
        for task_id in chunk:
            tracker.task_began(task_id, "work", None, 1, (), None)
            tracker.task_returned(task_id, n.STATUS_OK)

    def save_writes(chunk: list[str]) -> None:
        for task_id in chunk:
            # What LangGraph hands put_writes: a list (or a task's deque).
            writes = deque([("x", 1), (f"branch:to:{led[task_id][0]}", None)])
            call = tracker.checkpoint_started(
                "put_writes", "S", task_id=task_id, writes=2, written=writes
            )
            writes.clear()  # a retry clears the deque: what was handed stands
            assert call is not None
            tracker.call_ended(call)

    threads = [
        threading.Thread(target=fn, args=(ids[i::4],))
        for i in range(4)
        for fn in (run_tasks, save_writes)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tracker.finish(n.STATUS_OK)
    assert sorted(task_id for task_id, _ in sink.ended) == sorted(ids)
    assert dict(sink.ended) == led


class _Unreadable(Sequence[Any]):
    """Writes that fail to be read: LangGraph hands lists, other callers may not."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: Any) -> Any:
        raise RuntimeError("unreadable writes")


@pytest.mark.parametrize("read", ["batched", "during-the-call"])
def test_writes_that_fail_to_be_read_end_their_task_and_are_counted(read: str) -> None:
    """Reading where a task led fails: the task still ends (without where it led),
    the run ends, and the failure is counted, on both ways of reading them."""
    sink = _Ended()
    errors: list[BaseException] = []
    batch = Batch(lambda exc: pytest.fail(repr(exc)), 60.0)
    tracker = RunTracker(
        sink,
        time.monotonic_ns,
        graph="g",
        stream_tasks=False,
        on_clock_error=errors.append,
        batch=batch if read == "batched" else None,
    )
    tracker.expect_writes()
    tracker.task_began("t1", "work", None, 1, (), None)
    tracker.task_returned("t1", n.STATUS_OK)
    call = tracker.checkpoint_started(
        "put_writes", "S", task_id="t1", writes=1, written=_Unreadable()
    )
    assert call is not None
    tracker.call_ended(call)
    tracker.finish(n.STATUS_OK)
    batch.flush()
    assert sink.ended == [("t1", None)]
    assert tracker.run.status == n.STATUS_OK
    assert tracker.run.end_ns is not None
    assert [str(e) for e in errors] == ["unreadable writes"]
