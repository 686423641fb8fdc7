"""Helpers for testing graphs instrumented with lg_otel (and for demos).

* :class:`SimulatedChatModel`: a real ``GenericFakeChatModel`` subclass that waits a
  known time before its first chunk and between chunks, and reports a model name and
  provider the way real integrations do. No network.
* :func:`in_memory_tracing`: a TracerProvider wired to an ``InMemorySpanExporter``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from pydantic import Field

__all__ = ["SimulatedChatModel", "in_memory_tracing"]


class SimulatedChatModel(GenericFakeChatModel):
    """A fake chat model with controlled latency: the truth for accuracy tests.

    Each response is split into chunks on whitespace (as ``GenericFakeChatModel``
    does). Streaming waits ``first_chunk_delay`` seconds before the first chunk and
    ``chunk_delay`` seconds before each later one; a non-streaming call waits the
    same total and returns the whole message.
    """

    first_chunk_delay: float = 0.0
    chunk_delay: float = 0.0
    model_name: str = "simulated-chat"
    provider: str = "simulated"
    #: Report provider-style token usage (one output token per chunk) when True.
    report_usage: bool = False
    #: Seconds from the start of each streamed call to its first chunk, as the model
    #: itself saw them (the truth for accuracy tests, pauses of the host included).
    first_chunk_times: list[float] = Field(default_factory=list)
    #: Seconds each streamed call took from its start to its last chunk.
    stream_times: list[float] = Field(default_factory=list)

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        params["ls_model_name"] = self.model_name
        return params

    def _next(self) -> tuple[AIMessage, list[str]]:
        message = next(self.messages)
        ai = AIMessage(content=message) if isinstance(message, str) else message
        content = ai.content if isinstance(ai.content, str) else ""
        tokens = [t for t in re.split(r"(\s)", content) if t] if content else []
        return ai, tokens

    def _usage(self, tokens: list[str], prompt: list[BaseMessage]) -> dict[str, Any]:
        return {
            "input_tokens": len(prompt),
            "output_tokens": len(tokens),
            "total_tokens": len(prompt) + len(tokens),
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        ai, tokens = self._next()
        time.sleep(self.first_chunk_delay + self.chunk_delay * max(len(tokens) - 1, 0))
        if self.report_usage:
            ai = ai.model_copy(update={"usage_metadata": self._usage(tokens, messages)})
        return ChatResult(generations=[ChatGeneration(message=ai)])

    def _chunks(
        self, ai: AIMessage, tokens: list[str], messages: list[BaseMessage]
    ) -> Iterator[ChatGenerationChunk]:
        if ai.tool_calls:
            # Tool calls travel in one chunk, as providers' final chunks carry them.
            tokens = [*tokens, ""]
        for idx, token in enumerate(tokens):
            last = idx == len(tokens) - 1
            extra: dict[str, Any] = {}
            if last and self.report_usage:
                extra["usage_metadata"] = self._usage(tokens, messages)
            if last:
                # Marked last, so langchain-core adds no empty closing chunk.
                extra["chunk_position"] = "last"
                extra["response_metadata"] = {
                    "model_name": self.model_name,
                    "finish_reason": "tool_calls" if ai.tool_calls else "stop",
                }
                if ai.tool_calls:
                    extra["tool_call_chunks"] = [
                        {
                            "name": call["name"],
                            "args": json.dumps(call["args"]),
                            "id": call["id"],
                            "index": i,
                        }
                        for i, call in enumerate(ai.tool_calls)
                    ]
            yield ChatGenerationChunk(
                message=AIMessageChunk(content=token, id=ai.id, **extra)
            )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        ai, tokens = self._next()
        started = time.perf_counter()
        for idx, chunk in enumerate(self._chunks(ai, tokens, messages)):
            time.sleep(self.first_chunk_delay if idx == 0 else self.chunk_delay)
            if idx == 0:
                self.first_chunk_times.append(time.perf_counter() - started)
            if run_manager:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk
        self.stream_times.append(time.perf_counter() - started)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        ai, tokens = self._next()
        started = time.perf_counter()
        for idx, chunk in enumerate(self._chunks(ai, tokens, messages)):
            await asyncio.sleep(
                self.first_chunk_delay if idx == 0 else self.chunk_delay
            )
            if idx == 0:
                self.first_chunk_times.append(time.perf_counter() - started)
            if run_manager:
                await run_manager.on_llm_new_token(
                    str(chunk.message.content), chunk=chunk
                )
            yield chunk
        self.stream_times.append(time.perf_counter() - started)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        ai, tokens = self._next()
        await asyncio.sleep(
            self.first_chunk_delay + self.chunk_delay * max(len(tokens) - 1, 0)
        )
        if self.report_usage:
            ai = ai.model_copy(update={"usage_metadata": self._usage(tokens, messages)})
        return ChatResult(generations=[ChatGeneration(message=ai)])


def in_memory_tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A TracerProvider exporting synchronously to a fresh in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter
