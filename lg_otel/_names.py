"""Every name lg_otel emits: span names, attribute keys, metric names, log events.

This is a public interface (dashboards, alert rules and people's muscle memory depend
on it), so every name lives here and nowhere else. Values follow the OpenTelemetry
GenAI semantic conventions v1.41.0; our own keys use the ``langgraph.`` prefix.
"""

from __future__ import annotations

from typing import Final

#: Instrumentation scope name given to the tracer and meter.
SCOPE_NAME: Final = "lg_otel"
#: Schema URL of the semantic conventions the names follow.
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.0"

# --- span names (a prefix; the subject is appended after one space) -------------

#: Span name prefix of one graph run: ``invoke_workflow {graph}``.
SPAN_RUN: Final = "invoke_workflow"
#: Span name prefix of one node task: ``invoke_node {node}``.
SPAN_TASK: Final = "invoke_node"
#: Span name prefix of one tool call: ``execute_tool {tool}``.
SPAN_TOOL: Final = "execute_tool"
#: Operation (and span name prefix) of a chat-model call: ``chat {model}``.
OP_CHAT: Final = "chat"
#: Operation of a completion-style (non-chat) LLM call.
OP_TEXT_COMPLETION: Final = "text_completion"

# --- attribute keys -------------------------------------------------------------

#: GenAI operation name (``invoke_workflow``, ``chat``, ``execute_tool``...).
ATTR_OPERATION_NAME: Final = "gen_ai.operation.name"
#: Name of the workflow (the graph).
ATTR_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
#: Conversation id: LangGraph's ``thread_id`` when configured.
ATTR_CONVERSATION_ID: Final = "gen_ai.conversation.id"
#: GenAI provider, from LangChain's ``ls_provider``.
ATTR_PROVIDER_NAME: Final = "gen_ai.provider.name"
#: Requested model, from LangChain's ``ls_model_name``.
ATTR_REQUEST_MODEL: Final = "gen_ai.request.model"
#: Model the provider says answered.
ATTR_RESPONSE_MODEL: Final = "gen_ai.response.model"
#: Whether the model call streamed (true when chunks were seen).
ATTR_REQUEST_STREAM: Final = "gen_ai.request.stream"
#: Seconds from the model call to its first chunk.
ATTR_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
#: Input tokens, as reported by the provider.
ATTR_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
#: Output tokens, as reported by the provider.
ATTR_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
#: Finish reasons reported by the provider.
ATTR_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
#: Tool name.
ATTR_TOOL_NAME: Final = "gen_ai.tool.name"
#: Tool call id assigned by the model.
ATTR_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
#: Chat messages sent to the model (JSON), only when content capture is on.
ATTR_INPUT_MESSAGES: Final = "gen_ai.input.messages"
#: Chat messages the model produced (JSON), only when content capture is on.
ATTR_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
#: Qualified class name of the exception that failed the operation.
ATTR_ERROR_TYPE: Final = "error.type"

#: LangGraph node name of a task.
ATTR_NODE: Final = "langgraph.node"
#: LangGraph superstep of a task.
ATTR_STEP: Final = "langgraph.step"
#: LangGraph task id.
ATTR_TASK_ID: Final = "langgraph.task.id"
#: Channels/branches that triggered a task.
ATTR_TRIGGERS: Final = "langgraph.triggers"
#: Checkpoint namespace of a task (``node:<task id>``, ``|``-joined through subgraphs).
ATTR_CHECKPOINT_NS: Final = "langgraph.checkpoint_ns"
#: Subgraph path of a task: the names of the nodes whose subgraphs lead to it,
#: ``|``-joined, task ids left out (absent at the top level).
ATTR_NAMESPACE: Final = "langgraph.namespace"
#: Compiled name of the subgraph a node runs, on that node's task span.
ATTR_SUBGRAPH_NAME: Final = "langgraph.subgraph.name"
#: Node names a task's writes trigger (edges, the conditional edge's pick,
#: ``Command(goto=...)``, ``Send`` targets), as LangGraph hands the task's writes
#: to the checkpointer; absent where LangGraph reports no writes for the task.
ATTR_TASK_NEXT: Final = "langgraph.task.next"
#: Outcome of a run or task: one of the ``STATUS_*`` values.
ATTR_STATUS: Final = "langgraph.status"
#: Number of streamed chunks an LLM call produced.
ATTR_CHUNK_COUNT: Final = "langgraph.llm.chunk_count"
#: Seconds the graph sat waiting for the caller to pull the next chunk.
ATTR_CONSUMER_WAIT: Final = "langgraph.stream.consumer_wait"

