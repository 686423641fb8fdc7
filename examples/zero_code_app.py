"""Zero-code: our users' chat workflow, with no lg_otel call in it.

The workflow class has the shape of our users' write-up (a ``SimpleChatWorkflow``
whose ``setup()`` compiles a ``prefix_node`` → ``chatbot`` graph, streamed in
``messages`` mode), plus a ``research`` subgraph that calls a tool. Nothing here
imports lg_otel: ``opentelemetry-instrument`` activates lg_otel's instrumentor
(entry point ``lg_otel``) before this module runs, so the graph ``setup()``
compiles comes back traced.

Run (the trace prints as JSON on stdout, after the answer):

    pip install 'lg_otel[instrumentor]' opentelemetry-distro
    OTEL_SERVICE_NAME=zero-code OTEL_TRACES_EXPORTER=console \\
    OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \\
        opentelemetry-instrument python examples/zero_code_app.py

The chat model is langchain-core's ``GenericFakeChatModel`` (no network).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict, cast

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessageChunk, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode

ANSWER = "Quantum computers use qubits, which can hold superpositions of states."


class SimpleChatState(TypedDict):
    """The conversation."""

    messages: Annotated[list[Any], add_messages]


@tool
def lookup(topic: str) -> str:
    """Look a topic up in the (fixed) knowledge base."""
    return f"{topic}: qubits, superposition, entanglement"


class SimpleChatWorkflow:
    """prefix_node → research (plan → tools) → chatbot, compiled in ``setup()``."""

    def __init__(self) -> None:
        """Build the model and compile the graph."""
        self.name = "simple_chat"
        self.checkpointer = MemorySaver()
        self.llm = GenericFakeChatModel(messages=iter([AIMessage(content=ANSWER)]))
        self.setup()

    def prefix_node(self, state: SimpleChatState) -> dict[str, Any]:
        """A fixed message before the model's answer."""
        return {"messages": [AIMessage(content="Prefix A.\n\nThe assistant:\n")]}

    def plan(self, state: SimpleChatState) -> dict[str, Any]:
        """Ask for one tool call."""
        call = {"name": "lookup", "args": {"topic": "quantum"}, "id": "call-lookup"}
        return {"messages": [AIMessage(content="", tool_calls=[call])]}

    def chatbot(self, state: SimpleChatState) -> dict[str, Any]:
        """The model's answer (it streams when the caller streams ``messages``)."""
        return {"messages": [self.llm.invoke(state["messages"])]}

    def setup(self) -> None:
        """Compile the graph (and its research subgraph)."""
        research = StateGraph(SimpleChatState)
        research.add_node("plan", self.plan)
        research.add_node("tools", ToolNode([lookup]))
        research.add_edge(START, "plan")
        research.add_edge("plan", "tools")

        builder = StateGraph(SimpleChatState)
        builder.add_node("prefix_node", self.prefix_node)
        builder.add_node("research", research.compile(name="research"))
        builder.add_node("chatbot", self.chatbot)
        builder.set_entry_point("prefix_node")
        builder.add_edge("prefix_node", "research")
        builder.add_edge("research", "chatbot")
        builder.set_finish_point("chatbot")
        self.graph = builder.compile(name=self.name, checkpointer=self.checkpointer)


def main() -> None:
    """Stream one turn, token by token, as our users do."""
    flow = SimpleChatWorkflow()
    inputs: SimpleChatState = {"messages": [HumanMessage("Explain quantum computing")]}
    config: RunnableConfig = {"configurable": {"thread_id": "zero-code"}}
    # "messages" mode yields (chunk, metadata) pairs; LangGraph types them loosely.
    parts = cast(
        Iterator[tuple[BaseMessageChunk, dict[str, Any]]],
        flow.graph.stream(inputs, config, stream_mode="messages"),
    )
    for chunk, metadata in parts:
        if metadata.get("langgraph_node") == "chatbot" and chunk.content:
            # stderr: stdout carries the console exporter's spans.
            print(chunk.content, end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
