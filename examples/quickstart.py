"""Quickstart: our users' chat workflow, traced by lg_otel, streamed to the terminal.

``prefix_node`` returns a fixed AIMessage, then ``chatbot`` calls a chat model; the
graph is streamed in ``messages`` mode, token by token. The chat model is simulated
(no network): about 350 ms to the first token, then about 40 tokens per second.
At the end the script prints the trace lg_otel recorded for the run.

Run:  python examples/quickstart.py
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from opentelemetry.sdk.trace import ReadableSpan

import lg_otel
from lg_otel.testing import SimulatedChatModel, in_memory_tracing

ANSWER = (
    "LangGraph streams tokens as the model produces them, so the first words reach "
    "you long before the answer is complete. lg_otel measures how long that takes."
)


def build_graph() -> Any:
    """The 'prefix node -> chatbot' workflow from our users' write-up."""
    llm = SimulatedChatModel(
        messages=itertools.cycle([ANSWER]),
        first_chunk_delay=0.35,
        chunk_delay=0.025,
        model_name="sim-chat-1",
        provider="simulated",
        report_usage=True,
    )

    def prefix_node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="Prefix A. Next, the assistant:\n")]}

    def chatbot(state: MessagesState) -> dict[str, Any]:
        return {"messages": [llm.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("prefix_node", prefix_node)
    builder.add_node("chatbot", chatbot)
    builder.add_edge(START, "prefix_node")
    builder.add_edge("prefix_node", "chatbot")
    builder.add_edge("chatbot", END)
    return builder.compile(name="simple_chat", checkpointer=MemorySaver())


def print_trace(spans: tuple[ReadableSpan, ...]) -> None:
    """Print spans as an indented tree with durations and the key attributes."""
    children: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans}
    for span in spans:
        parent = span.parent.span_id if span.parent else None
        children.setdefault(parent if parent in ids else None, []).append(span)
    keys = (
        "langgraph.status",
        "langgraph.step",
        "gen_ai.response.time_to_first_chunk",
        "gen_ai.usage.output_tokens",
    )

    def show(span: ReadableSpan, depth: int) -> None:
        assert span.start_time is not None
        assert span.end_time is not None
        ms = (span.end_time - span.start_time) / 1e6
        attrs = span.attributes or {}
        extra = ", ".join(
            f"{k.split('.')[-1]}={attrs[k]:.3f}"
            if isinstance(attrs[k], float)
            else f"{k.split('.')[-1]}={attrs[k]}"
            for k in keys
            if k in attrs
        )
        print(f"  {'  ' * depth}{span.name:<28} {ms:8.1f} ms  {extra}")
        for child in sorted(children.get(span.context.span_id, []), key=_start):
            show(child, depth + 1)

    for root in sorted(children.get(None, []), key=_start):
        show(root, 0)


def _start(span: ReadableSpan) -> int:
    return span.start_time or 0


def main() -> None:
    """Stream one chat turn to the terminal, then print its trace."""
    provider, exporter = in_memory_tracing()
    graph = lg_otel.instrument(build_graph(), tracer_provider=provider)
    config = {"configurable": {"thread_id": "demo-thread"}}
    inputs = {"messages": [HumanMessage("What does lg_otel measure?")]}

    started = time.perf_counter()
    first_token: float | None = None
    for part in graph.stream(inputs, config, stream_mode="messages", version="v2"):
        chunk, metadata = part["data"]
        if metadata["langgraph_node"] == "chatbot" and first_token is None:
            first_token = time.perf_counter() - started
        sys.stdout.write(str(chunk.content))
        sys.stdout.flush()
    print("\n")
    if first_token is not None:
        print(f"first token after {first_token * 1000:.0f} ms (measured by hand)\n")
    print("Trace recorded by lg_otel:")
    print_trace(exporter.get_finished_spans())
    provider.shutdown()


if __name__ == "__main__":
    main()