#: Span operation value of a run.
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
#: Span operation value of a tool call.
OP_EXECUTE_TOOL: Final = "execute_tool"

# --- statuses ---------------------------------------------------------------------

#: The run or task finished normally.
STATUS_OK: Final = "ok"
#: The run or task raised.
STATUS_ERROR: Final = "error"
#: A human-in-the-loop ``interrupt()`` paused the run (not an error).
STATUS_INTERRUPTED: Final = "interrupted"
#: The caller stopped the run early (break, ``aclose()``, cancellation).
STATUS_CANCELLED: Final = "cancelled"

# --- span events --------------------------------------------------------------------

#: Span event added when a run or task is interrupted; it carries ``ATTR_NODE`` and
#: ``ATTR_TASK_ID`` of the interrupting task and the ``ATTR_INTERRUPT_*`` keys.
EVENT_INTERRUPT: Final = "interrupt"
#: ``interrupt`` event attribute: LangGraph's id of the interrupt (``Interrupt.id``;
#: the first one when a task raised several).
ATTR_INTERRUPT_ID: Final = "langgraph.interrupt.id"
#: ``interrupt`` event attribute: how many interrupts the task (on a run span: the
#: run, distinct ids) raised.
ATTR_INTERRUPT_COUNT: Final = "langgraph.interrupt.count"
#: ``interrupt`` event attribute: the interrupt's value (JSON, truncated; a list
#: when a task raised several), only when content capture is on.
ATTR_INTERRUPT_VALUE: Final = "langgraph.interrupt.value"
#: Span event added when the first chunk of an LLM call arrives.
EVENT_FIRST_CHUNK: Final = "gen_ai.first_chunk"

# --- internal error components --------------------------------------------------------

#: Internal-error component: the tracing sink.
COMPONENT_SPANS: Final = "spans"
#: Internal-error component: the metrics sink.
COMPONENT_METRICS: Final = "metrics"
#: Internal-error component: the log sink.
COMPONENT_LOGS: Final = "logs"
#: Internal-error component: parsing a stream part.
COMPONENT_PARSE: Final = "parse"
#: Internal-error component: the content policy (a raising redaction hook).
COMPONENT_CONTENT: Final = "content"
#: Internal-error component: the per-run callback hook.
COMPONENT_HOOK: Final = "hook"

#: Name given to a graph that has none (LangGraph's own default is ``LangGraph``).
DEFAULT_GRAPH_NAME: Final = "LangGraph"

#: Environment variable of the OTel GenAI content-capture mode.
ENV_CAPTURE_CONTENT: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

# --- metrics (OTel instrument names; Prometheus names are what OTel's translation
# makes of them: dots -> underscores, unit "s" -> "_seconds", counters -> "_total") ---

