"""What a typed application writes with lg_otel; ``mypy --strict`` checks it.

Part of ``./run test`` (mypy, not pytest): a change that loses a type users rely
on fails here. Each ``type: ignore[...]`` marks a mistake mypy must keep
catching (strict mode reports an ignore that is no longer needed).
"""

from __future__ import annotations

from typing import Any, TypedDict, assert_type

import structlog
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.pregel import Pregel
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

import lg_otel
from lg_otel.instrumentor import LangGraphInstrumentor
from lg_otel.testing import in_memory_tracing


class State(TypedDict):
    topic: str


def write(state: State) -> State:
    return {"topic": state["topic"] + "!"}


builder = StateGraph(State)
builder.add_node("write", write)
builder.add_edge(START, "write")
compiled = builder.compile(checkpointer=InMemorySaver())

# instrument() gives back the graph's own type, so invoke()/stream() stay typed.
graph = lg_otel.instrument(
    compiled,
    tracer_provider=TracerProvider(),
    registry=CollectorRegistry(),
    config=lg_otel.Config(
        graph_name="writer", capture_content="SPAN_ONLY", redact=str.upper
    ),
)
assert_type(graph, CompiledStateGraph[State, None, State, State])
derived = graph.with_config(tags=["typed"])
assert_type(derived, CompiledStateGraph[State, None, State, State])


@entrypoint()
def workflow(topic: str) -> str:
    return topic.upper()


assert_type(lg_otel.instrument(workflow), Pregel[Any, None, Any, Any])

# The testing helpers and the application-level setup.
provider, exporter = in_memory_tracing()
assert_type(provider, TracerProvider)
telemetry: lg_otel.Telemetry = lg_otel.configure(
    service_name="writer", metrics_port=None
)
telemetry.shutdown()
structlog.configure(
    processors=[lg_otel.add_trace_ids, structlog.processors.JSONRenderer()]
)
LangGraphInstrumentor().instrument(config=lg_otel.Config(logs=False))
LangGraphInstrumentor().uninstrument()

# Mistakes mypy must keep catching (each also raises TypeError at run time).
lg_otel.instrument(builder)  # type: ignore[type-var]
lg_otel.instrument(compiled, config={"logs": False})  # type: ignore[arg-type]
lg_otel.Config(logs="yes")  # type: ignore[arg-type]
