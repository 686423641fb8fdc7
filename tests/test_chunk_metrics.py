"""Chunk timing: per-chunk ``time_per_output_chunk`` (opt-in), the mean, the max gap."""

from __future__ import annotations

import asyncio
import itertools
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk
from langgraph.graph import END, START, MessagesState, StateGraph
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from prometheus_client import CollectorRegistry
from pydantic import Field

import lg_otel
from lg_otel import _config
from lg_otel import _names as n
from lg_otel._records import NullSink
from lg_otel._tracker import RunTracker
from lg_otel.testing import SimulatedChatModel
from tests.conftest import by_name, instrumentation

TOLERANCE = 0.005
GAP, STALL, STALL_AT = 0.02, 0.25, 5
#: Nine chunks: five words and four spaces.
CHUNKS = 9
LABELS = {
    "gen_ai_operation_name": "chat",
    "gen_ai_provider_name": "simulated",
    "gen_ai_request_model": "simulated-chat",
    "langgraph_graph": "chat",
    "langgraph_node": "chatbot",
}
PER_CHUNK = "gen_ai_client_operation_time_per_output_chunk_seconds"
MEAN = "langgraph_llm_time_per_output_chunk_seconds"
MAX_GAP = "langgraph_llm_max_chunk_gap_seconds"
pytestmark = pytest.mark.usefixtures("no_gc_pauses")


class StallingChatModel(SimulatedChatModel):
    """Streams a chunk every ``chunk_delay`` s, but waits ``stall`` more before one.

    ``arrivals`` holds the model's own clock at each chunk it hands to LangChain
    (the truth the gaps are compared with).
    """

    stall: float = 0.0
    stall_at: int = 0
    arrivals: list[float] = Field(default_factory=list)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        ai, tokens = self._next()
        for idx, chunk in enumerate(self._chunks(ai, tokens, messages)):
            time.sleep(self.chunk_delay + (self.stall if idx == self.stall_at else 0))
            self.arrivals.append(time.perf_counter())
            if run_manager:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        ai, tokens = self._next()
        for idx, chunk in enumerate(self._chunks(ai, tokens, messages)):
            await asyncio.sleep(
                self.chunk_delay + (self.stall if idx == self.stall_at else 0)
            )
            self.arrivals.append(time.perf_counter())
            if run_manager:
                await run_manager.on_llm_new_token(
                    str(chunk.message.content), chunk=chunk
                )
            yield chunk


def _chat(model: StallingChatModel, use_async: bool) -> Any:
    g = StateGraph(MessagesState)
    if use_async:

        async def chatbot(state: MessagesState) -> Any:
            return {"messages": [await model.ainvoke(state["messages"])]}

    else:

        def chatbot(state: MessagesState) -> Any:  # type: ignore[misc]
            return {"messages": [model.invoke(state["messages"])]}

    g.add_node("chatbot", chatbot)
    g.add_edge(START, "chatbot")
    g.add_edge("chatbot", END)
    return g.compile(name="chat")


def _model() -> StallingChatModel:
    return StallingChatModel(
        messages=itertools.cycle(["one two three four five"]),
        chunk_delay=GAP,
        stall=STALL,
        stall_at=STALL_AT,
    )


class _Run:
    """One streamed chat run against fresh backends, and how to read them."""

    def __init__(self, use_async: bool, **config: Any) -> None:
        self.model = _model()
        self.registry = CollectorRegistry()
        self.reader = InMemoryMetricReader()
        graph = lg_otel.instrument(
            _chat(self.model, use_async),
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            registry=self.registry,
            config=lg_otel.Config(**config),
        )
        inputs = {"messages": [HumanMessage("hi")]}
        if use_async:

            async def drain() -> None:
                async for _ in graph.astream(inputs, stream_mode="messages"):
                    pass

            asyncio.run(drain())
        else:
            for _ in graph.stream(inputs, stream_mode="messages"):
                pass

    def gaps(self) -> list[float]:
        """The model's own gaps between consecutive chunks."""
        return [b - a for a, b in itertools.pairwise(self.model.arrivals)]

    def prom(self, name: str, **extra: str) -> float | None:
        return self.registry.get_sample_value(name, {**LABELS, **extra})

    def families(self) -> set[str]:
        return {family.name for family in self.registry.collect()}

    def otel(self, name: str) -> list[HistogramDataPoint]:
        data = self.reader.get_metrics_data()
        return [
            point
            for resource in (data.resource_metrics if data else ())
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
            if isinstance(point, HistogramDataPoint)
        ]