#: Histogram (s): model call start to first streamed chunk.
METRIC_TTFC: Final = "gen_ai.client.operation.time_to_first_chunk"
#: Histogram (s): time from the previous streamed chunk to this one, one observation
#: per chunk after the first (semconv); recorded only with ``per_chunk_metrics``.
METRIC_TIME_PER_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
#: Histogram (s): mean time between streamed chunks of one model call (one
#: observation per call; not the semconv's per-chunk quantity).
METRIC_LLM_TIME_PER_CHUNK: Final = "langgraph.llm.time_per_output_chunk"
#: Histogram (s): the largest gap between consecutive chunks of one model call.
METRIC_LLM_MAX_CHUNK_GAP: Final = "langgraph.llm.max_chunk_gap"
#: Histogram (s): whole model call.
METRIC_LLM_DURATION: Final = "gen_ai.client.operation.duration"
#: Histogram ({token}): provider-reported token counts, by ``gen_ai.token.type``.
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
#: Histogram ({token}/s): output tokens per second of one model call.
METRIC_TOKENS_PER_SECOND: Final = "langgraph.llm.output_tokens_per_second"
#: Histogram (s): caller's call to the first LLM token handed to the caller.
METRIC_RUN_TTFT: Final = "langgraph.run.time_to_first_token"
#: Histogram (s): caller's call to the first stream item of any mode handed to the
#: caller (streaming calls only; not under ``invoke()``/``ainvoke()``).
METRIC_RUN_TTFC: Final = "langgraph.run.time_to_first_chunk"
#: Histogram (s): one graph run.
METRIC_RUN_DURATION: Final = "langgraph.run.duration"
#: Histogram (s): one node task.
METRIC_TASK_DURATION: Final = "langgraph.task.duration"
#: Up-down counter ({run}): runs in flight.
METRIC_RUNS_ACTIVE: Final = "langgraph.runs.active"
#: Histogram (s): per run, total time the graph waited for the caller.
METRIC_CONSUMER_WAIT: Final = "langgraph.stream.consumer_wait"
#: Counter: telemetry failures lg_otel swallowed, by ``component``.
METRIC_INTERNAL_ERRORS: Final = "lg_otel.internal_errors"

#: Metric label: GenAI operation.
LABEL_OPERATION: Final = "gen_ai.operation.name"
#: Metric label: provider.
LABEL_PROVIDER: Final = "gen_ai.provider.name"
#: Metric label: requested model.
LABEL_MODEL: Final = "gen_ai.request.model"
#: Metric label: token type (``input`` or ``output``).
LABEL_TOKEN_TYPE: Final = "gen_ai.token.type"
#: Metric label: graph name.
LABEL_GRAPH: Final = "langgraph.graph"
#: Metric label: node name.
LABEL_NODE: Final = "langgraph.node"
#: Metric label: a task's subgraph path (``ATTR_NAMESPACE``; empty at the top level).
LABEL_NAMESPACE: Final = "langgraph.namespace"
#: Metric label: run or task status.
LABEL_STATUS: Final = "langgraph.status"
#: Metric label: error type on failed model calls.
LABEL_ERROR_TYPE: Final = "error.type"
#: Metric label: lg_otel component that failed.
LABEL_COMPONENT: Final = "component"
#: Label value for anything over the cardinality cap, and for unknown values.
LABEL_OTHER: Final = "other"

#: Duration buckets (s), from the GenAI semantic conventions.
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
#: Token-count buckets: powers of 4 from 1 (semantic conventions).
TOKEN_BUCKETS: Final = tuple(float(4**i) for i in range(14))
#: Token-rate buckets (tokens/s): 1 to 2048, doubling.
TOKEN_RATE_BUCKETS: Final = tuple(float(2**i) for i in range(12))

# --- content capture and settings ---------------------------------------------

#: Capture mode: no content anywhere (the default).
CAPTURE_NO_CONTENT: Final = "NO_CONTENT"
#: Capture mode: content as span attributes.
CAPTURE_SPAN_ONLY: Final = "SPAN_ONLY"
#: Capture mode: content as span events only.
CAPTURE_EVENT_ONLY: Final = "EVENT_ONLY"
#: Capture mode: content as span attributes and span events.
CAPTURE_SPAN_AND_EVENT: Final = "SPAN_AND_EVENT"
#: Span event carrying captured content (GenAI semconv event name).
EVENT_CONTENT: Final = "gen_ai.client.inference.operation.details"
#: Tool call arguments (JSON), only when content capture is on.
ATTR_TOOL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
#: Tool call result, only when content capture is on.
ATTR_TOOL_RESULT: Final = "gen_ai.tool.call.result"

#: Environment variable: truncation length of captured content (characters).
ENV_MAX_CONTENT_LENGTH: Final = "LG_OTEL_MAX_CONTENT_LENGTH"
#: Environment variable: emit structlog events (true/false).
ENV_LOGS: Final = "LG_OTEL_LOGS"
#: Environment variable: record metrics (true/false).
ENV_METRICS: Final = "LG_OTEL_METRICS"
#: Environment variable: cap of distinct node/model label values.
ENV_MAX_LABEL_VALUES: Final = "LG_OTEL_MAX_LABEL_VALUES"
#: Environment variable: record ``gen_ai.client.operation.time_per_output_chunk``
#: once per chunk (true/false; default false: it costs more than the per-chunk budget).
ENV_PER_CHUNK_METRICS: Final = "LG_OTEL_PER_CHUNK_METRICS"

