"""Captured content names message roles as GenAI does, whatever class carries them."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
)
from langgraph.graph import START, MessagesState, StateGraph

import lg_otel
from lg_otel import _names as n
from lg_otel._content import generations_json, messages_json

#: Every LangChain message class and its chunk variant, with the GenAI role.
CASES: list[tuple[BaseMessage, str]] = [
    (AIMessage("a"), "assistant"),
    (AIMessageChunk(content="a"), "assistant"),
    (HumanMessage("h"), "user"),
    (HumanMessageChunk(content="h"), "user"),
    (SystemMessage("s"), "system"),
    (SystemMessageChunk(content="s"), "system"),
    (ToolMessage("t", tool_call_id="c1"), "tool"),
    (ToolMessageChunk(content="t", tool_call_id="c1"), "tool"),
    (FunctionMessage(content="f", name="fn"), "tool"),
    (FunctionMessageChunk(content="f", name="fn"), "tool"),
    (ChatMessage(content="c", role="assistant"), "assistant"),
    (ChatMessageChunk(content="c", role="assistant"), "assistant"),
    (ChatMessage(content="c", role="user"), "user"),
    (ChatMessageChunk(content="c", role="human"), "user"),
    (ChatMessage(content="c", role="developer"), "system"),
    (ChatMessageChunk(content="c", role="critic"), "critic"),
]


@pytest.mark.parametrize(
    ("message", "role"), CASES, ids=[f"{type(m).__name__}-{r}" for m, r in CASES]
)
def test_role_comes_from_the_message_type(message: BaseMessage, role: str) -> None:
    """Each message class and its chunk variant get the same GenAI role."""
    (entry,) = messages_json([message])
    assert entry["role"] == role


@pytest.mark.parametrize(
    "message",
    [
        ToolMessage("42", tool_call_id="c1"),
        ToolMessageChunk(content="42", tool_call_id="c1"),
    ],
    ids=["ToolMessage", "ToolMessageChunk"],
)
def test_tool_result_is_a_tool_call_response(message: BaseMessage) -> None:
    """A tool result, chunk or not, is one tool_call_response part with its id."""
    (entry,) = messages_json([message])
    assert entry["parts"] == [
        {"type": "tool_call_response", "id": "c1", "response": "42"}
    ]


def test_streamed_generation_is_an_assistant_message() -> None:
    """A streamed model call's output (an AIMessageChunk generation) is assistant."""
    from langchain_core.outputs import ChatGenerationChunk, LLMResult

    chunk = AIMessageChunk(content="hi there")
    result = LLMResult(generations=[[ChatGenerationChunk(message=chunk)]])
    assert generations_json(result) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "hi there"}]}
    ]


def _streaming_graph() -> Any:
    model = GenericFakeChatModel(messages=itertools.cycle(["streamed answer"]))

    def chatbot(state: MessagesState) -> dict[str, Any]:
        answer = None
        for chunk in model.stream(state["messages"]):
            answer = chunk if answer is None else answer + chunk
        return {"messages": [AIMessage(content=answer.content if answer else "")]}

    g = StateGraph(MessagesState)
    g.add_node("chatbot", chatbot)
    g.add_edge(START, "chatbot")
    return g.compile(name="streamer")


def test_streamed_answer_exported_as_assistant(tracing: Any) -> None:
    """A node streaming its model call exports its output message as assistant."""
    provider, exporter = tracing
    graph = lg_otel.instrument(
        _streaming_graph(),
        tracer_provider=provider,
        config=lg_otel.Config(capture_content="SPAN_ONLY", metrics=False),
    )
    graph.invoke({"messages": [HumanMessage("hello")]})
    (chat,) = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    assert chat.attributes is not None
    assert chat.attributes[n.ATTR_REQUEST_STREAM] is True
    output = json.loads(str(chat.attributes[n.ATTR_OUTPUT_MESSAGES]))
    assert [m["role"] for m in output] == ["assistant"]
    assert output[0]["parts"] == [{"type": "text", "content": "streamed answer"}]
