"""The content policy: what prompt/completion/tool text may leave the process, and how.

Off by default. When on, values are rendered in the GenAI semantic-convention JSON
shape, passed through the user's redaction hook, then truncated. Pure code: messages
are read by duck typing (``.type``, ``.content``, ``.tool_calls``), no LangChain import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from lg_otel import _names as n

#: LangChain message ``type`` -> GenAI role (semconv v1.41: ``system``, ``user``,
#: ``assistant``, ``tool``). A chunk class's ``type`` is its class name
#: (``AIMessageChunk``), which is what a node that streams its model call gets back.
#: ``function`` is the legacy OpenAI function result: a tool result in GenAI terms.
_ROLES = {
    "human": "user",
    "HumanMessageChunk": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "SystemMessageChunk": "system",
    "tool": "tool",
    "ToolMessageChunk": "tool",
    "function": "tool",
    "FunctionMessageChunk": "tool",
}
#: ``type`` of ChatMessage/ChatMessageChunk, whose ``role`` attribute is free text.
_FREE_ROLE = ("chat", "ChatMessageChunk")
#: A ChatMessage ``role`` -> GenAI role; other roles pass through (the GenAI schema
#: allows any string). ``developer`` is OpenAI's newer name for system instructions.
_CHAT_ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}
_MARK = "…[truncated]"


class ContentPolicy:
    """Renders opted-in content; ``enabled`` is False unless the user opted in."""

    __slots__ = ("_max", "_on_error", "_redact", "enabled", "events", "spans")

    def __init__(
        self,
        mode: str,
        max_length: int,
        redact: Callable[[str], str] | None,
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Build the policy for one capture ``mode``."""
        self.spans = mode in (n.CAPTURE_SPAN_ONLY, n.CAPTURE_SPAN_AND_EVENT)
        self.events = mode in (n.CAPTURE_EVENT_ONLY, n.CAPTURE_SPAN_AND_EVENT)
        self.enabled = self.spans or self.events
        self._max = max_length
        self._redact = redact
        self._on_error = on_error

    def render(self, value: Any) -> str | None:
        """JSON text of ``value``, redacted then truncated; None when off or dropped."""
        if not self.enabled:
            return None
        try:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            if self._redact is not None:
                text = self._redact(text)
                if not isinstance(text, str):
                    raise TypeError("redact() must return a str")
        except Exception as exc:  # noqa: BLE001 - a failing hook drops the value only
            self._on_error(exc)
            return None
        if len(text) > self._max:
            keep = max(self._max - len(_MARK), 0)
            text = text[:keep] + _MARK
        return text


def role_of(message: Any) -> str:
    """The GenAI role of a LangChain message, from its ``type``, whatever its class."""
    kind = str(getattr(message, "type", ""))
    if kind in _FREE_ROLE:
        role = str(getattr(message, "role", "") or "")
        return _CHAT_ROLES.get(role.lower(), role)
    return _ROLES.get(kind, kind)


def _parts(message: Any, role: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = getattr(message, "content", None)
    if isinstance(content, str):
        if content:
            parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                parts.append({"type": "text", "content": block})
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append({"type": "text", "content": block.get("text", "")})
    for call in getattr(message, "tool_calls", None) or ():
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": call.get("name"),
                "arguments": call.get("args"),
            }
        )
    if role == "tool":
        parts = [
            {
                "type": "tool_call_response",
                "id": getattr(message, "tool_call_id", None),
                "response": content,
            }
        ]
    return parts


def messages_json(messages: Iterable[Any]) -> list[dict[str, Any]]:
    """Chat messages in the GenAI ``gen_ai.input.messages`` JSON shape."""
    out = []
    for message in messages:
        role = role_of(message)
        out.append({"role": role, "parts": _parts(message, role)})
    return out


def generations_json(response: Any) -> list[dict[str, Any]]:
    """An LLMResult's messages in the ``gen_ai.output.messages`` JSON shape."""
    out = []
    for generations in getattr(response, "generations", None) or ():
        for generation in generations:
            message = getattr(generation, "message", None)
            if message is not None:
                (entry,) = messages_json([message])
            else:
                text = getattr(generation, "text", "")
                entry = {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": text}],
                }
            meta = getattr(message, "response_metadata", None) or {}
            reason = meta.get("finish_reason") or meta.get("stop_reason")
            if reason:
                entry["finish_reason"] = reason
            out.append(entry)
    return out
