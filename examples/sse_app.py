"""A FastAPI service streaming an instrumented chat graph over Server-Sent Events.

The endpoint has the shape of our users' write-up: ``POST /chat/stream`` answers
``text/event-stream`` with ``Cache-Control: no-cache`` and ``X-Accel-Buffering: no``,
one ``data: {"content": ...}`` event per token and a ``data: {"error": ...}`` event if
the graph fails. Their hand-written first-packet histogram is gone: lg_otel records
``langgraph_run_time_to_first_token_seconds`` (and the rest) by itself.

The graph: ``prefix_node`` → ``research`` (a subgraph: ``plan`` → ``tools``, a
``ToolNode``) → ``guard`` (fails when the request asks it to) → ``chatbot`` (a
simulated chat model streaming tokens). The model's first-token delay and token gap
are adjustable at run time through ``POST /admin/latency`` (or the environment
variables ``SIM_FIRST_CHUNK_DELAY`` / ``SIM_CHUNK_DELAY``), so tests can make latency
degrade and recover.

Run:  uvicorn examples.sse_app:app --host 127.0.0.1 --port 8000
Telemetry: ``OTEL_EXPORTER_OTLP_ENDPOINT`` sends traces over OTLP; ``/metrics`` on
the same port serves the Prometheus metrics (with exemplars, in OpenMetrics).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import prometheus_client
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

import lg_otel
from lg_otel.testing import SimulatedChatModel

ANSWER = (
    "Here is what I found: the service is healthy, latency is within budget, "
    "and every node reported in time."
)


class ChatState(MessagesState):
    """Messages plus the request's wish to fail (for error-path tests)."""

    fail: bool


class UpstreamError(RuntimeError):
    """What the ``guard`` node raises when a request asks for a failure."""


@tool
def lookup(topic: str) -> str:
    """Look a topic up in the (simulated) knowledge base."""
    return f"{topic}: all systems nominal"


def _delay(variable: str, default: float) -> float:
    try:
        return max(float(os.environ.get(variable, default)), 0.0)
    except ValueError:
        return default


MODEL = SimulatedChatModel(
    messages=itertools.cycle([ANSWER]),
    first_chunk_delay=_delay("SIM_FIRST_CHUNK_DELAY", 0.3),
    chunk_delay=_delay("SIM_CHUNK_DELAY", 0.02),
    model_name="sim-chat-1",
    provider="simulated",
    report_usage=True,
)


def build_graph() -> Any:
    """The service's graph (compiled, not yet instrumented)."""

    def prefix_node(state: ChatState) -> dict[str, Any]:
        return {"messages": [AIMessage(content="Let me check. ")]}

    def plan(state: ChatState) -> dict[str, Any]:
        call = {"name": "lookup", "args": {"topic": "status"}, "id": "call-lookup"}
        return {"messages": [AIMessage(content="", tool_calls=[call])]}

    research = StateGraph(ChatState)
    research.add_node("plan", plan)
    research.add_node("tools", ToolNode([lookup]))
    research.add_edge(START, "plan")
    research.add_edge("plan", "tools")

    def guard(state: ChatState) -> dict[str, Any]:
        if state.get("fail"):
            raise UpstreamError("upstream model refused the request")
        return {}

    async def chatbot(state: ChatState) -> dict[str, Any]:
        return {"messages": [await MODEL.ainvoke(state["messages"])]}

    g = StateGraph(ChatState)
    g.add_node("prefix_node", prefix_node)
    g.add_node("research", research.compile(name="research"))
    g.add_node("guard", guard)
    g.add_node("chatbot", chatbot)
    g.add_edge(START, "prefix_node")
    g.add_edge("prefix_node", "research")
    g.add_edge("research", "guard")
    g.add_edge("guard", "chatbot")
    g.add_edge("chatbot", END)
    return g.compile(name="sse_chat", checkpointer=InMemorySaver())


class ChatRequest(BaseModel):
    """Body of ``POST /chat/stream``."""

    message: str
    thread_id: str = "default"
    fail: bool = False


class Latency(BaseModel):
    """The simulated model's latency."""

    first_chunk_delay: float
    chunk_delay: float


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Set up telemetry once per process; flush it at shutdown."""
    telemetry = lg_otel.configure(
        service_name=os.environ.get("OTEL_SERVICE_NAME", "lg-otel-example"),
        metrics_port=None,  # /metrics is served by this app itself
        log_level=os.environ.get("LOG_LEVEL", "warning"),
    )
    app.state.graph = lg_otel.instrument(build_graph())
    yield
    telemetry.shutdown()


app = FastAPI(title="lg_otel SSE example", lifespan=lifespan)


@app.post("/chat/stream")
async def chat_stream(body: ChatRequest, request: Request) -> StreamingResponse:
    """Stream the answer token by token as Server-Sent Events."""
    graph = request.app.state.graph
    inputs = {"messages": [HumanMessage(body.message)], "fail": body.fail}
    config = {"configurable": {"thread_id": body.thread_id}}

    async def events() -> AsyncIterator[str]:
        try:
            async for chunk, _meta in graph.astream(
                inputs, config, stream_mode="messages"
            ):
                if isinstance(chunk, AIMessageChunk) and chunk.content:
                    yield f"data: {json.dumps({'content': chunk.content})}\n\n"
        except Exception as exc:  # noqa: BLE001 - reported to the client as an event
            yield f"data: {json.dumps({'error': type(exc).__name__})}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "Connection": "keep-alive",
            "X-Accel-Buffering": "no",
        },
    )


@app.get("/admin/latency")
async def get_latency() -> Latency:
    """The simulated model's current latency."""
    return Latency(
        first_chunk_delay=MODEL.first_chunk_delay, chunk_delay=MODEL.chunk_delay
    )


@app.post("/admin/latency")
async def set_latency(body: Latency) -> Latency:
    """Change the simulated model's latency (make it degrade or recover)."""
    MODEL.first_chunk_delay = max(body.first_chunk_delay, 0.0)
    MODEL.chunk_delay = max(body.chunk_delay, 0.0)
    return await get_latency()


@app.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics; OpenMetrics (with exemplars) when the scraper asks."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(prometheus_client.REGISTRY), media_type=content_type)


@app.post("/alerts/webhook")
async def alerts_webhook(request: Request) -> dict[str, int]:
    """A placeholder Alertmanager receiver (deploy/): accepts and counts alerts."""
    body = await request.json()
    return {"received": len(body.get("alerts", []))}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}
