"""lg_otel: OpenTelemetry spans, Prometheus metrics and structured logs for LangGraph.

One call, ``graph = lg_otel.instrument(builder.compile())``, and every run, node task,
subgraph, LLM stream and tool call of the graph is traced, without changing the
graph, patching anything global, or altering a single chunk the caller receives.
"""

from lg_otel._config import Config
from lg_otel._instrument import instrument

__all__ = ["Config", "instrument"]