# --- log events (structlog event names; logger name is SCOPE_NAME) ---------------

#: A run began (debug).
LOG_RUN_START: Final = "run.start"
#: A run ended (info; error level with the exception when it failed).
LOG_RUN_END: Final = "run.end"
#: A run paused on interrupt() (info).
LOG_RUN_INTERRUPT: Final = "run.interrupt"
#: A node task began (debug).
LOG_TASK_START: Final = "task.start"
#: A node task ended (debug; error level with the exception when it failed).
LOG_TASK_END: Final = "task.end"
#: A model call produced its first chunk (debug).
LOG_LLM_FIRST_TOKEN: Final = "llm.first_token"
#: A model call ended (info), with tokens, tokens/s and ttft.
LOG_LLM_END: Final = "llm.end"
#: A tool call ended (debug; error level when it failed).
LOG_TOOL_END: Final = "tool.end"

# --- metric units, label values (appended with the metrics sink) ------------------

#: Unit of duration instruments (Prometheus: ``_seconds`` suffix).
UNIT_SECONDS: Final = "s"
#: Unit of token-count instruments (annotation only: no Prometheus suffix).
UNIT_TOKEN: Final = "{token}"
#: Unit of token-rate instruments (Prometheus: ``per_second``, already in the name).
UNIT_TOKEN_RATE: Final = "{token}/s"
#: Unit of the runs-in-flight instrument (annotation only).
UNIT_RUN: Final = "{run}"
#: Unit of the internal-errors counter (annotation only).
UNIT_ERROR: Final = "{error}"
#: ``gen_ai.token.type`` value of prompt tokens.
TOKEN_TYPE_INPUT: Final = "input"
#: ``gen_ai.token.type`` value of completion tokens.
TOKEN_TYPE_OUTPUT: Final = "output"
#: Label value for a provider, model or node lg_otel could not learn.
LABEL_UNKNOWN: Final = "unknown"
#: ``error.type`` of a failure without an exception object (semconv fallback).
ERROR_TYPE_OTHER: Final = "_OTHER"
#: Exemplar label carrying the trace id (32 hex) of the span an observation describes.
EXEMPLAR_TRACE_ID: Final = "trace_id"
#: Exemplar label carrying the span id (16 hex) of the span an observation describes.
EXEMPLAR_SPAN_ID: Final = "span_id"

#: Environment variable: persist resume links in checkpoint metadata (true/false).
ENV_PERSIST_LINKS: Final = "LG_OTEL_PERSIST_LINKS"
#: Checkpoint-metadata key (via ``configurable``) holding the run span's traceparent.
CHECKPOINT_LINK_KEY: Final = "lg_otel_traceparent"

# --- log fields (keys of structlog events that carry a decision, not a record) -----

#: Log field on ``run.end`` of a failed run: node name of the task whose exception
#: ended the run (its ``task.end`` carries the traceback).
FIELD_FAILED_NODE: Final = "failed_node"
#: Log field on ``run.end`` of a failed run: task id of that task.
FIELD_FAILED_TASK_ID: Final = "failed_task_id"
#: Log field on every failure event: qualified class name of the exception
#: (``_OTHER`` when there is no exception object), as ``error.type`` on spans.
FIELD_ERROR_TYPE: Final = "error.type"
#: Log field holding the exception; structlog renders its traceback. Set on the
#: first event of a run that reports a given exception, never repeated.
FIELD_EXC_INFO: Final = "exc_info"

# --- zero-code instrumentation and OTel log records (issue 15) --------------------

