"""Span durations and time-to-first-chunk match controlled delays within 5 ms."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph

import lg_otel
from lg_otel import _names as n
from lg_otel.testing import SimulatedChatModel
from tests.conftest import attrs_of, by_name, duration_s, start_ns
from tests.graphs import S

TOLERANCE = 0.005
pytestmark = pytest.mark.usefixtures("no_gc_pauses")


#: Each sleeping node's duration as the node itself measured it (the truth).
SLEPT: dict[str, float] = {}


def _sleepers(delays: dict[str, float], parallel: bool, use_async: bool) -> Any:
    g = StateGraph(S)
    for name, delay in delays.items():
        if use_async:

            async def node(state: S, delay: float = delay, name: str = name) -> Any:
                started = time.perf_counter()
                await asyncio.sleep(delay)
                SLEPT[name] = time.perf_counter() - started
                return {"log": [name]}

        else:

            def node(state: S, delay: float = delay, name: str = name) -> Any:  # type: ignore[misc]
                started = time.perf_counter()
                time.sleep(delay)
                SLEPT[name] = time.perf_counter() - started
                return {"log": [name]}

        g.add_node(name, node)
    names = list(delays)
    if parallel:
        for name in names:
            g.add_edge(START, name)
    else:
        g.add_edge(START, names[0])
        for a, b in itertools.pairwise(names):
            g.add_edge(a, b)
    return g.compile(name="sleepers")


DELAYS = {"fast": 0.02, "mid": 0.06, "slow": 0.12}


@pytest.fixture(scope="module", autouse=True)
def _warm_up() -> None:
    """One throwaway traced run, sync and async, before anything is timed.

    The first run in a process pays one-time imports and set-up (tens of ms, on the
    event loop under asyncio); that is start-up cost, not a node's duration.
    """
    graph = lg_otel.instrument(_sleepers({"w": 0.0}, True, True))
    asyncio.run(graph.ainvoke({"log": []}))
    lg_otel.instrument(_sleepers({"w": 0.0}, True, False)).invoke({"log": []})
    inputs = {"messages": [HumanMessage("warm up")]}
    for use_async in (False, True):
        chat = lg_otel.instrument(_chat_graph(0.0, 0.0, 0.0, 1, use_async))
        if use_async:

            async def drain(chat: Any = chat) -> None:
                async for _ in chat.astream(
                    inputs, stream_mode=["messages", "updates"]
                ):
                    pass

            asyncio.run(drain())
        else:
            for _ in chat.stream(inputs, stream_mode=["messages", "updates"]):
                pass


#: Runs of one timing scenario before it fails. On this shared 2-vCPU host a thread
#: can lose several ms between the hook's clock reading and the node's own (a GIL
#: hand-off behind another thread, a vCPU the hypervisor took away); that is the host,
#: not a measurement error. A real error is systematic and fails every run.
ATTEMPTS = 3


def _check_durations(spans: Any) -> None:
    for name, delay in DELAYS.items():
        (span,) = by_name(spans, f"invoke_node {name}")
        assert SLEPT[name] >= delay
        assert duration_s(span) == pytest.approx(SLEPT[name], abs=TOLERANCE), name


def _durations_match(exporter: Any, attempt: int) -> bool:
    """Whether this attempt's spans match; the last attempt's miss fails the test."""
    try:
        _check_durations(exporter.get_finished_spans())
    except AssertionError:
        if attempt == ATTEMPTS - 1:
            raise
        return False
    return True


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_sync_task_durations(parallel: bool, tracing: Any) -> None:
    """Sync: each task span lasts as long as its node slept."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _sleepers(DELAYS, parallel, False), tracer_provider=provider
    )
    for attempt in range(ATTEMPTS):
        exporter.clear()
        graph.invoke({"log": []})
        if _durations_match(exporter, attempt):
            return


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
async def test_async_task_durations(parallel: bool, tracing: Any) -> None:
    """Async: each task span lasts as long as its node slept."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _sleepers(DELAYS, parallel, True), tracer_provider=provider
    )
    for attempt in range(ATTEMPTS):
        exporter.clear()
        await graph.ainvoke({"log": []})
        if _durations_match(exporter, attempt):
            return


TRUTH: list[float] = []
MODELS: list[SimulatedChatModel] = []


def _chat_graph(
    first: float, gap: float, work_before: float, calls: int, use_async: bool
) -> Any:
    """A chat node; TRUTH gets each model call's duration measured around it."""
    TRUTH.clear()
    model = SimulatedChatModel(
        messages=itertools.cycle(["one two three four five"]),
        first_chunk_delay=first,
        chunk_delay=gap,
    )
    MODELS[:] = [model]
    # The first model call of a process pays one-time set-up inside langchain-core
    # (a few ms); the truth we compare with is the model's own delay.
    for _ in SimulatedChatModel(messages=iter(["warm up"])).stream("hi"):
        pass
    g = StateGraph(MessagesState)
    if use_async:

        async def chatbot(state: MessagesState) -> Any:
            await asyncio.sleep(work_before)
            out = []
            for _ in range(calls):
                t0 = time.perf_counter()
                out.append(await model.ainvoke(state["messages"]))
                TRUTH.append(time.perf_counter() - t0)
            return {"messages": out}

    else:

        def chatbot(state: MessagesState) -> Any:  # type: ignore[misc]
            time.sleep(work_before)
            out = []
            for _ in range(calls):
                t0 = time.perf_counter()
                out.append(model.invoke(state["messages"]))
                TRUTH.append(time.perf_counter() - t0)
            return {"messages": out}

    g.add_node("chatbot", chatbot)
    g.add_edge(START, "chatbot")
    g.add_edge("chatbot", END)
    return g.compile(name="chat")


