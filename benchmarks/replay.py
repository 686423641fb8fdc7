"""lg_otel's own per-task and per-chunk cost, with LangGraph and LangChain taken out.

    python -m benchmarks.replay [--number N] [--repeat R]

One real run is recorded: every raw stream item lg_otel's tap received and every
call LangChain made on the per-run hook, in the order they happened. The recording
is then replayed, with ``timeit`` (best of R, GC off), against a fresh run's tap and
hook, exactly as the tap's loop drives them. What is timed is lg_otel's code and the
libraries it calls (the OTel SDK, prometheus_client, structlog), nothing of LangGraph
or of LangChain's callback dispatch, and single-threaded, so the figures are steady
where the in-graph ones (``run.py``, ``decompose.py``) swing with the machine.

Rows: per node task on the wide graph (``invoke``: the caller's modes are
``updates`` and ``values``), and per streamed chunk (the slope between a 200-chunk and
a 20-chunk chat streamed as ``["messages", "updates"]``).
"""

from __future__ import annotations

import argparse
import contextvars
import sys
import threading
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langchain_core.messages import HumanMessage

import lg_otel
from benchmarks.variants import _quiet_structlog, layer_kwargs
from benchmarks.workloads import SHORT_TEXT, SLOPE_CHUNKS, chat, wide
from lg_otel import _names as n
from lg_otel import _tap
from lg_otel._hook import RunHook

TASKS = 210
#: The RunHook methods LangChain calls during a run (the ones lg_otel implements).
_HOOK_CALLS = (
    "on_chain_start",
    "on_chain_end",
    "on_chain_error",
    "on_chat_model_start",
    "on_llm_start",
    "on_llm_new_token",
    "on_llm_end",
    "on_llm_error",
    "on_tool_start",
    "on_tool_end",
    "on_tool_error",
)

#: (hook method name, args, kwargs, recording thread), or (None, (raw stream item,),
#: {}, thread) for the tap.
Event = tuple[str | None, tuple[Any, ...], dict[str, Any], int]


@contextmanager
def _recording(events: list[Event]) -> Iterator[None]:
    """Record hook calls and tap items of the runs made inside (then restore)."""
    lock = threading.Lock()  # hook calls come from LangGraph's worker threads
    saved = {name: getattr(RunHook, name) for name in _HOOK_CALLS}
    route = _tap._Plan.route

    def recorder(name: str) -> Callable[..., Any]:
        def call(self: RunHook, *args: Any, **kwargs: Any) -> Any:
            with lock:
                events.append((name, args, kwargs, threading.get_ident()))
            return saved[name](self, *args, **kwargs)

        return call

    def recorded_route(self: _tap._Plan, item: object) -> object:
        with lock:
            events.append((None, (item,), {}, threading.get_ident()))
        return route(self, item)

    try:
        for name in _HOOK_CALLS:
            setattr(RunHook, name, recorder(name))
        _tap._Plan.route = recorded_route  # type: ignore[method-assign]
        yield
    finally:
        for name, method in saved.items():
            setattr(RunHook, name, method)
        _tap._Plan.route = route  # type: ignore[method-assign]