#: Name of lg_otel's ``opentelemetry_instrumentor`` entry point: what
#: ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` takes to switch zero-code tracing off.
INSTRUMENTOR_NAME: Final = "lg_otel"
#: Environment variable: also send lg_otel's log events as OpenTelemetry log records
#: (through the global logger provider, or the one given to ``instrument()``).
ENV_OTLP_LOGS: Final = "LG_OTEL_OTLP_LOGS"
#: Log-record attribute: the message of the exception a failure event carries
#: (with ``ATTR_EXCEPTION_TYPE``, the OTel semantic conventions' exception keys).
ATTR_EXCEPTION_MESSAGE: Final = "exception.message"
#: Log-record attribute: the exception's formatted traceback.
ATTR_EXCEPTION_STACKTRACE: Final = "exception.stacktrace"

# --- checkpointer and store calls ---------------------------------------------------

#: Span name prefix of one checkpointer call: ``checkpoint {operation}``.
SPAN_CHECKPOINT: Final = "checkpoint"
#: Span name prefix of one long-term store call: ``store {operation}``.
SPAN_STORE: Final = "store"
#: The checkpointer method called, without its ``a`` prefix (``put``, ``get_tuple``...).
ATTR_CHECKPOINT_OPERATION: Final = "langgraph.checkpoint.operation"
#: Class name of the checkpointer (``PostgresSaver``, ``InMemorySaver``...).
ATTR_CHECKPOINT_SAVER: Final = "langgraph.checkpoint.saver"
#: Number of writes a ``put_writes`` call saves.
ATTR_CHECKPOINT_WRITES: Final = "langgraph.checkpoint.writes"
#: The store method called, without its ``a`` prefix (``get``, ``search``...).
ATTR_STORE_OPERATION: Final = "langgraph.store.operation"
#: Class name of the store (``InMemoryStore``, ``PostgresStore``...).
ATTR_STORE_CLASS: Final = "langgraph.store.class"
#: Items a ``search`` or ``list_namespaces`` call returned.
ATTR_STORE_RESULTS: Final = "langgraph.store.results"
#: Span event of a failed checkpointer or store call (semconv ``exception`` event).
EVENT_EXCEPTION: Final = "exception"
#: ``exception`` event attribute: the exception's qualified class name. The only
#: attribute such an event carries: a driver's message can quote keys and values.
ATTR_EXCEPTION_TYPE: Final = "exception.type"

#: Checkpointer methods that get a span and an observation (each also as its
#: ``a``-prefixed async twin); the label values of ``langgraph_checkpoint_operation``.
#: Other attributes (``get_next_version``, ``serde``, ``setup``...) pass through.
CHECKPOINT_OPERATIONS: Final = (
    "get",
    "get_tuple",
    "list",
    "put",
    "put_writes",
    "delete_thread",
    "delete_for_runs",
    "copy_thread",
    "prune",
    "get_delta_channel_history",
)
#: Store methods that get a span and an observation (and their async twins); the
#: label values of ``langgraph_store_operation``.
STORE_OPERATIONS: Final = ("get", "search", "put", "delete", "list_namespaces", "batch")
#: Store operations whose result count goes to ``langgraph.store.results``.
STORE_COUNTED_OPERATIONS: Final = ("search", "list_namespaces")

#: Histogram (s): one checkpointer call.
METRIC_CHECKPOINT_DURATION: Final = "langgraph.checkpoint.duration"
#: Histogram (s): one long-term store call.
METRIC_STORE_DURATION: Final = "langgraph.store.duration"
#: Metric label: checkpointer operation.
LABEL_CHECKPOINT_OPERATION: Final = "langgraph.checkpoint.operation"
#: Metric label: checkpointer class name.
LABEL_CHECKPOINT_SAVER: Final = "langgraph.checkpoint.saver"
#: Metric label: store operation.
LABEL_STORE_OPERATION: Final = "langgraph.store.operation"
#: Buckets (s) of checkpointer and store calls: 0.5 ms doubling to 8.192 s. A local
#: call takes well under the 10 ms first bucket of ``DURATION_BUCKETS``.
CALL_DURATION_BUCKETS: Final = (
    0.0005,
    0.001,
    0.002,
    0.004,
    0.008,
    0.016,
    0.032,
    0.064,
    0.128,
    0.256,
    0.512,
    1.024,
    2.048,
    4.096,
    8.192,
)
#: Internal-error component: the per-run checkpointer and store views.
COMPONENT_SAVERS: Final = "savers"
