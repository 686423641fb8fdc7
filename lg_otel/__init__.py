"""lg_otel: OpenTelemetry spans, Prometheus metrics and structured logs for LangGraph.

One call, ``graph = lg_otel.instrument(builder.compile())``, and every run, node task,
subgraph, LLM stream and tool call of the graph is traced and measured, without
changing the graph, patching anything global, or altering a chunk the caller receives.
"""

from lg_otel._config import Config
from lg_otel._configure import Telemetry, configure
from lg_otel._instrument import instrument
from lg_otel._logs import add_trace_ids

__all__ = ["Config", "Telemetry", "add_trace_ids", "configure", "instrument"]