def replayer(
    graph: Any,
    run: Callable[[Any], object],
    stream_kwargs: dict[str, Any],
    streaming: bool = True,
) -> Callable[[], None]:
    """Record ``run(graph)`` once; return a call that replays it on a fresh run.

    ``stream_kwargs`` are the arguments the instrumented ``stream`` received (what
    ``invoke`` passes on, say), so the fresh run is planned as the recorded one was;
    ``streaming`` is False when ``run`` calls ``invoke()`` (no first chunk, no
    consumer wait).
    """
    events: list[Event] = []
    caller = threading.get_ident()
    with _recording(events):
        run(graph)
    instr = type(graph)._lg_otel
    skip = _tap._SKIP

    def replay() -> None:
        plan = _tap._plan(instr, graph, None, dict(stream_kwargs), None)
        assert plan is not None
        plan.ttfc = streaming
        hook = plan.hook
        route, clock = plan.route, instr.clock
        # A worker thread's events run in a context of their own, as they did: the
        # hook attaches a task's span where the task runs, and replaying two
        # threads' attaches and detaches interleaved in the caller's context would
        # reset them out of order and leave a task span current for the caller.
        contexts: dict[int, contextvars.Context] = {}
        for name, args, kwargs, thread in events:
            if name is not None:
                if thread == caller:
                    getattr(hook, name)(*args, **kwargs)
                    continue
                context = contexts.get(thread)
                if context is None:
                    context = contexts[thread] = contextvars.copy_context()
                context.run(getattr(hook, name), *args, **kwargs)
                continue
            if hook.pending:
                hook.drain()
            # As the tap: items of its direct modes, and interrupt-free updates
            # and values, skip route().
            item = args[0]
            if (
                type(item) is tuple
                and len(item) == 2
                and type(item[0]) is str
                and (
                    item[0] in plan.direct
                    or (
                        item[0] in plan.checked
                        and type(item[1]) is dict
                        and _tap._INTERRUPT not in item[1]
                    )
                )
            ):
                out: object = item
            else:
                out = route(item)
            # The tap times what it yields only in streaming calls.
            if out is not skip and streaming:
                since = clock()
                plan.wait_ns += clock() - since
        plan.finish(n.STATUS_OK, None)

    return replay


#: (row, layer of ``variants.layer``), each adding to the one before.
_ROWS = (
    ("lg_otel no-op", "noop"),
    ("spans", "spans"),
    ("+ prometheus", "prometheus"),
    ("+ both metrics paths", "both"),
    ("+ logs", "logs"),
    # Not cumulative: "+ both metrics paths" again, spans through the public API.
    ("+ both, public-API span path", "api"),
    # Not cumulative: "+ both metrics paths" again, histograms through record().
    ("+ both, histograms through record()", "record"),
)


def _best(replay: Callable[[], None], number: int, repeat: int) -> float:
    replay()  # warm-up: label children, caches
    return min(timeit.repeat(replay, number=number, repeat=repeat)) / number


def measure(number: int, repeat: int) -> list[tuple[str, float, float]]:
    """(layer, µs per task, µs per chunk) for every layer."""
    task_input = {"n": 0, "payload": ""}
    chat_input = {"messages": [HumanMessage("hi")]}
    chat_modes = {"stream_mode": ["messages", "updates"]}

    def streamed(graph: Any) -> None:
        for _ in graph.stream(chat_input, **chat_modes):
            pass

    out = []
    for name, key in _ROWS:
        kwargs = layer_kwargs(key)
        per_task = _best(
            replayer(
                lg_otel.instrument(wide(), **kwargs),
                lambda g: g.invoke(task_input),
                {"stream_mode": ["updates", "values"]},
                streaming=False,
            ),
            number,
            repeat,
        )
        long, short = (
            _best(
                replayer(lg_otel.instrument(graph, **kwargs), streamed, chat_modes),
                number * 10,
                repeat,
            )
            for graph in (chat("stream"), chat("stream", SHORT_TEXT))
        )
        out.append((name, per_task * 1e6 / TASKS, (long - short) * 1e6 / SLOPE_CHUNKS))
    return out


def main() -> None:
    """Replay every layer and print µs per task and per chunk."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20, help="replays per timing")
    parser.add_argument("--repeat", type=int, default=15, help="timings; best kept")
    args = parser.parse_args()
    _quiet_structlog()
    print(
        "| layer (lg_otel's code and what it calls, replayed) | µs per task "
        "(wide, invoke) | µs per chunk (stream messages) |"
    )
    print("|---|---|---|")
    for name, task, chunk in measure(args.number, args.repeat):
        print(f"| {name} | {task:.1f} | {chunk:.2f} |")


if __name__ == "__main__":
    main()
