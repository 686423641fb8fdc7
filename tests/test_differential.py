"""The caller sees exactly what the bare graph yields, for every shape and mode."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

import pytest
from langchain_core.runnables import RunnableConfig
from prometheus_client import CollectorRegistry

import lg_otel
from lg_otel import _names as n
from lg_otel import _tap
from tests.conftest import normalise
from tests.graphs import SHAPES, Shape, chat, human
from tests.typed_graphs import TYPED_SHAPES

#: Every shape, typed-state ones (Pydantic, dataclass) included.
ALL_SHAPES = SHAPES + TYPED_SHAPES

MODES: list[Any] = [
    None,
    "values",
    "updates",
    "messages",
    "custom",
    "tasks",
    "debug",
    "checkpoints",
    ["updates", "messages"],
    ["values", "updates", "messages", "custom", "tasks", "debug", "checkpoints"],
    ("updates", "values"),
]


def _config(shape: Shape) -> RunnableConfig:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def drive_sync(graph: Any, shape: Shape, **kwargs: Any) -> list[str]:
    """Run every input of the shape; normalised outputs and the exception type."""
    out: list[str] = []
    config = _config(shape)
    for inp in shape.inputs:
        try:
            for chunk in graph.stream(inp, config, **kwargs):
                out.append(normalise(chunk))
        except Exception as exc:  # noqa: BLE001 - the exception is part of the output
            out.append(f"raised {type(exc).__name__}: {exc}")
    return out


async def drive_async(graph: Any, shape: Shape, **kwargs: Any) -> list[str]:
    """Async twin of :func:`drive_sync`."""
    out: list[str] = []
    config = _config(shape)
    for inp in shape.inputs:
        try:
            async for chunk in graph.astream(inp, config, **kwargs):
                out.append(normalise(chunk))
        except Exception as exc:  # noqa: BLE001 - the exception is part of the output
            out.append(f"raised {type(exc).__name__}: {exc}")
    return out


def _kwargs(mode: Any, subgraphs: bool, version: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"subgraphs": subgraphs, "version": version}
    if mode is not None:
        kwargs["stream_mode"] = mode
    return kwargs


@pytest.mark.parametrize("shape", ALL_SHAPES, ids=lambda s: s.name)
@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("subgraphs", [False, True], ids=["flat", "subgraphs"])
def test_sync_stream_identical(
    shape: Shape, version: str, subgraphs: bool, tracing: Any
) -> None:
    """Sync stream() yields the bare graph's sequence for every mode combination."""
    provider, exporter = tracing
    bare = shape.build()
    traced = lg_otel.instrument(shape.build(), tracer_provider=provider)
    for mode in MODES:
        kwargs = _kwargs(mode, subgraphs, version)
        expected = drive_sync(bare, shape, **kwargs)
        got = drive_sync(traced, shape, **kwargs)
        assert got == expected, f"mode={mode!r}"
    assert exporter.get_finished_spans(), "the traced graph emitted no spans"


@pytest.mark.parametrize("shape", ALL_SHAPES, ids=lambda s: s.name)
@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("subgraphs", [False, True], ids=["flat", "subgraphs"])
async def test_async_stream_identical(
    shape: Shape, version: str, subgraphs: bool, tracing: Any
) -> None:
    """Async astream() yields the bare graph's sequence for every mode combination."""
    provider, exporter = tracing
    bare = shape.build()
    traced = lg_otel.instrument(shape.build(), tracer_provider=provider)
    for mode in MODES:
        kwargs = _kwargs(mode, subgraphs, version)
        expected = await drive_async(bare, shape, **kwargs)
        got = await drive_async(traced, shape, **kwargs)
        assert got == expected, f"mode={mode!r}"
    assert exporter.get_finished_spans(), "the traced graph emitted no spans"


@pytest.mark.parametrize("shape", ALL_SHAPES, ids=lambda s: s.name)
def test_invoke_identical(shape: Shape, tracing: Any) -> None:
    """invoke() (v1 and v2) returns what the bare graph returns."""
    provider, _ = tracing
    bare = shape.build()
    traced = lg_otel.instrument(shape.build(), tracer_provider=provider)
    version: Literal["v1", "v2"]
    for version in ("v1", "v2"):
        results = []
        for graph in (bare, traced):
            config = _config(shape)
            got = []
            for inp in shape.inputs:
                try:
                    got.append(normalise(graph.invoke(inp, config, version=version)))
                except Exception as exc:  # noqa: BLE001 - part of the output
                    got.append(f"raised {type(exc).__name__}")
            results.append(got)
        assert results[1] == results[0]


@pytest.mark.parametrize("shape", ALL_SHAPES, ids=lambda s: s.name)
async def test_ainvoke_versions_identical(shape: Shape, tracing: Any) -> None:
    """ainvoke() (v1 and v2, resumes included) returns what the bare graph returns."""
    provider, _ = tracing
    bare = shape.build()
    traced = lg_otel.instrument(shape.build(), tracer_provider=provider)
    version: Literal["v1", "v2"]
    for version in ("v1", "v2"):
        results = []
        for graph in (bare, traced):
            config = _config(shape)
            got = []
            for inp in shape.inputs:
                try:
                    out = await graph.ainvoke(inp, config, version=version)
                    got.append(normalise(out))
                except Exception as exc:  # noqa: BLE001 - part of the output
                    got.append(f"raised {type(exc).__name__}")
            results.append(got)
        assert results[1] == results[0]


