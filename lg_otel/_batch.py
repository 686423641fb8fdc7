"""Telemetry handed on in batches, off the path of the work it describes.

A node task's or saver call's span and duration are known when it ends, in the
node's thread, between two stretches of LangGraph's own code. Handed on there, one
finished span or one observation on both metric paths costs more than among others
(measured in ``benchmarks/README.md``): the libraries' code and objects are cold
each time. So the sinks queue those calls here, and the queue runs at the end
of the run, or from a timer at most :data:`FLUSH_INTERVAL_S` after the call was
queued, whichever comes first.

Queuing takes no lock: ``deque.append`` and ``deque.popleft`` are atomic, so each
queued call is made exactly once, whoever flushes. A flush holds the batch's lock
while it makes its calls, so a run's end that finds the queue empty still waits
for a timer's flush that took some of its calls and has not made them yet.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from time import monotonic_ns
from typing import Any

#: The longest a queued call waits for a timer to make it, in seconds.
FLUSH_INTERVAL_S = 0.25

#: One queued call and its four arguments: an observation is
#: ``(observe, child, value, span, context)``, a finished span
#: ``(RecordedSpan.emit, span, end, processors, None)``.
Item = tuple[Callable[[Any, Any, Any, Any], None], Any, Any, Any, Any]


class Batch:
    """Calls waiting to be made, and the timer that makes them."""

    __slots__ = (
        "__weakref__",
        "_interval_ns",
        "_interval_s",
        "_lock",
        "_on_error",
        "due_ns",
        "items",
    )

    def __init__(
        self,
        on_error: Callable[[BaseException], None],
        interval_s: float | None = None,
    ) -> None:
        """``on_error(exc)`` counts a call that raised (the rest go on);
        ``interval_s`` defaults to :data:`FLUSH_INTERVAL_S` as it is now.

        Raises:
            ValueError: ``interval_s`` is not a positive number of seconds.
        """
        if interval_s is None:
            interval_s = FLUSH_INTERVAL_S
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0 seconds, got {interval_s!r}")
        self._on_error = on_error
        # Reentrant: a processor or exporter may itself end a run of an
        # instrumented graph, whose end flushes this batch again, in this thread.
        self._lock = threading.RLock()
        self._interval_s = interval_s
        self._interval_ns = int(interval_s * 1e9)
        #: Queued calls, oldest first; the sinks append to it directly.
        self.items: deque[Item] = deque()
        #: ``monotonic_ns()`` past which no armed timer is left to make a newly
        #: queued call: the sink calls :meth:`arm` then.
        self.due_ns = -1
        _BATCHES.add(self)

    def arm(self) -> None:
        """Make every call queued so far, and until then, in one interval.

        The timer fires no earlier than ``due_ns`` (both read the monotonic clock),
        so whatever is queued before ``due_ns`` it makes; the first call queued
        after it arms the next. A timer lost to ``fork()`` is replaced the
        same way.
        """
        self.due_ns = monotonic_ns() + self._interval_ns
        timer = threading.Timer(self._interval_s, self.flush)
        timer.daemon = True  # never holds up the interpreter's exit
        timer.start()

    def flush(self) -> None:
        """Make every queued call, oldest first; returns once the calls queued
        before it are made, also those another thread's flush had taken."""
        popleft = self.items.popleft
        with self._lock:
            while True:
                try:
                    call, a, b, c, d = popleft()
                except IndexError:
                    return
                try:
                    call(a, b, c, d)
                except Exception as exc:  # noqa: BLE001 - one failure stops no other
                    self._on_error(exc)


#: Every batch alive, so that a forked child starts with none of them queued.
_BATCHES: weakref.WeakSet[Batch] = weakref.WeakSet()


def _forget_in_child() -> None:
    # The parent makes its queued calls itself; a forked child making them again
    # would count each observation and export each span twice. Its copy of the
    # parent's timer does not run: the child's first queued call arms its own.
    # A lock a parent's thread held at the fork stays held in the child: replaced.
    for batch in list(_BATCHES):
        batch.items.clear()
        batch.due_ns = -1
        batch._lock = threading.RLock()


os.register_at_fork(after_in_child=_forget_in_child)
