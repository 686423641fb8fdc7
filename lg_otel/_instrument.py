"""``instrument()``: validate the arguments, wire the sinks, make the traced graph."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import structlog
from langgraph.pregel import Pregel
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from lg_otel import _names as n
from lg_otel._batch import Batch
from lg_otel._config import Config
from lg_otel._configure import otlp_logs_level
from lg_otel._content import ContentPolicy
from lg_otel._guard import FanOut, InternalErrors
from lg_otel._hook import RunHook
from lg_otel._logs import LogSink
from lg_otel._metrics import MetricsSink
from lg_otel._otel_logs import OtelLogSink
from lg_otel._records import NullSink, RunRecord, Sink
from lg_otel._spans import (
    InterruptLinks,
    SpanBinder,
    SpanSink,
    current_context,
    parse_traceparent,
    traceparent_of,
)
from lg_otel._tap import (
    AnyGraph,
    Instrumentation,
    instrumented_copy,
    is_instrumented,
    monotonic_ns,
)
from lg_otel._tracker import RunTracker

try:
    _VERSION = version("lg_otel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0"

#: Whether a run's sinks hear of its checkpointer and store calls from the span
#: batch, after each call ended (the default: the cheaper path, see
#: ``RunTracker``'s ``defer_calls``), or during each call. The test suite runs
#: its checkpoint and store tests on both.
DEFER_CALLS = True

#: A compiled graph's type: ``instrument()`` gives back the type it was given (the
#: copy is an instance of a subclass of the graph's own class), so a typed caller's
#: ``invoke()``/``stream()`` keep their state, input and output types.
GraphT = TypeVar("GraphT", bound=Pregel[Any, Any, Any, Any])


class _ActiveRuns(NullSink):
    """Counts runs in flight (tests assert it returns to zero)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def run_started(self, run: RunRecord) -> None:
        with self._lock:
            self.count += 1

    def run_ended(self, run: RunRecord) -> None:
        with self._lock:
            self.count -= 1