CASES = [
    pytest.param(0.0, 1, id="plain"),
    pytest.param(0.3, 1, id="work-300ms-first"),
    pytest.param(0.0, 2, id="two-calls"),
]


@pytest.mark.parametrize(("work", "calls"), CASES)
def test_sync_time_to_first_chunk(work: float, calls: int, tracing: Any) -> None:
    """Sync: each LLM span's TTFC equals the model's first-chunk delay."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _chat_graph(0.15, 0.01, work, calls, False), tracer_provider=provider
    )
    for _ in graph.stream(
        {"messages": [HumanMessage("hi")]}, stream_mode=["messages", "updates"]
    ):
        pass
    chats = by_name(exporter.get_finished_spans(), "chat simulated-chat")
    assert len(chats) == calls
    truths = MODELS[0].first_chunk_times
    for chat, truth in zip(sorted(chats, key=start_ns), truths, strict=True):
        assert attrs_of(chat)[n.ATTR_REQUEST_STREAM] is True
        ttfc = attrs_of(chat)[n.ATTR_TIME_TO_FIRST_CHUNK]
        # The model's own clock is the truth (it waited at least its delay).
        assert truth >= 0.15
        assert ttfc == pytest.approx(truth, abs=TOLERANCE)
        assert attrs_of(chat)[n.ATTR_CHUNK_COUNT] == 9
    # 9 chunks: first after 150 ms, then 8 gaps of at least 10 ms each; the model's
    # own clock is the truth, and the time around the call bounds it from above.
    ordered = sorted(chats, key=start_ns)
    streamed = MODELS[0].stream_times
    for chat, truth, around in zip(ordered, streamed, TRUTH, strict=True):
        assert truth >= 0.23
        assert duration_s(chat) == pytest.approx(truth, abs=TOLERANCE)
        assert duration_s(chat) <= around


@pytest.mark.parametrize(("work", "calls"), CASES)
async def test_async_time_to_first_chunk(work: float, calls: int, tracing: Any) -> None:
    """Async: each LLM span's TTFC equals the model's first-chunk delay."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _chat_graph(0.15, 0.01, work, calls, True), tracer_provider=provider
    )
    async for _ in graph.astream(
        {"messages": [HumanMessage("hi")]}, stream_mode=["messages", "updates"]
    ):
        pass
    chats = by_name(exporter.get_finished_spans(), "chat simulated-chat")
    assert len(chats) == calls
    truths = MODELS[0].first_chunk_times
    for chat, truth in zip(sorted(chats, key=start_ns), truths, strict=True):
        ttfc = attrs_of(chat)[n.ATTR_TIME_TO_FIRST_CHUNK]
        assert truth >= 0.15
        assert ttfc == pytest.approx(truth, abs=TOLERANCE)


def test_invoke_does_not_force_streaming(tracing: Any) -> None:
    """Under invoke() the model is not made to stream: duration only, no TTFC."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _chat_graph(0.05, 0.01, 0.0, 1, False), tracer_provider=provider
    )
    graph.invoke({"messages": [HumanMessage("hi")]})
    (chat,) = by_name(exporter.get_finished_spans(), "chat simulated-chat")
    assert attrs_of(chat)[n.ATTR_REQUEST_STREAM] is False
    assert n.ATTR_TIME_TO_FIRST_CHUNK not in attrs_of(chat)
    (around,) = TRUTH
    slept = 0.05 + 8 * 0.01  # the model sleeps once, for the whole answer
    assert duration_s(chat) == pytest.approx(slept, abs=TOLERANCE)
    assert slept <= duration_s(chat) <= around


def test_slow_consumer_wait_is_recorded(tracing: Any) -> None:
    """A caller sleeping between chunks: the run span records the time it waited."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _chat_graph(0.0, 0.0, 0.0, 1, False), tracer_provider=provider
    )
    chunks, held = 0, 0.0
    for _ in graph.stream({"messages": [HumanMessage("hi")]}, stream_mode="messages"):
        received = time.perf_counter()
        chunks += 1
        time.sleep(0.02)
        # What the caller really held each item for: a sleep overshoots on a
        # busy machine, and the wait recorded must follow what happened.
        held += time.perf_counter() - received
    (run,) = by_name(exporter.get_finished_spans(), "invoke_workflow chat")
    waited = attrs_of(run)[n.ATTR_CONSUMER_WAIT]
    assert isinstance(waited, float)
    assert chunks >= 5
    assert held <= waited <= held + 0.005 + 0.001 * chunks
