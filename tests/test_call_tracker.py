"""The call-tracking core: checkpoint and store records from the tracker, pure.

A fake clock and a recording sink: no OpenTelemetry, no LangGraph run. Plus the
views' failure discipline: a tracker or binder that raises never reaches the saver
call, and is counted.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from lg_otel import _names as n
from lg_otel import _tracker as _tracker_module
from lg_otel._batch import Batch
from lg_otel._guard import FanOut, InternalErrors
from lg_otel._hook import Binder
from lg_otel._records import CheckpointRecord, NullSink, RunRecord, StoreRecord
from lg_otel._savers import CallSite, _view, inner_of, is_view
from lg_otel._tracker import OutsideRun, RunTracker


class Clock:
    """A fake monotonic clock: each reading advances by ``step`` ns."""

    def __init__(self, step: int = 1_000) -> None:
        self.now, self.step = 0, step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


class Events(NullSink):
    """Keeps every call event it gets, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []

    def checkpoint_started(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        self.events.append(("checkpoint_started", run, call))

    def checkpoint_ended(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        self.events.append(("checkpoint_ended", run, call))

    def store_started(self, run: RunRecord | None, call: StoreRecord) -> None:
        self.events.append(("store_started", run, call))

    def store_ended(self, run: RunRecord | None, call: StoreRecord) -> None:
        self.events.append(("store_ended", run, call))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.events]


def _tracker() -> tuple[RunTracker, Events, Clock]:
    sink, clock = Events(), Clock()
    return RunTracker(sink, clock, graph="g"), sink, clock


def test_a_call_is_timed_by_the_injected_clock() -> None:
    """start_ns/end_ns come from the tracker's clock; status ok without an error."""
    tracker, sink, clock = _tracker()
    call = tracker.checkpoint_started("put", "InMemorySaver", checkpoint_ns="a:1")
    assert call is not None
    started = call.start_ns
    clock.now += 30_000_000
    tracker.call_ended(call)
    assert call.end_ns is not None
    assert call.end_ns - started == 30_000_000 + clock.step
    assert call.status == n.STATUS_OK
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"]
    assert sink.events[0][1] is tracker.run


def test_an_exception_makes_status_error_and_is_kept() -> None:
    """An Exception: status error and the very object on the record."""
    tracker, _, _ = _tracker()
    call = tracker.store_started("search", "InMemoryStore")
    assert call is not None
    error = ValueError("boom")
    tracker.call_ended(call, error, results=3)
    assert call.status == n.STATUS_ERROR
    assert call.error is error
    assert call.results == 3


def test_cancellation_is_not_an_error() -> None:
    """CancelledError ends the call as cancelled, with no error attached."""
    tracker, _, _ = _tracker()
    call = tracker.checkpoint_started("put", "S")
    assert call is not None
    tracker.call_ended(call, asyncio.CancelledError())
    assert call.status == n.STATUS_CANCELLED
    assert call.error is None


def test_a_call_ends_exactly_once() -> None:
    """A second end of the same call emits nothing."""
    tracker, sink, _ = _tracker()
    call = tracker.checkpoint_started("get_tuple", "S")
    assert call is not None
    tracker.call_ended(call)
    tracker.call_ended(call, RuntimeError("late"))
    assert sink.names().count("checkpoint_ended") == 1
    assert call.status == n.STATUS_OK


def test_finish_ends_calls_still_in_flight_before_the_run() -> None:
    """A call open when the run ends is ended (cancelled) before run_ended."""

    class Ordered(Events):
        def run_ended(self, run: RunRecord) -> None:
            self.events.append(("run_ended", run, None))

    sink, clock = Ordered(), Clock()
    tracker = RunTracker(sink, clock, graph="g")
    call = tracker.store_started("get", "InMemoryStore")
    assert call is not None
    tracker.finish(n.STATUS_OK)
    assert sink.names() == ["store_started", "store_ended", "run_ended"]
    assert call.status == n.STATUS_CANCELLED
    tracker.call_ended(call)  # the call returning later changes nothing
    assert sink.names().count("store_ended") == 1


def test_a_call_starting_as_the_run_ends_is_ended_once() -> None:
    """A call registered after finish() took its calls ends itself, once."""

    class FinishingMidStart(Events):
        def __init__(self) -> None:
            super().__init__()
            self.tracker: RunTracker | None = None

        def checkpoint_started(
            self, run: RunRecord | None, call: CheckpointRecord
        ) -> None:
            super().checkpoint_started(run, call)
            assert self.tracker is not None
            self.tracker.finish(n.STATUS_OK)  # the run ends between start and record

    sink = FinishingMidStart()
    tracker = RunTracker(sink, Clock(), graph="g")
    sink.tracker = tracker
    assert tracker.checkpoint_started("put", "S") is None
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"]
    assert sink.events[1][2].status == n.STATUS_CANCELLED


def test_calls_from_many_threads_end_once_whenever_the_run_ends() -> None:
    """Calls started and ended in 8 threads while the run finishes: each once."""
    tracker, sink, _ = _tracker()
    started = threading.Barrier(9)

    def calls() -> None:
        started.wait()
        for _ in range(300):
            call = tracker.checkpoint_started("put_writes", "S")
            if call is not None:
                tracker.call_ended(call)

    threads = [threading.Thread(target=calls) for _ in range(8)]
    for thread in threads:
        thread.start()
    started.wait()
    tracker.finish(n.STATUS_OK)
    for thread in threads:
        thread.join()
    opened = [c for name, _, c in sink.events if name == "checkpoint_started"]
    ended = [c for name, _, c in sink.events if name == "checkpoint_ended"]
    assert sorted(map(id, opened)) == sorted(map(id, ended))
    assert all(call.end_ns is not None for call in ended)


def test_no_call_is_recorded_after_the_run_ended() -> None:
    """Calls starting after finish() get no record."""
    tracker, sink, _ = _tracker()
    tracker.finish(n.STATUS_OK)
    assert tracker.checkpoint_started("put", "S") is None
    assert tracker.store_started("get", "S") is None
    assert sink.names() == []


def test_outside_a_run_sinks_get_no_run_and_the_callers_parent() -> None:
    """OutsideRun: run=None, the explicit parent kept, one end per call."""
    sink, clock = Events(), Clock()
    calls = OutsideRun(sink, clock, graph="g")
    parent = object()
    call = calls.checkpoint_started("list", "S", parent=parent)
    assert call is not None
    calls.call_ended(call)
    calls.call_ended(call)
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"]
    assert sink.events[0][1] is None
    assert call.parent is parent
    assert call.graph == "g"


def test_a_failing_clock_never_fails_a_call() -> None:
    """A raising clock: the call is still recorded and ended, the error counted."""
    errors: list[BaseException] = []

    def broken() -> int:
        raise OSError("clock")

    sink = Events()
    calls = OutsideRun(sink, broken, graph="g", on_clock_error=errors.append)
    call = calls.checkpoint_started("put", "S")
    assert call is not None
    calls.call_ended(call)
    assert call.end_ns == 0
    assert len(errors) == 2


def test_a_clock_that_breaks_mid_run_leaves_every_record_closed() -> None:
    """The run tracker's hot paths (a task's start and end, a streamed chunk, a
    saver call's start and end) read the clock inline: once it raises, each takes
    the last good reading, every record still ends, and each failure is counted."""
    errors: list[BaseException] = []
    readings = iter(range(1_000, 6_000, 1_000))  # five good readings, then none

    def breaking() -> int:
        reading = next(readings, None)
        if reading is None:
            raise OSError("clock broke")
        return reading

    sink = Events()
    tracker = RunTracker(sink, breaking, graph="g", on_clock_error=errors.append)
    task = tracker.task_began("t1", "node", None, 1, ("start:node",), "node:t1")
    assert task is not None
    tracker.llm_started(7, "t1", operation="chat", model=None, provider=None)
    tracker.llm_chunk(7)
    tracker.llm_chunk(7)  # the fifth good reading
    call = tracker.checkpoint_started("put", "S")  # the clock is broken from here
    assert call is not None
    tracker.call_ended(call)
    tracker.llm_chunk(7)
    tracker.task_returned("t1", n.STATUS_OK)
    tracker.finish(n.STATUS_OK)
    assert tracker.finished
    assert (call.start_ns, call.end_ns, call.status) == (5_000, 5_000, n.STATUS_OK)
    assert (task.start_ns, task.end_ns) == (2_000, 5_000)
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"]
    # put's start and end, the third chunk, the task's end, and the run's end.
    assert len(errors) >= 5, errors
    assert all(str(e) == "clock broke" for e in errors)


# --- the views' failure discipline --------------------------------------------------


class Exploding:
    """A tracker whose every method raises."""

    run = None

    def checkpoint_started(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracker down")

    def store_started(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracker down")

    def call_ended(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("tracker down")


class ExplodingBinder(Binder):
    """A binder that cannot attach anything."""

    def activate(self, run: Any, task: Any) -> object | None:
        raise RuntimeError("binder down")


def test_a_failing_tracker_never_reaches_the_saver_call() -> None:
    """The saver call returns its own result; each failure is counted."""
    counted: list[str] = []
    saver = InMemorySaver()
    tracker: Any = Exploding()  # a duck-typed stand-in for a CallTracker
    view = _view(saver, CallSite(tracker, Binder(), lambda c, e: counted.append(c)))
    config: RunnableConfig = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    assert view.get_tuple(config) is None
    assert list(view.list(config)) == []
    assert counted == [n.COMPONENT_SAVERS] * 2  # one per call


def test_the_saver_gets_the_bare_config_by_keyword_too() -> None:
    """A config passed by keyword reaches the saver without the view in it."""

    class Seeing(InMemorySaver):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[Any] = []

        def get_tuple(self, config: Any) -> Any:
            self.seen.append(config)
            return super().get_tuple(config)

    saver = Seeing()
    tracker, sink, _ = _tracker()
    view = _view(saver, CallSite(tracker, Binder(), print, lent=False))
    conf = {"thread_id": "t", "checkpoint_ns": "", "__pregel_checkpointer": view}
    config: Any = {"configurable": conf}
    view.get_tuple(config)
    view.get_tuple(config=config)
    bare = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    assert saver.seen == [bare, bare]
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"] * 2


def test_a_failing_binder_never_reaches_the_store_call() -> None:
    """A binder that raises: the store still answers, and the call still ends."""
    counted: list[str] = []
    sink, clock = Events(), Clock()
    site = CallSite(
        OutsideRun(sink, clock, graph="g"),
        ExplodingBinder(),
        lambda c, e: counted.append(c),
        current=lambda: None,
    )
    store = InMemoryStore()
    view = _view(store, site)
    view.put(("a",), "k", {"v": 1})
    assert store.get(("a",), "k") is not None
    assert counted == [n.COMPONENT_SAVERS]
    assert "store_started" in sink.names()


async def test_a_saver_exception_passes_through_the_view_unchanged() -> None:
    """The async view re-raises the saver's own exception object."""

    class Failing(InMemorySaver):
        error = KeyError("nope")

        async def aget_tuple(self, config: Any) -> Any:
            raise Failing.error

    sink, clock = Events(), Clock()
    view = _view(
        Failing(), CallSite(OutsideRun(sink, clock, graph="g"), Binder(), print)
    )
    with pytest.raises(KeyError) as caught:
        await view.aget_tuple({"configurable": {"thread_id": "t"}})
    assert caught.value is Failing.error
    assert sink.events[-1][2].error is Failing.error


def test_views_are_recognised_and_unwrap_to_the_users_object() -> None:
    """is_view/inner_of: a view of a view is never made by the tap."""
    saver = InMemorySaver()
    view = _view(
        saver, CallSite(OutsideRun(Events(), Clock(), graph="g"), Binder(), print)
    )
    assert is_view(view)
    assert not is_view(saver)
    assert inner_of(view) is saver


# --- calls the sinks hear of from the batch (defer_calls) ---------------------------


def _deferring() -> tuple[RunTracker, Events, Clock, Batch]:
    sink, clock = Events(), Clock()
    errors: list[BaseException] = []
    batch = Batch(errors.append)
    tracker = RunTracker(sink, clock, graph="g", batch=batch, defer_calls=True)
    return tracker, sink, clock, batch


def test_a_deferred_call_reaches_the_sinks_from_the_batch_with_its_own_times() -> None:
    """Nothing during the call; its start then its end once the batch runs,
    with the times read at the call's start and end."""
    tracker, sink, _, batch = _deferring()
    call = tracker.checkpoint_started("put", "S", checkpoint_ns="", task_id=None)
    assert call is not None
    assert call.deferred
    assert sink.names() == []
    tracker.call_ended(call)
    assert sink.names() == []
    assert (call.start_ns, call.end_ns, call.status) == (2_000, 3_000, n.STATUS_OK)
    batch.flush()
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"]
    assert all(run is tracker.run and c is call for _, run, c in sink.events)
    assert not call.deferred
    tracker.finish(n.STATUS_OK)
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"]


def test_a_deferred_call_read_during_the_call_starts_then_and_only_then() -> None:
    """call_seen() hands the start on at once; the end comes from the batch;
    reading it again, before or after, hands on nothing more."""
    tracker, sink, _, batch = _deferring()
    call = tracker.store_started("get", "InMemoryStore")
    assert call is not None
    tracker.call_seen(call)
    tracker.call_seen(call)
    assert sink.names() == ["store_started"]
    tracker.call_ended(call, None, 3)
    batch.flush()
    tracker.call_seen(call)
    assert sink.names() == ["store_started", "store_ended"]
    assert call.results == 3


def test_a_deferred_call_that_failed_is_kept_and_handed_on_as_an_error() -> None:
    """The run keeps the call's exception at once; the sinks get status ERROR."""
    tracker, sink, _, batch = _deferring()
    call = tracker.checkpoint_started("get_tuple", "S")
    assert call is not None
    error = RuntimeError("db down")
    tracker.call_ended(call, error)
    assert tracker.run.call_errors == (error,)
    batch.flush()
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"]
    assert (call.status, call.error) == (n.STATUS_ERROR, error)


def test_a_deferred_call_in_flight_at_the_run_end_starts_and_ends_cancelled() -> None:
    """finish() hands on a call still open, start and end, before run_ended."""

    class Ordered(Events):
        def run_ended(self, run: RunRecord) -> None:
            self.events.append(("run_ended", run, None))

    sink, clock = Ordered(), Clock()
    batch = Batch(lambda exc: None)
    tracker = RunTracker(sink, clock, graph="g", batch=batch, defer_calls=True)
    ended = tracker.checkpoint_started("put_writes", "S")
    open_call = tracker.checkpoint_started("put", "S")
    assert ended is not None
    assert open_call is not None
    tracker.call_ended(ended)
    tracker.finish(n.STATUS_OK)
    # The open call is handed on by finish() itself; the ended one from the
    # batch, which the run's end flushes (here: by hand, as no span sink does).
    assert sink.names() == ["checkpoint_started", "checkpoint_ended", "run_ended"]
    assert sink.events[0][2] is open_call
    assert open_call.status == n.STATUS_CANCELLED
    batch.flush()
    assert [c for _, _, c in sink.events[3:]] == [ended, ended]
    tracker.call_ended(open_call)  # returning later changes nothing
    batch.flush()
    assert len(sink.events) == 5


def test_deferred_calls_read_and_flushed_in_threads_start_and_end_once() -> None:
    """8 threads make calls while 2 read their spans (call_seen) and a third
    flushes the batch: every call is started once, then ended once. Starting a
    call lets other threads run (as a real span start may), so an end handed on
    while a reader is still starting the call would show."""

    class SlowStart(Events):
        def checkpoint_started(
            self, run: RunRecord | None, call: CheckpointRecord
        ) -> None:
            time.sleep(0)  # lets the batch's thread in
            super().checkpoint_started(run, call)

    sink = SlowStart()
    batch = Batch(lambda exc: None)
    tracker = RunTracker(sink, Clock(), graph="g", batch=batch, defer_calls=True)
    lock = threading.Lock()
    seen: list[Any] = []
    done = threading.Event()
    started = threading.Barrier(11)

    def calls() -> None:
        started.wait()
        for i in range(300):
            call = tracker.checkpoint_started("put_writes", "S")
            assert call is not None
            tracker.call_ended(call)
            if i % 3 == 0:  # read once it ended: the batch may hand it on now
                with lock:
                    seen.append(call)

    def readers() -> None:
        started.wait()
        while not done.is_set():
            with lock:
                taken = seen[-5:]
            for call in taken:
                tracker.call_seen(call)

    def flusher() -> None:
        started.wait()
        while not done.is_set():
            batch.flush()

    makers = [threading.Thread(target=calls) for _ in range(8)]
    others = [threading.Thread(target=f) for f in (readers, readers, flusher)]
    for thread in (*makers, *others):
        thread.start()
    for thread in makers:
        thread.join()
    done.set()
    for thread in others:
        thread.join()
    batch.flush()
    tracker.finish(n.STATUS_OK)
    order: dict[int, list[str]] = {}
    for name, _, call in sink.events:
        order.setdefault(id(call), []).append(name)
    assert len(order) == 8 * 300
    assert all(
        names == ["checkpoint_started", "checkpoint_ended"] for names in order.values()
    )


def test_calls_outside_a_run_are_never_deferred() -> None:
    """OutsideRun hands each call on as it happens (no run end would flush it)."""
    sink = Events()
    calls = OutsideRun(sink, Clock(), graph="g")
    call = calls.checkpoint_started("get_tuple", "S")
    assert call is not None
    assert not call.deferred
    assert sink.names() == ["checkpoint_started"]
    calls.call_seen(call)
    calls.call_ended(call)
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"]


class Blocking(Events):
    """Starting a call waits for ``release``; ``entered`` says one is waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def checkpoint_started(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        self.entered.set()
        self.release.wait(5)
        super().checkpoint_started(run, call)


def _queued_call() -> tuple[RunTracker, Blocking, Batch, CheckpointRecord]:
    """A deferring tracker on a Blocking sink, with one ended call queued."""
    sink = Blocking()
    batch = Batch(lambda exc: None)
    tracker = RunTracker(sink, Clock(), graph="g", batch=batch, defer_calls=True)
    call = tracker.checkpoint_started("put", "S")
    assert call is not None
    tracker.call_ended(call)  # queued on the batch
    return tracker, sink, batch, call


def test_an_end_waits_for_a_reader_that_is_still_starting_the_call() -> None:
    """A reader starts a queued call's span (call_seen) while the batch hands the
    call on: the batch waits, so the sinks get the start, then the end."""
    tracker, sink, batch, call = _queued_call()
    reader = threading.Thread(target=tracker.call_seen, args=(call,))
    reader.start()
    assert sink.entered.wait(5)
    flusher = threading.Thread(target=batch.flush)
    flusher.start()
    flusher.join(0.2)  # time enough to hand the end on, were it not waiting
    assert sink.names() == []
    sink.release.set()
    reader.join(5)
    flusher.join(5)
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"]


def test_a_reader_waits_for_the_span_the_batch_is_making() -> None:
    """The batch hands a call on (making its span) while a reader asks for the
    span: the reader returns once it is made, and it is made once."""
    tracker, sink, batch, call = _queued_call()
    flusher = threading.Thread(target=batch.flush)
    flusher.start()
    assert sink.entered.wait(5)  # the batch is making the span
    reader = threading.Thread(target=tracker.call_seen, args=(call,))
    reader.start()
    reader.join(0.2)
    assert reader.is_alive(), "the reader returned before the span was made"
    sink.release.set()
    reader.join(5)
    flusher.join(5)
    assert sink.names() == ["checkpoint_started", "checkpoint_ended"]


def test_a_batch_of_calls_fanned_out_loses_only_the_failing_call() -> None:
    """A batch's ended calls go to each sink in turn, each call guarded alone: a
    sink that fails on one still gets the others, the sinks after it get all of
    them (store calls included, in order), and the failure is counted once."""

    class FailsOnSecond(Events):
        def checkpoint_started(
            self, run: RunRecord | None, call: CheckpointRecord
        ) -> None:
            if call.operation == "put":
                raise RuntimeError("sink broke")
            super().checkpoint_started(run, call)

    first, second = FailsOnSecond(), Events()
    errors = InternalErrors()
    fan = FanOut([(first, n.COMPONENT_SPANS), (second, n.COMPONENT_METRICS)], errors)
    batch = Batch(lambda exc: None)
    tracker = RunTracker(fan, Clock(), graph="g", batch=batch, defer_calls=True)
    calls: list[Any] = [
        tracker.checkpoint_started("get_tuple", "S"),
        tracker.checkpoint_started("put", "S"),
        tracker.store_started("search", "InMemoryStore"),
        tracker.checkpoint_started("put_writes", "S"),
    ]
    for call in calls:
        tracker.call_ended(call)
    assert first.events == second.events == []
    batch.flush()
    assert [c for _, _, c in second.events] == [c for c in calls for _ in "se"]
    kept = [calls[0], calls[0], calls[2], calls[2], calls[3], calls[3]]
    assert [c for _, _, c in first.events] == kept
    assert errors.total() == 1
    assert all(not call.deferred for call in calls)


def test_more_calls_than_one_hold_takes_are_all_handed_on_in_order() -> None:
    """A batch holding more ended calls than one hold of the lock takes (a wide
    fan-out's put_writes) hands every one on once, in the order they ended,
    and a call ended after that flush is handed on by the next."""
    tracker, sink, _, batch = _deferring()
    calls: list[Any] = [
        tracker.checkpoint_started("put_writes", "S") for _ in range(75)
    ]
    for call in calls:
        tracker.call_ended(call)
    assert len(calls) > _tracker_module._CALLS_PER_LOCK
    batch.flush()
    assert [c for _, _, c in sink.events] == [c for c in calls for _ in "se"]
    late = tracker.checkpoint_started("put", "S")
    assert late is not None
    tracker.call_ended(late)
    batch.flush()
    assert [c for _, _, c in sink.events[-2:]] == [late, late]
    assert len(sink.events) == 2 * 76