@pytest.mark.parametrize("shape", TYPED_SHAPES, ids=lambda s: s.name)
def test_with_config_copy_identical(shape: Shape, tracing: Any) -> None:
    """A with_config() copy of the traced graph behaves as the bare graph's copy."""
    provider, _ = tracing
    bare = shape.build().with_config(tags=["t"])
    traced = lg_otel.instrument(shape.build(), tracer_provider=provider)
    traced = traced.with_config(tags=["t"])
    for mode in MODES:
        kwargs = _kwargs(mode, True, "v2")
        assert drive_sync(traced, shape, **kwargs) == drive_sync(
            bare, shape, **kwargs
        ), f"mode={mode!r}"


@pytest.mark.parametrize(
    "shape",
    [s for s in ALL_SHAPES if not (s.needs_thread or s.raises)],
    ids=lambda s: s.name,
)
async def test_ainvoke_and_batch_identical(shape: Shape, tracing: Any) -> None:
    """ainvoke(), batch() and abatch() return what the bare graph returns."""
    provider, _ = tracing
    bare = shape.build()
    traced = lg_otel.instrument(shape.build(), tracer_provider=provider)
    inp = shape.inputs[0]
    assert normalise(await traced.ainvoke(inp)) == normalise(await bare.ainvoke(inp))
    # One at a time: the agent's model hands out a shared cycle of answers, so
    # concurrent items would race for them in the bare graph as much as in ours.
    one: RunnableConfig = {"max_concurrency": 1}
    got = traced.batch([inp, inp], one)
    assert normalise(got) == normalise(bare.batch([inp, inp], one))
    got = await traced.abatch([inp, inp], one)
    assert normalise(got) == normalise(await bare.abatch([inp, inp], one))


def test_print_mode_output_identical(
    capsys: pytest.CaptureFixture[str], tracing: Any
) -> None:
    """print_mode prints and yields exactly what the bare graph does."""
    provider, _ = tracing
    shape = SHAPES[4]  # nested: subgraph parts would print if we forced subgraphs
    bare = shape.build()
    traced = lg_otel.instrument(shape.build(), tracer_provider=provider)
    expected = drive_sync(bare, shape, stream_mode="updates", print_mode="updates")
    printed_bare = capsys.readouterr().out
    got = drive_sync(traced, shape, stream_mode="updates", print_mode="updates")
    assert got == expected
    assert normalise(capsys.readouterr().out) == normalise(printed_bare)


def test_async_event_loop_untouched_by_context(tracing: Any) -> None:
    """asyncio.run of an instrumented graph leaves no OTel context behind."""
    from opentelemetry import context as otel_context

    provider, _ = tracing
    traced = lg_otel.instrument(SHAPES[1].build(), tracer_provider=provider)
    before = otel_context.get_current()

    async def main() -> None:
        async for _ in traced.astream({"log": []}):
            assert otel_context.get_current() == before

    asyncio.run(main())
    assert otel_context.get_current() == before


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every raw item the tap hands to ``route()``, in order (route still runs)."""
    seen: list[object] = []
    route = _tap._Plan.route

    def counting(self: Any, item: object) -> object:
        seen.append(item)
        return route(self, item)

    monkeypatch.setattr(_tap._Plan, "route", counting)
    return seen


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_items_with_nothing_to_read_skip_route(
    use_async: bool, tracing: Any, routed: list[object]
) -> None:
    """After the run's first token the tap hands messages items over without
    route(): the caller still gets the bare graph's items, and the first token,
    the chunk count and the interrupt-free updates are still read."""
    provider, exporter = tracing
    registry = CollectorRegistry()
    traced = lg_otel.instrument(chat(), tracer_provider=provider, registry=registry)
    shape = next(s for s in SHAPES if s.name == "chat")
    kwargs = {"stream_mode": ["messages", "custom", "updates"]}
    drive = drive_async if use_async else _drive_sync_in_async
    expected = await drive(chat(), shape, **kwargs)
    routed.clear()
    got = await drive(traced, shape, **kwargs)
    assert got == expected
    messages = [i for i in routed if isinstance(i, tuple) and i[0] == "messages"]
    chunks = sum(line.startswith("('messages'") for line in got)
    # The prefix node's message, the first chunk and the one that found the
    # first token in: every later chunk skipped route().
    assert len(messages) == 3 < chunks
    (llm,) = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    assert llm.attributes is not None
    assert llm.attributes[n.ATTR_CHUNK_COUNT] == chunks - 1
    ttft = registry.get_sample_value(
        "langgraph_run_time_to_first_token_seconds_count", {"langgraph_graph": "chat"}
    )
    assert ttft == 1


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_interrupt_free_updates_skip_route(
    use_async: bool, tracing: Any, routed: list[object]
) -> None:
    """Under invoke() a task's ``updates`` item reaches LangGraph's own loop
    without route() unless it holds an interrupt, which is still read: the result
    is the bare graph's and the run span says interrupted."""
    provider, exporter = tracing

    async def run(graph: Any) -> Any:
        config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
        if use_async:
            return await graph.ainvoke({"log": []}, config)
        return graph.invoke({"log": []}, config)

    expected = await run(human())
    routed.clear()
    got = await run(lg_otel.instrument(human(), tracer_provider=provider))
    assert got["log"] == expected["log"] == ["prepare"]
    assert [i.value for i in got["__interrupt__"]] == ["approve?"]
    updates = [i for i in routed if isinstance(i, tuple) and i[0] == "updates"]
    # prepare's update skipped route(); the interrupt's did not.
    assert len(updates) == 1
    assert "__interrupt__" in updates[0][1]
    (span,) = [s for s in exporter.get_finished_spans() if s.name.endswith("human")]
    assert span.attributes is not None
    assert span.attributes[n.ATTR_STATUS] == n.STATUS_INTERRUPTED


async def _drive_sync_in_async(graph: Any, shape: Shape, **kwargs: Any) -> list[str]:
    """:func:`drive_sync`, awaitable (one test body for both drivers)."""
    return drive_sync(graph, shape, **kwargs)
