"""The batch of queued telemetry calls: each made once, in order, failures
counted without stopping the rest, nothing made twice after a fork."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from lg_otel._batch import Batch
from tests.conftest import report_from_fork


def _queue(batch: Batch, got: list[Any], count: int, tag: str = "") -> None:
    def observe(child: Any, value: float, span: Any, ctx: Any) -> None:
        got.append((child, value, span, ctx))

    for i in range(count):
        batch.items.append((observe, f"{tag}{i}", float(i), None, None))


def test_flush_records_every_observation_once_in_order() -> None:
    """Oldest first, with the arguments queued; a second flush records nothing."""
    batch = Batch(lambda exc: None)
    got: list[Any] = []
    _queue(batch, got, 5)
    batch.flush()
    assert got == [(str(i), float(i), None, None) for i in range(5)]
    batch.flush()
    assert len(got) == 5


def test_a_failing_observation_is_counted_and_the_rest_recorded() -> None:
    """One raising observation reaches ``on_error``; those after it still land."""
    errors: list[BaseException] = []
    batch = Batch(errors.append)
    got: list[Any] = []
    boom = RuntimeError("reader down")

    def failing(child: Any, value: float, span: Any, ctx: Any) -> None:
        raise boom

    _queue(batch, got, 2, "a")
    batch.items.append((failing, "x", 1.0, None, None))
    _queue(batch, got, 2, "b")
    batch.flush()
    assert errors == [boom]
    assert [child for child, *_ in got] == ["a0", "a1", "b0", "b1"]


def test_concurrent_flushes_record_each_observation_exactly_once() -> None:
    """A run's end and the timer may flush at once: no observation is lost or
    recorded twice."""
    batch = Batch(lambda exc: None)
    got: list[Any] = []
    _queue(batch, got, 20_000)
    threads = [threading.Thread(target=batch.flush) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(child for child, *_ in got) == sorted(str(i) for i in range(20_000))


def test_arm_records_what_is_queued_within_the_interval() -> None:
    """The armed timer records what was queued before its deadline, unprompted."""
    batch = Batch(lambda exc: None, interval_s=0.05)
    done = threading.Event()

    def observe(child: Any, value: float, span: Any, ctx: Any) -> None:
        done.set()

    batch.arm()
    batch.items.append((observe, "c", 1.0, None, None))
    assert done.wait(10)
    assert not batch.items


@pytest.mark.parametrize("interval", [0, -1.0, float("nan")])
def test_a_non_positive_interval_is_refused(interval: float) -> None:
    """The interval is named, with the fix, at construction."""
    with pytest.raises(ValueError, match="interval_s must be > 0"):
        Batch(lambda exc: None, interval_s=interval)


def test_a_forked_child_starts_with_nothing_queued() -> None:
    """The parent makes what it queued; a forked child must not make it again
    (each observation would count twice across processes), and can flush although
    a parent's thread held the batch's lock at the fork."""
    batch = Batch(lambda exc: None, interval_s=3600)
    got: list[Any] = []
    _queue(batch, got, 3)
    batch.due_ns = 1 << 62  # as if a timer were armed: the child's never runs
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # a timer's flush, in the middle of its calls
        with batch._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)

    def child() -> str:  # what the child holds, and whether it can flush
        free = batch._lock.acquire(timeout=5)
        return f"{len(batch.items)} {batch.due_ns} {free}"

    reported = report_from_fork(child)
    release.set()
    holder.join(10)
    assert reported == "0 -1 True"
    assert len(batch.items) == 3  # the parent's are untouched


def test_a_flush_waits_for_the_calls_another_flush_took() -> None:
    """A run's end that finds the queue empty returns only once the calls a timer's
    flush took from it are made: then all of the run's are in."""
    batch = Batch(lambda exc: None, interval_s=3600)
    entered, release, second_done = (threading.Event() for _ in range(3))
    made: list[Any] = []

    def slow(child: Any, value: Any, span: Any, ctx: Any) -> None:
        entered.set()
        release.wait(10)
        made.append(child)

    batch.items.append((slow, "x", None, None, None))
    first = threading.Thread(target=batch.flush)
    first.start()
    assert entered.wait(10)

    def second() -> None:
        batch.flush()
        second_done.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    assert not second_done.wait(0.2)  # still making "x" in the first flush
    release.set()
    waiter.join(10)
    first.join(10)
    assert second_done.is_set()
    assert made == ["x"]
