"""Content policy, tested as a security review would: plant secrets, look everywhere."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest
from structlog.testing import capture_logs
from typing_extensions import TypedDict

import lg_otel
from lg_otel import _names as n
from lg_otel.testing import SimulatedChatModel
from tests.conftest import instrumentation
from tests.graphs import SHAPES

PROMPT_SECRET = "PROMPT-SECRET-7f3a"
ARG_SECRET = "ARG-SECRET-91bc"
STATE_SECRET = "STATE-SECRET-c0de"
ANSWER_SECRET = "ANSWER-SECRET-55aa"
PASSWORD = "hunter2hunter2"
ALL = (PROMPT_SECRET, ARG_SECRET, STATE_SECRET, ANSWER_SECRET, PASSWORD)


@tool
def lookup(text: str) -> str:
    """Echo the text back (a tool whose arguments and result carry secrets)."""
    return f"found {text}"


class State(TypedDict):
    """Messages plus a private state value."""

    messages: list[Any]
    private: str


def secret_graph() -> Any:
    """model (tool call with a secret argument) -> tools -> model (secret answer)."""
    model = SimulatedChatModel(
        messages=itertools.cycle(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        {"name": "lookup", "args": {"text": ARG_SECRET}, "id": "c1"}
                    ],
                ),
                AIMessage(content=f"The answer is {ANSWER_SECRET} " + "pad " * 400),
            ]
        )
    )

    def call(state: State) -> dict[str, Any]:
        return {"messages": [*state["messages"], model.invoke(state["messages"])]}

    def tools(state: State) -> dict[str, Any]:
        out = ToolNode([lookup]).invoke({"messages": state["messages"]})
        return {"messages": [*state["messages"], *out["messages"]]}

    def route(state: State) -> str:
        return "tools" if state["messages"][-1].tool_calls else END

    g = StateGraph(State)
    g.add_node("call", call)
    g.add_node("tools", tools)
    g.add_edge(START, "call")
    g.add_conditional_edges("call", route, ["tools", END])
    g.add_edge("tools", "call")
    return g.compile(name="secrets")


def _everything(config: lg_otel.Config, tracing: Any) -> str:
    """Run every example graph plus the secret graph; all telemetry as one text."""
    provider, exporter = tracing
    registry = CollectorRegistry()
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    graphs = [(secret_graph(), None)] + [(s.build(), s) for s in SHAPES]
    with capture_logs() as logs:
        for graph, shape in graphs:
            traced = lg_otel.instrument(
                graph,
                tracer_provider=provider,
                meter_provider=meters,
                registry=registry,
                config=config,
            )
            cfg: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
            if shape is None:
                inputs: list[Any] = [
                    {
                        "messages": [HumanMessage(f"{PROMPT_SECRET} pw={PASSWORD}")],
                        "private": STATE_SECRET,
                    }
                ]
            else:
                inputs = shape.inputs
            for inp in inputs:
                try:
                    for _ in traced.stream(
                        inp, cfg, stream_mode=["messages", "updates", "values"]
                    ):
                        pass
                except Exception:  # noqa: BLE001 - the failing shape raises
                    pass
    # prometheus_client leaves generate_latest unannotated.
    parts = [generate_latest(registry).decode()]  # type: ignore[no-untyped-call]
    data = reader.get_metrics_data()
    assert data is not None
    parts.append(data.to_json())
    for span in exporter.get_finished_spans():
        parts.append(span.to_json())
    parts.append(json.dumps(logs, default=repr))
    return "\n".join(parts)


def test_no_content_by_default(tracing: Any) -> None:
    """Default policy: no planted secret in any span, event, metric or log line."""
    text = _everything(lg_otel.Config(logs=True), tracing)
    for secret in ALL:
        assert secret not in text
    assert n.ATTR_INPUT_MESSAGES not in text


@pytest.mark.parametrize("mode", ["SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"])
def test_opt_in_captures_redacted_and_truncated(mode: str, tracing: Any) -> None:
    """Opted in: prompts, answers and tool args appear, redacted, truncated."""
    config = lg_otel.Config(
        logs=True,
        capture_content=mode,
        max_content_length=300,
        redact=lambda text: text.replace(PASSWORD, "[redacted]"),
    )
    text = _everything(config, tracing)
    for secret in (PROMPT_SECRET, ARG_SECRET, ANSWER_SECRET):
        assert secret in text, secret
    assert PASSWORD not in text
    assert "[redacted]" in text
    assert STATE_SECRET not in text  # graph state is never captured
    assert "[truncated]" in text


def test_opt_in_shapes_on_span(tracing: Any) -> None:
    """SPAN_ONLY writes GenAI JSON messages on the chat span, not as events."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        secret_graph(),
        tracer_provider=provider,
        config=lg_otel.Config(capture_content="SPAN_ONLY"),
    )
    graph.invoke({"messages": [HumanMessage(PROMPT_SECRET)], "private": "x"})
    chat = next(s for s in exporter.get_finished_spans() if s.name.startswith("chat"))
    messages = json.loads(chat.attributes[n.ATTR_INPUT_MESSAGES])
    assert messages == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT_SECRET}]}
    ]
    assert not [e for e in chat.events if e.name == n.EVENT_CONTENT]
    tool_span = next(
        s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool")
    )
    assert ARG_SECRET in tool_span.attributes[n.ATTR_TOOL_ARGUMENTS]
    assert tool_span.attributes[n.ATTR_TOOL_RESULT] == f"found {ARG_SECRET}"


def test_env_opt_in_and_legacy_true(
    monkeypatch: pytest.MonkeyPatch, tracing: Any
) -> None:
    """The standard environment variable opts in; legacy 'true' means SPAN_ONLY."""
    provider, exporter = tracing
    monkeypatch.setenv(n.ENV_CAPTURE_CONTENT, "true")
    graph = lg_otel.instrument(secret_graph(), tracer_provider=provider)
    graph.invoke({"messages": [HumanMessage(PROMPT_SECRET)], "private": "x"})
    assert any(
        PROMPT_SECRET in str(s.attributes.get(n.ATTR_INPUT_MESSAGES, ""))
        for s in exporter.get_finished_spans()
    )


def test_raising_redaction_hook_drops_value_only(tracing: Any) -> None:
    """A redaction hook that raises drops the value and counts; the graph runs on."""
    provider, exporter = tracing

    def redact(text: str) -> str:
        raise RuntimeError("redactor broke")

    graph = lg_otel.instrument(
        secret_graph(),
        tracer_provider=provider,
        config=lg_otel.Config(capture_content="SPAN_ONLY", redact=redact),
    )
    out = graph.invoke({"messages": [HumanMessage(PROMPT_SECRET)], "private": "x"})
    assert out["messages"][-1].content.startswith("The answer")
    assert PROMPT_SECRET not in "".join(
        s.to_json() for s in exporter.get_finished_spans()
    )
    assert instrumentation(graph).errors.counts[n.COMPONENT_CONTENT] > 0