class GraphInstrumentation(Instrumentation):
    """The telemetry wiring of one ``instrument()`` call (shared by derived graphs)."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: Any = None,
        registry: Any = None,
        config: Config,
        clock: Callable[[], int] = monotonic_ns,
        logger_provider: Any = None,
    ) -> None:
        """Build the sinks once; every run of the graph feeds them."""
        self.clock = clock
        # logs=None after resolve(): neither Config(logs=...) nor LG_OTEL_LOGS said,
        # so each run follows structlog as configured when that run starts.
        self.config = config = config.resolve(logs=None)
        self.persist_links = bool(config.persist_links)
        self.errors = InternalErrors()
        assert config.capture_content is not None
        assert config.max_content_length is not None
        self.policy = ContentPolicy(
            config.capture_content,
            config.max_content_length,
            config.redact,
            lambda exc: self.errors.record(n.COMPONENT_CONTENT, exc),
        )
        tracer = trace.get_tracer(
            n.SCOPE_NAME,
            _VERSION,
            tracer_provider=tracer_provider,
            schema_url=n.SCHEMA_URL,
        )
        self.links = InterruptLinks(config.max_interrupted_threads)
        self.active = _ActiveRuns()
        self._span_batch = Batch(lambda exc: self.errors.record(n.COMPONENT_SPANS, exc))
        spans = SpanSink(
            tracer,
            self._read_clock,
            content_on_spans=self.policy.spans,
            content_as_events=self.policy.events,
            provider=tracer_provider,
            batch=self._span_batch,
        )
        # The spans sink runs first: the others read the span it stores on records.
        sinks: list[tuple[Sink, str]] = [
            (spans, n.COMPONENT_SPANS),
            (self.links, n.COMPONENT_SPANS),
        ]
        self.metrics: MetricsSink | None = None
        if config.metrics:
            self.metrics = MetricsSink(
                meter_provider=meter_provider,
                registry=registry if registry is not False else None,
                use_prometheus=registry is not False,
                max_label_values=config.max_label_values or 200,
                per_chunk_metrics=bool(config.per_chunk_metrics),
                on_error=self.errors.record,
            )
            sinks.append((self.metrics, n.COMPONENT_METRICS))
            self.errors.add_listener(self.metrics.count_internal_error)
        otel_logs = _otel_log_sink(logger_provider, config.otlp_logs)
        if otel_logs is not None:
            # In both fan-outs: OTel log records do not depend on structlog.
            sinks.append((otel_logs, n.COMPONENT_LOGS))
        # Two fan-outs built once, so the per-run logs decision is a choice between
        # them and a run without logs pays nothing per task for the log sink.
        quiet = [*sinks, (self.active, n.COMPONENT_METRICS)]
        logged = [*sinks, (LogSink(), n.COMPONENT_LOGS), quiet[-1]]
        self._quiet_sink = FanOut(quiet, self.errors)
        self._logged_sink = FanOut(logged, self.errors)
        self._logs: bool | None = config.logs
        self._binder = SpanBinder()

    def flush(self) -> None:
        """Hand on every batched span and observation now (a run's end does this
        for its own; see :mod:`lg_otel._batch`)."""
        self._span_batch.flush()
        if self.metrics is not None:
            self.metrics.flush()

    def run_sink(self) -> FanOut:
        """The sinks of a run starting now: with logs if they are on at this moment.

        Unless ``Config(logs=...)`` or ``LG_OTEL_LOGS`` decided, logs are on when
        structlog is configured as the run starts (``structlog.configure()`` or
        ``structlog.testing.capture_logs()``), however late that came.
        """
        logs = self._logs
        if logs is None:
            # One attribute read in structlog; it sees configure(), capture_logs()
            # (which calls configure()) and reset_defaults().
            logs = structlog.is_configured()
        return self._logged_sink if logs else self._quiet_sink

    def traceparent(self, run: RunRecord) -> str | None:
        """The run span's traceparent, to persist in checkpoint metadata."""
        return traceparent_of(run)

    def _read_clock(self) -> int:
        return self.clock()

    def current_context(self) -> object:
        """The caller's current trace context."""
        return current_context()

    def call_binder(self) -> SpanBinder:
        """Makes checkpoint and store spans current during their calls."""
        return self._binder

    def record_error(self, component: str, error: BaseException) -> None:
        """Count a swallowed telemetry failure."""
        self.errors.record(component, error)

    def graph_name(self, graph: AnyGraph) -> str:
        """The name used in span names and labels."""
        if self.config.graph_name:
            return self.config.graph_name
        name = graph.get_name()
        return name if isinstance(name, str) and name else n.DEFAULT_GRAPH_NAME

    def new_run(
        self,
        graph: AnyGraph,
        config: dict[str, Any],
        parent: object,
        stream_has_subgraphs: bool,
        stored_link: object = None,
        stream_tasks: bool = True,
    ) -> tuple[RunTracker, RunHook]:
        """Start tracking one run of ``graph``.

        ``stream_tasks``: the run's stream includes the ``tasks`` mode (see
        ``RunTracker``).

        ``stored_link`` is the traceparent found in the thread's checkpoint metadata
        (``persist_links``); the in-memory link of this process wins over it.
        """
        thread = (config.get("configurable") or {}).get("thread_id")
        thread_id = str(thread) if thread is not None else None
        links = self.links.links_for(thread_id)
        if not links and stored_link is not None:
            stored = parse_traceparent(stored_link)
            links = (stored,) if stored is not None else ()
        tracker = RunTracker(
            self.run_sink(),
            self.clock,
            graph=self.graph_name(graph),
            thread_id=thread_id,
            parent=parent,
            links=links,
            stream_has_subgraphs=stream_has_subgraphs,
            stream_tasks=stream_tasks,
            on_clock_error=lambda exc: self.errors.record(n.COMPONENT_PARSE, exc),
            # Gaps are kept only for a sink that records them.
            per_chunk=self.metrics is not None and bool(self.config.per_chunk_metrics),
            # Where the writes handed to the checkpointer are read: with the spans.
            batch=self._span_batch,
            defer_calls=DEFER_CALLS,
        )
        return tracker, RunHook(tracker, self._binder, self.errors.record, self.policy)