@pytest.fixture(scope="module", autouse=True)
def _warm_up() -> None:
    """One untimed run each way: langchain-core's one-time set-up is not a gap."""
    for use_async in (False, True):
        _Run(use_async)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_per_chunk_name_not_recorded_by_default(use_async: bool) -> None:
    """Default: gen_ai.client.operation.time_per_output_chunk is on neither path."""
    run = _Run(use_async)
    assert PER_CHUNK not in run.families()
    assert run.otel(n.METRIC_TIME_PER_CHUNK) == []
    assert run.prom(f"{MEAN}_count") == 1


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_mean_gap_per_call(use_async: bool) -> None:
    """langgraph.llm.time_per_output_chunk: one mean per call, on the model's clock."""
    run = _Run(use_async)
    gaps = run.gaps()
    assert len(gaps) == CHUNKS - 1
    mean = sum(gaps) / len(gaps)
    assert run.prom(f"{MEAN}_count") == 1
    assert run.prom(f"{MEAN}_sum") == pytest.approx(mean, abs=TOLERANCE)
    (point,) = run.otel(n.METRIC_LLM_TIME_PER_CHUNK)
    assert point.count == 1
    assert point.sum == pytest.approx(run.prom(f"{MEAN}_sum"))


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_max_chunk_gap_shows_the_stall(use_async: bool) -> None:
    """langgraph.llm.max_chunk_gap is the stall halfway through, not the mean."""
    run = _Run(use_async)
    truth = max(run.gaps())
    assert truth >= GAP + STALL
    assert run.prom(f"{MAX_GAP}_count") == 1
    assert run.prom(f"{MAX_GAP}_sum") == pytest.approx(truth, abs=TOLERANCE)
    (point,) = run.otel(n.METRIC_LLM_MAX_CHUNK_GAP)
    assert dict(point.attributes or {})[n.LABEL_NODE] == "chatbot"
    assert point.sum == pytest.approx(run.prom(f"{MAX_GAP}_sum"))


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_opt_in_records_one_observation_per_chunk_after_the_first(
    use_async: bool,
) -> None:
    """per_chunk_metrics=True: chunks - 1 observations, each one gap."""
    run = _Run(use_async, per_chunk_metrics=True)
    gaps = run.gaps()
    assert run.prom(f"{PER_CHUNK}_count") == CHUNKS - 1
    assert run.prom(f"{PER_CHUNK}_sum") == pytest.approx(sum(gaps), abs=TOLERANCE)
    # Every ordinary gap (20 ms) lies at or below 0.16 s; only the stall above it.
    assert run.prom(f"{PER_CHUNK}_bucket", le="0.16") == CHUNKS - 2
    assert run.prom(f"{PER_CHUNK}_bucket", le="0.32") == CHUNKS - 1
    (point,) = run.otel(n.METRIC_TIME_PER_CHUNK)
    assert point.count == CHUNKS - 1
    assert point.sum == pytest.approx(run.prom(f"{PER_CHUNK}_sum"))


def test_env_var_turns_per_chunk_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """LG_OTEL_PER_CHUNK_METRICS=true does what Config(per_chunk_metrics=True) does."""
    monkeypatch.setenv(n.ENV_PER_CHUNK_METRICS, "true")
    run = _Run(False)
    assert run.prom(f"{PER_CHUNK}_count") == CHUNKS - 1


