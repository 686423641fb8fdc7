"""Quickstart: our users' chat workflow, traced by lg_otel, streamed to the terminal.

``prefix_node`` returns a fixed AIMessage, then ``chatbot`` calls a chat model; the
graph is streamed in ``messages`` mode, token by token. The chat model is simulated
(no network): about 350 ms to the first token, then about 40 tokens per second.
``lg_otel.configure()`` sets up the embedded default (no servers): the trace prints
as a tree on the terminal and metrics are served at ``/metrics`` on 127.0.0.1.

Run:  python examples/quickstart.py
"""

from __future__ import annotations

import itertools
import sys
import time
import urllib.request
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

import lg_otel
from lg_otel.testing import SimulatedChatModel

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


def main() -> None:
    """Stream one chat turn to the terminal, then show what lg_otel recorded."""
    # One line for the whole pipeline: no OTLP endpoint set, so traces print as a
    # tree on stderr; metrics are served on 127.0.0.1 (port 0: any free port).
    telemetry = lg_otel.configure(
        service_name="quickstart", metrics_port=0, log_level="warning"
    )
    graph = lg_otel.instrument(build_graph())
    config = {"configurable": {"thread_id": "demo-thread"}}
    inputs = {"messages": [HumanMessage("What does lg_otel measure?")]}

    started = time.perf_counter()
    first_token: float | None = None
    # The trace tree prints on stderr when the run ends, right after the last token.
    for part in graph.stream(inputs, config, stream_mode="messages", version="v2"):
        chunk, metadata = part["data"]
        if metadata["langgraph_node"] == "chatbot" and first_token is None:
            first_token = time.perf_counter() - started
        sys.stdout.write(str(chunk.content))
        sys.stdout.flush()
    print("\n")
    if first_token is not None:
        print(f"first token after {first_token * 1000:.0f} ms (measured by hand)")
    assert telemetry.metrics_url is not None
    with urllib.request.urlopen(telemetry.metrics_url, timeout=5) as response:
        exposition = response.read().decode()
    print(f"\nA few of the series at {telemetry.metrics_url}:")
    for line in exposition.splitlines():
        if line.startswith(SHOWN):
            print(f"  {line}")
    telemetry.shutdown()  # flushes everything (the trace tree printed at run end)


SHOWN = (
    "langgraph_run_time_to_first_token_seconds_sum",
    "gen_ai_client_operation_time_to_first_chunk_seconds_sum",
    "langgraph_llm_output_tokens_per_second_sum",
    "langgraph_task_duration_seconds_count",
)


if __name__ == "__main__":
    main()