def _otel_log_sink(logger_provider: Any, otlp_logs: bool | None) -> OtelLogSink | None:
    """The OTel logs sink, if asked for (see ``Config.otlp_logs``), else None.

    A logger provider given to ``instrument()`` gets every event (its own pipeline
    filters by severity); the global one gets those at ``configure()``'s
    ``log_level`` and above when ``configure(otlp_logs=...)`` turned it on.
    """
    if otlp_logs is False:
        return None
    if logger_provider is not None:
        return OtelLogSink(logger_provider)
    level = otlp_logs_level()
    if otlp_logs or level is not None:
        return OtelLogSink(None, level or "debug")
    return None


def _check_graph(graph: object) -> None:
    if isinstance(graph, Pregel):
        return
    from langgraph.graph import StateGraph  # local: only for the error message

    if isinstance(graph, StateGraph):
        raise TypeError(
            "instrument(graph): got an uncompiled StateGraph; "
            "call .compile() first and pass the compiled graph"
        )
    raise TypeError(
        "instrument(graph): expected a compiled LangGraph graph (a Pregel, e.g. "
        f"builder.compile() or create_react_agent(...)), got {type(graph).__name__}"
    )


def instrument(
    graph: GraphT,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: Any = None,
    registry: Any = None,
    config: Config | None = None,
    logger_provider: Any = None,
) -> GraphT:
    """Return a traced copy of a compiled LangGraph graph.

    The copy is an instance of (a subclass of) the graph's own class, so it is still
    served by ``langgraph dev``, usable as a subgraph, ``with_config``'d (derived
    graphs stay traced) and so on. The original graph is left untouched.
    Instrumenting an instrumented graph warns and returns it unchanged.

    Args:
        graph: A compiled graph (``builder.compile()``).
        tracer_provider: Where spans go; the global provider when None.
        meter_provider: Where OpenTelemetry metrics go; the global provider when None.
        registry: The ``prometheus_client`` registry metrics are registered in;
            ``prometheus_client.REGISTRY`` when None, no prometheus_client path
            when False (for example when OTel metrics already reach Prometheus).
        config: Behaviour settings; defaults when None.
        logger_provider: An OpenTelemetry ``LoggerProvider``: also emit every log
            event as an OTel log record there (see ``Config.otlp_logs``).

    Returns:
        The instrumented graph, typed as ``graph`` is.

    Raises:
        TypeError: ``graph`` is not a compiled graph, or an argument has the wrong type.
        ValueError: ``registry`` already holds a conflicting metric of the same name.
    """
    _check_graph(graph)
    if is_instrumented(graph):
        warnings.warn(
            "instrument(graph): this graph is already instrumented; "
            "returning it unchanged",
            stacklevel=2,
        )
        return graph
    if config is None:
        config = Config()
    elif not isinstance(config, Config):
        raise TypeError(
            "instrument(config=...): expected lg_otel.Config, "
            f"got {type(config).__name__}"
        )
    if tracer_provider is not None and not hasattr(tracer_provider, "get_tracer"):
        raise TypeError(
            "instrument(tracer_provider=...): expected an OpenTelemetry "
            "TracerProvider, "
            f"got {type(tracer_provider).__name__}"
        )
    if meter_provider is not None and not hasattr(meter_provider, "get_meter"):
        raise TypeError(
            "instrument(meter_provider=...): expected an OpenTelemetry MeterProvider, "
            f"got {type(meter_provider).__name__}"
        )
    if (
        registry is not None
        and registry is not False
        and not isinstance(registry, CollectorRegistry)
    ):
        raise TypeError(
            "instrument(registry=...): expected a prometheus_client.CollectorRegistry "
            "(or False to skip the prometheus_client path), "
            f"got {type(registry).__name__}"
        )
    if logger_provider is not None and not hasattr(logger_provider, "get_logger"):
        raise TypeError(
            "instrument(logger_provider=...): expected an OpenTelemetry "
            f"LoggerProvider, got {type(logger_provider).__name__}"
        )
    instr = GraphInstrumentation(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        registry=registry,
        config=config,
        logger_provider=logger_provider,
    )
    return instrumented_copy(graph, instr)