def test_explicit_config_wins_over_the_env_var(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Config(per_chunk_metrics=False) keeps it off whatever the environment says."""
    monkeypatch.setenv(n.ENV_PER_CHUNK_METRICS, "true")
    run = _Run(False, per_chunk_metrics=False)
    assert PER_CHUNK not in run.families()


def test_bad_env_value_warns_once_and_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad LG_OTEL_PER_CHUNK_METRICS warns once, naming it, and stays off."""
    monkeypatch.setattr(_config, "_warned", set())
    env = {n.ENV_PER_CHUNK_METRICS: "sometimes"}
    with pytest.warns(RuntimeWarning, match=n.ENV_PER_CHUNK_METRICS):
        resolved = lg_otel.Config().resolve(env)
    assert resolved.per_chunk_metrics is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lg_otel.Config().resolve(env).per_chunk_metrics is False


def test_bad_config_value_raises() -> None:
    """Config(per_chunk_metrics=...) takes True, False or None only."""
    with pytest.raises(TypeError, match="per_chunk_metrics"):
        lg_otel.Config(per_chunk_metrics="yes")  # type: ignore[arg-type]


def _tracker(per_chunk: bool, times: list[int]) -> Any:
    clock = iter(times)
    tracker = RunTracker(
        NullSink(), lambda: next(clock), graph="g", per_chunk=per_chunk
    )
    tracker.llm_started("c", None, operation="chat", model=None, provider=None)
    return tracker, tracker._llms["c"]


def test_tracker_keeps_the_max_gap_only_by_default() -> None:
    """Default: the tracker keeps the largest gap, not the list of gaps."""
    # run start, llm start, then chunks at 10, 13, 30, 31 (gaps 3, 17, 1)
    tracker, llm = _tracker(False, [0, 5, 10, 13, 30, 31])
    for _ in range(4):
        tracker.llm_chunk("c")
    assert llm.max_gap_ns == 17
    assert llm.gaps is None


def test_tracker_keeps_every_gap_when_per_chunk() -> None:
    """per_chunk: every gap after the first chunk, in order."""
    tracker, llm = _tracker(True, [0, 5, 10, 13, 30, 31])
    for _ in range(4):
        tracker.llm_chunk("c")
    assert llm.gaps == [3, 17, 1]
    assert llm.max_gap_ns == 17


class _ClockBreakingModel(StallingChatModel):
    """Sets ``broken`` while LangChain hands on its chunk ``break_at``."""

    break_at: int = 3
    broken: list[bool] = Field(default_factory=lambda: [False])

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        # LangChain dispatches on_llm_new_token once a chunk is yielded, before
        # it asks for the next one.
        for idx, chunk in enumerate(super()._stream(*args, **kwargs)):
            self.broken[0] = idx == self.break_at
            try:
                yield chunk
            finally:
                self.broken[0] = False


def test_a_clock_failing_on_a_later_chunk_still_counts_it(tracing: Any) -> None:
    """The clock raising at a chunk after the first: every chunk is counted (the
    last good reading stands in), and the failure is counted, not raised."""
    provider, exporter = tracing
    model = _ClockBreakingModel(messages=itertools.cycle(["one two three four five"]))
    graph = lg_otel.instrument(_chat(model, False), tracer_provider=provider)
    instr = instrumentation(graph)

    def clock() -> int:
        if model.broken[0]:
            raise OSError("clock broke")
        return time.perf_counter_ns()

    instr.clock = clock
    # Streamed (the model streams only for a caller of the messages mode).
    inputs = {"messages": [HumanMessage("hi")]}
    parts = list(graph.stream(inputs, stream_mode="messages"))
    text = "".join(str(chunk.content) for chunk, _ in parts)
    assert text == "one two three four five"
    (chat,) = by_name(exporter.get_finished_spans(), "chat simulated-chat")
    assert dict(chat.attributes or {})[n.ATTR_CHUNK_COUNT] == CHUNKS
    # Counted where the tracker counts clock failures (the tap's own readings in
    # the caller's thread may fail beside it, hence at least one).
    assert instr.errors.counts[n.COMPONENT_PARSE] >= 1
