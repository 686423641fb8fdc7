"""The metrics sink: turns tracker records into OpenTelemetry and Prometheus metrics.

The only module that touches ``opentelemetry.metrics`` and ``prometheus_client``. Each
instrument is recorded on two paths with one naming: an OTel meter (pushed through
OTLP, say) and ``prometheus_client`` metrics in a registry (scraped from ``/metrics``).
The Prometheus names are what OTel's Prometheus translation makes of the OTel names, so
one set of PromQL works for both.

Histogram observations carry the span they describe: as the OTel ``context`` (the SDK
turns it into an exemplar) and as a ``prometheus_client`` exemplar (OpenMetrics
exposition only). Under prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``) the values are aggregated across workers but exemplars
are dropped, and ``langgraph_runs_active`` follows the Gauge's default mode (one series
per worker pid).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from time import monotonic_ns
from typing import Any

import prometheus_client
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.values import MutexValue

from lg_otel import _names as n
from lg_otel._batch import Batch
from lg_otel._histograms import ManyRecorder, Recorder, can_bind, recorders
from lg_otel._records import SPAN_CONTEXT_SLOT as _CTX
from lg_otel._records import SPAN_SLOT as _SPAN
from lg_otel._records import (
    CheckpointRecord,
    LlmRecord,
    NullSink,
    RunRecord,
    StoreRecord,
    TaskRecord,
)
from lg_otel._spanpath import EndedSpan, RecordedSpan
from lg_otel._spans import error_type

try:
    _VERSION = version("lg_otel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0"

_ACTIVE = "metrics_active"  # set once this run counted in runs.active
_log = logging.getLogger("lg_otel")
# Not the caller's current context, which may hold an unrelated span: the SDK
# takes an empty context for none at all and falls back to the current one.
_NO_SPAN = trace.set_span_in_context(trace.INVALID_SPAN, Context())
#: lg_otel's own span types, whose context is their ``_ctx``.
_OWN_SPANS = frozenset({RecordedSpan, EndedSpan})
_SAMPLED = int(trace.TraceFlags.SAMPLED)

# What OTel's Prometheus translation appends for a unit; annotations add nothing.
_PROM_UNIT = {n.UNIT_SECONDS: "seconds", n.UNIT_TOKEN_RATE: "per_second"}


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    unit: str
    labels: tuple[str, ...]
    description: str
    buckets: tuple[float, ...] = n.DURATION_BUCKETS
    kind: type[MetricWrapperBase] = prometheus_client.Histogram


_S, _G = n.UNIT_SECONDS, (n.LABEL_GRAPH,)
_LLM = (n.LABEL_OPERATION, n.LABEL_PROVIDER, n.LABEL_MODEL, n.LABEL_GRAPH, n.LABEL_NODE)
_TTFC = _Spec(n.METRIC_TTFC, _S, _LLM, "Model call start to first chunk.")
_TPOC = _Spec(n.METRIC_TIME_PER_CHUNK, _S, _LLM, "Time from one chunk to the next.")
_LLM_TPOC = _Spec(
    n.METRIC_LLM_TIME_PER_CHUNK, _S, _LLM, "Mean gap between chunks of a call."
)
_MAX_GAP = _Spec(
    n.METRIC_LLM_MAX_CHUNK_GAP, _S, _LLM, "Largest gap between chunks of a call."
)
_LLM_DURATION = _Spec(
    n.METRIC_LLM_DURATION, _S, (*_LLM, n.LABEL_ERROR_TYPE), "Model call duration."
)
_TOKENS = _Spec(
    n.METRIC_TOKEN_USAGE, n.UNIT_TOKEN, (*_LLM, n.LABEL_TOKEN_TYPE),
    "Provider-reported tokens of a model call.", n.TOKEN_BUCKETS,
)  # fmt: skip
_RATE = _Spec(
    n.METRIC_TOKENS_PER_SECOND, n.UNIT_TOKEN_RATE, _LLM,
    "Output tokens per second of a model call.", n.TOKEN_RATE_BUCKETS,
)  # fmt: skip
_RUN_TTFT = _Spec(n.METRIC_RUN_TTFT, _S, _G, "Run start to first token out.")
_RUN_TTFC = _Spec(n.METRIC_RUN_TTFC, _S, _G, "Streaming call to first item out.")
_RUN_DURATION = _Spec(n.METRIC_RUN_DURATION, _S, (*_G, n.LABEL_STATUS), "Graph run.")
_TASK_DURATION = _Spec(
    n.METRIC_TASK_DURATION, _S,
    (*_G, n.LABEL_NODE, n.LABEL_NAMESPACE, n.LABEL_STATUS), "Node task run.",
)  # fmt: skip
_WAIT = _Spec(n.METRIC_CONSUMER_WAIT, _S, _G, "Run time spent waiting on the caller.")
_ACTIVE_RUNS = _Spec(
    n.METRIC_RUNS_ACTIVE, n.UNIT_RUN, _G, "Runs in flight.", (), prometheus_client.Gauge
)
_ERRORS = _Spec(
    n.METRIC_INTERNAL_ERRORS, n.UNIT_ERROR, (n.LABEL_COMPONENT,),
    "Telemetry failures lg_otel swallowed.", (), prometheus_client.Counter,
)  # fmt: skip

_CHECKPOINT_DURATION = _Spec(
    n.METRIC_CHECKPOINT_DURATION, _S,
    (n.LABEL_GRAPH, n.LABEL_CHECKPOINT_OPERATION, n.LABEL_CHECKPOINT_SAVER,
     n.LABEL_STATUS),
    "One checkpointer call.", n.CALL_DURATION_BUCKETS,
)  # fmt: skip
_STORE_DURATION = _Spec(
    n.METRIC_STORE_DURATION, _S,
    (n.LABEL_GRAPH, n.LABEL_STORE_OPERATION, n.LABEL_STATUS),
    "One long-term store call.", n.CALL_DURATION_BUCKETS,
)  # fmt: skip

#: Every instrument lg_otel records (the README and deploy/ tests read this too).
SPECS = (
    _TTFC,
    _TPOC,
    _LLM_TPOC,
    _MAX_GAP,
    _LLM_DURATION,
    _TOKENS,
    _RATE,
    _RUN_TTFT,
    _RUN_TTFC,
    _RUN_DURATION,
    _TASK_DURATION,
    _ACTIVE_RUNS,
    _WAIT,
    _ERRORS,
    _CHECKPOINT_DURATION,
    _STORE_DURATION,
)

_REGISTER_LOCK = threading.Lock()


def prometheus_name(spec: _Spec) -> str:
    """The Prometheus family name OTel's translation gives ``spec`` (no ``_total``)."""
    name = spec.name.replace(".", "_")
    suffix = _PROM_UNIT.get(spec.unit)
    return f"{name}_{suffix}" if suffix and not name.endswith(suffix) else name


def _prometheus_metric(
    spec: _Spec, registry: prometheus_client.CollectorRegistry
) -> Any:
    # The same process may build sinks on one registry many times (the LangGraph
    # API server re-executes the graph module): reuse what matches, refuse the rest.
    name = prometheus_name(spec)
    labels = tuple(key.replace(".", "_") for key in spec.labels)
    histogram = spec.kind is prometheus_client.Histogram
    buckets = [*map(float, spec.buckets), float("inf")]
    fix = "unregister it, or pass instrument() its own registry=CollectorRegistry()"
    with _REGISTER_LOCK:
        existing = registry._names_to_collectors.get(name)
        if existing is not None:
            same = type(existing) is spec.kind and (
                getattr(existing, "_labelnames", None) == labels
                and (not histogram or getattr(existing, "_upper_bounds", 0) == buckets)
            )
            if not same:
                raise ValueError(
                    f"lg_otel: the Prometheus registry already holds a different "
                    f"metric named {name!r} ({type(existing).__name__}); {fix}"
                )
            return existing
        extra: dict[str, Any] = {"buckets": buckets} if histogram else {}
        try:
            return spec.kind(
                name,
                spec.description,
                labels,
                unit=_PROM_UNIT.get(spec.unit, ""),
                registry=registry,
                **extra,
            )
        except ValueError as exc:  # a clash on a derived name (``_count``...)
            raise ValueError(
                f"lg_otel: cannot register {name!r}: {exc}; {fix}"
            ) from exc


def _otel_instrument(spec: _Spec, meter: metrics.Meter) -> Any:
    if spec.kind is prometheus_client.Gauge:
        return meter.create_up_down_counter(spec.name, spec.unit, spec.description)
    if spec.kind is prometheus_client.Counter:
        return meter.create_counter(spec.name, spec.unit, spec.description)
    return meter.create_histogram(
        spec.name,
        spec.unit,
        spec.description,
        explicit_bucket_boundaries_advisory=list(spec.buckets),
    )


#: At most one exemplar per histogram bucket and label set in this time. A bucket
#: shows only its newest exemplar (prometheus_client keeps one per bucket; the OTel
#: SDK's aligned reservoir one per bucket per collection), and attaching one costs
#: more than the observation itself, so replacing it thousands of times between
#: two scrapes bought nothing.
EXEMPLAR_INTERVAL_NS = 1_000_000_000
_INF = float("inf")


class _Child:
    """One label set of one instrument: its OTel attributes, its prometheus_client
    child, and when each bucket last got an exemplar."""

    __slots__ = (
        "attrs",
        "exemplar_ns",
        "prom",
        "prom_buckets",
        "prom_sum",
        "prom_total",
        "record",
        "record_many",
    )

    def __init__(
        self,
        attrs: Mapping[str, str],
        prom: Any,
        bounds: tuple[float, ...],
        record: tuple[Recorder, ManyRecorder] | None = None,
    ) -> None:
        self.attrs = attrs
        self.prom = prom
        #: Records one observation on the OTel histogram (None: no OTel path),
        #: and many that make no exemplar at once.
        self.record: Recorder | None = None
        self.record_many: ManyRecorder | None = None
        if record is not None:
            self.record, self.record_many = record
        self.exemplar_ns = [-EXEMPLAR_INTERVAL_NS] * (len(bounds) + 1)
        # What a labelled prometheus_client histogram child's observe() updates,
        # so a plain observation skips its per-call checks (always true for a
        # labelled child). None: another release, or not a histogram: observe().
        self.prom_sum: Any = None
        self.prom_buckets: Any = None
        #: The child's sum as the value prometheus_client keeps it in one process
        #: (a float under a lock), for many observations under one hold of it;
        #: None: each through prom_sum (multiprocess mode, another release).
        self.prom_total: Any = None
        upper = getattr(prom, "_upper_bounds", None)
        if upper is not None and tuple(upper) == (*bounds, _INF):
            try:
                self.prom_sum = prom._sum.inc
                self.prom_buckets = tuple(b.inc for b in prom._buckets)
            except AttributeError:  # another release: the public observe()
                self.prom_sum = self.prom_buckets = None
            else:
                total = prom._sum
                if type(total) is MutexValue and hasattr(total, "_value"):
                    self.prom_total = total


class _Series:
    """One instrument on both paths; each label set resolved once."""

    __slots__ = (
        "__weakref__",
        "_bound",
        "_bounds",
        "_children",
        "_keys",
        "_otel",
        "_pending",
        "_prom",
        "_target",
        "held",
        "held_queued",
    )

    def __init__(
        self,
        spec: _Spec,
        meter: metrics.Meter | None,
        registry: Any,
        provider: object = None,
    ) -> None:
        """``provider``: the meter's provider (whether histograms may be bound)."""
        self._keys = spec.labels
        self._bounds = tuple(map(float, spec.buckets))
        self._otel = _otel_instrument(spec, meter) if meter is not None else None
        #: The instrument observations go to: the SDK's own once a proxy has one.
        self._target = self._otel
        self._bound = self._otel is not None and can_bind(provider, self._otel)
        # A histogram of the global meter provider made before the application set
        # one is the API's proxy: it may be bound once the proxy has a real one.
        self._pending = (
            not self._bound
            and self._otel is not None
            and hasattr(self._otel, "record")
            and hasattr(self._otel, "_real_instrument")
        )
        self._prom = (
            _prometheus_metric(spec, registry) if registry is not None else None
        )
        self._children: dict[tuple[str, ...], _Child] = {}
        #: ``(child, value, span, ctx)``: :meth:`observe_child` later, by
        #: :meth:`observe_held`, with the other observations held until then.
        #: Whoever appends one makes sure an ``observe_held()`` is queued once
        #: :attr:`held_queued` is false.
        self.held: deque[tuple[_Child, float, Any, Context | None]] = deque()
        #: An observe_held() is queued that will record what is held now.
        self.held_queued = False
        _HOLDING.add(self)

    def child(self, labels: tuple[str, ...]) -> _Child:
        """The resolved label set ``labels`` (values in the spec's label order)."""
        child = self._children.get(labels)
        if child is None:
            # An empty value is an absent label, as in Prometheus (``error.type``).
            attrs = {k: v for k, v in zip(self._keys, labels, strict=True) if v}
            prom = self._prom.labels(*labels) if self._prom is not None else None
            record = None
            if self._target is not None and hasattr(self._target, "record"):
                record = recorders(self._target, attrs, self._bound, self._bounds)
            child = _Child(attrs, prom, self._bounds, record)
            # setdefault: two threads resolving it at once share one.
            child = self._children.setdefault(labels, child)
        return child

    def rebind(self, provider: object) -> bool:
        """Bind a proxy histogram whose real one ``provider`` made; True once done.

        Label sets resolved before switch to the real histogram too (the proxy
        would forward each observation to it through ``record()``).
        """
        if not self._pending:
            return True
        real = getattr(self._otel, "_real_instrument", None)
        if real is None:
            return False
        self._pending = False
        if can_bind(provider, real):
            self._target, self._bound = real, True
            for child in list(self._children.values()):
                child.record, child.record_many = recorders(
                    real, child.attrs, True, self._bounds
                )
        return True

    def observe(
        self,
        labels: tuple[str, ...],
        value: float,
        span: Any | None,
        ctx: Context | None = None,
    ) -> None:
        """Record ``value`` (clamped to >= 0) with the span as exemplar."""
        child = self._children.get(labels)
        self.observe_child(
            child if child is not None else self.child(labels), value, span, ctx
        )

    def observe_child(
        self, child: _Child, value: float, span: Any | None, ctx: Context | None
    ) -> None:
        """Record ``value`` on a resolved label set.

        A sampled ``span`` becomes the bucket's exemplar on both paths, at most once
        per ``EXEMPLAR_INTERVAL_NS``; ``ctx`` is a context already holding it (the
        task's), to reuse.
        """
        if value < 0:
            value = 0.0
        exemplar = None
        bucket = -1
        if span is not None:
            # lg_otel's own span's context without the get_span_context() frame.
            span_ctx = (
                span._ctx if type(span) in _OWN_SPANS else span.get_span_context()
            )
            # The sampled bit first: unsampled spans are the common case under a
            # ratio sampler, and they never make an exemplar. (A SpanContext is a
            # tuple whose properties index it: [3] is trace_flags, [5] is_valid.)
            if (
                span_ctx[3] & _SAMPLED and span_ctx[5]
                if type(span_ctx) is SpanContext
                else span_ctx.trace_flags & _SAMPLED and span_ctx.is_valid
            ):
                bucket = bisect_left(self._bounds, value)
                now = monotonic_ns()
                if now - child.exemplar_ns[bucket] >= EXEMPLAR_INTERVAL_NS:
                    child.exemplar_ns[bucket] = now
                    exemplar = span_ctx
        record = child.record
        if record is not None:
            if exemplar is None:
                ctx = _NO_SPAN
            elif ctx is None and span is not None:
                ctx = trace.set_span_in_context(span, _NO_SPAN)
            record(value, ctx if ctx is not None else _NO_SPAN)
        prom = child.prom
        if prom is None:
            return
        if exemplar is None:
            buckets = child.prom_buckets
            # NaN and infinity take observe(): bisect and its loop differ there.
            if buckets is not None and value < _INF:
                child.prom_sum(value)
                buckets[bucket if bucket >= 0 else bisect_left(self._bounds, value)](1)
            else:
                prom.observe(value)
        else:
            prom.observe(
                value,
                {
                    n.EXEMPLAR_TRACE_ID: f"{exemplar.trace_id:032x}",
                    n.EXEMPLAR_SPAN_ID: f"{exemplar.span_id:016x}",
                },
            )

    def observe_held(self, _a: None = None, _b: None = None, _c: None = None) -> None:
        """Record every held observation (the unused arguments make it a batch's
        call), as :meth:`take` takes them, then the groups it made.

        Each is recorded exactly as :meth:`observe_child` would: the same
        buckets, sums (added in the same order), counts and exemplars.
        """
        # Cleared before reading on (as the batch's take_writes): what is held
        # after this, this reads or a new call is queued for.
        self.held_queued = False
        popleft = self.held.popleft
        now = monotonic_ns()
        plain: Groups = {}
        take = self.take
        try:
            while True:
                try:
                    child, value, span, ctx = popleft()
                except IndexError:
                    break
                take(plain, child, value, span, ctx, now)
        finally:
            observe_groups(plain)

    def take(
        self,
        plain: Groups,
        child: _Child,
        value: float,
        span: Any | None,
        ctx: Context | None,
        now: int,
    ) -> None:
        """One observation of many (``now``: when they are recorded): added to
        its label set's group in ``plain`` when it makes no exemplar, else
        recorded now, after what that group held (each sum in the same order).
        :func:`observe_groups` records the groups."""
        if 0.0 <= value < _INF:
            bucket = bisect_left(self._bounds, value)
            # observe_child()'s test for an exemplar (the bucket had none for
            # an interval, and the span is sampled), its cheaper half first:
            # a bucket in use had one less than an interval ago.
            sampled = False
            due = now - child.exemplar_ns[bucket] >= EXEMPLAR_INTERVAL_NS
            if due and span is not None:
                span_ctx = (
                    span._ctx if type(span) in _OWN_SPANS else span.get_span_context()
                )
                sampled = bool(
                    span_ctx[3] & _SAMPLED and span_ctx[5]
                    if type(span_ctx) is SpanContext
                    else span_ctx.trace_flags & _SAMPLED and span_ctx.is_valid
                )
            if not sampled:
                group = plain.get(id(child))
                if group is None:
                    plain[id(child)] = (child, [value], [bucket])
                else:
                    group[1].append(value)
                    group[2].append(bucket)
                return
        # One by one (an exemplar; a negative, infinite or NaN value).
        group = plain.pop(id(child), None)
        if group is not None:
            _observe_many(*group)
        self.observe_child(child, value, span, ctx)

    def add(self, labels: tuple[str, ...], amount: int) -> None:
        """Add ``amount`` (negative only on the up-down counter)."""
        child = self.child(labels)
        if self._otel is not None:
            self._otel.add(amount, child.attrs)
        if child.prom is not None:
            child.prom.inc(amount)


def _observe_many(child: _Child, values: list[float], buckets: list[int]) -> None:
    # Finite values >= 0 that make no exemplar, of one label set.
    many = child.record_many
    if many is not None:
        many(values, buckets, _NO_SPAN)
    prom = child.prom
    if prom is None:
        return
    inc = child.prom_buckets
    if inc is None:
        for value in values:
            prom.observe(value)
        return
    total = child.prom_total
    if total is None:
        add = child.prom_sum
        for value in values:
            add(value)
    else:
        # MutexValue.inc() for each, under one hold of its lock: the same float.
        with total._lock:
            value_sum = total._value
            for value in values:
                value_sum += value
            total._value = value_sum
    for bucket, count in Counter(buckets).items():
        inc[bucket](count)


#: Observations of one series grouped per label set: id(child) -> (child, values,
#: their bucket indices). A batch's calls share a few label sets.
Groups = dict[int, tuple[_Child, list[float], list[int]]]


def observe_groups(groups: Groups) -> None:
    """Record each group of :meth:`_Series.take` at once (and forget it)."""
    for child, values, buckets in groups.values():
        _observe_many(child, values, buckets)
    groups.clear()


#: Every series alive, so that a forked child starts with nothing held.
_HOLDING: weakref.WeakSet[_Series] = weakref.WeakSet()


def _forget_held_in_child() -> None:
    # As the batches' (lg_otel._batch): the parent records what it held, and the
    # child's batches start empty, so no observe_held() is queued in it.
    for series in list(_HOLDING):
        series.held.clear()
        series.held_queued = False


os.register_at_fork(after_in_child=_forget_held_in_child)


class _Cap:
    """Lets through at most ``limit`` distinct values; the rest become ``other``."""

    __slots__ = ("_limit", "_lock", "_seen")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:  # the hot path: no lock for a known value
            return value
        with self._lock:
            if value in self._seen or len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return n.LABEL_OTHER


def _seconds(start_ns: int | None, end_ns: int | None) -> float | None:
    if start_ns is None or end_ns is None:
        return None
    return (end_ns - start_ns) / 1e9


class MetricsSink(NullSink):
    """Records every instrument of the telemetry contract from the tracker's records.

    Run TTFT is recorded in :meth:`run_first_token` (the run span already exists),
    so it shows while a long stream is still running. Per model call:
    ``langgraph.llm.time_per_output_chunk`` (the mean gap between its chunks) and
    ``langgraph.llm.max_chunk_gap``; with ``per_chunk_metrics`` also the semconv's
    ``gen_ai.client.operation.time_per_output_chunk``, one observation per chunk
    after the first, recorded when the call ends.

    Node task durations, and the durations of a run's saver and store calls, are
    recorded in batches (:mod:`lg_otel._batch`): when their run ends, or at most
    ``FLUSH_INTERVAL_S`` after the task or call ended, whichever is first.
    """

    def __init__(
        self,
        *,
        meter_provider: metrics.MeterProvider | None = None,
        registry: prometheus_client.CollectorRegistry | None = None,
        use_otel: bool = True,
        use_prometheus: bool = True,
        max_label_values: int = 200,
        per_chunk_metrics: bool = False,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        """Create (or reuse) the instruments; raises ValueError on a name clash.

        Args:
            meter_provider: OTel meter provider; None means the global one.
            registry: prometheus_client registry; None means ``REGISTRY``.
            use_otel: Record on the OTel path.
            use_prometheus: Record on the prometheus_client path.
            max_label_values: Distinct node and model values kept per label.
            per_chunk_metrics: Record ``time_per_output_chunk`` once per chunk
                after the first, from the gaps the tracker kept
                (``LlmRecord.gaps``).
            on_error: ``on_error(component, exc)`` counts a batched observation
                that failed (None: this sink counts and logs it itself).
        """
        meter = provider = None
        if use_otel:
            provider = meter_provider
            if provider is None:  # what get_meter() below resolves it to
                provider = metrics.get_meter_provider()
            meter = metrics.get_meter(
                n.SCOPE_NAME,
                _VERSION,
                meter_provider=meter_provider,
                schema_url=n.SCHEMA_URL,
            )
        reg = None
        if use_prometheus:
            reg = registry if registry is not None else prometheus_client.REGISTRY

        def series(spec: _Spec) -> _Series:
            return _Series(spec, meter, reg, provider)

        self._ttfc, self._llm_duration, self._tokens, self._rate = (
            series(spec) for spec in (_TTFC, _LLM_DURATION, _TOKENS, _RATE)
        )
        # Per chunk only when opted in; otherwise the name is not even registered.
        self._tpoc = series(_TPOC) if per_chunk_metrics else None
        self._llm_tpoc = series(_LLM_TPOC)
        self._max_gap = series(_MAX_GAP)
        self._run_ttft, self._run_duration, self._task_duration, self._wait = (
            series(spec) for spec in (_RUN_TTFT, _RUN_DURATION, _TASK_DURATION, _WAIT)
        )
        self._active = series(_ACTIVE_RUNS)
        self._run_ttfc = series(_RUN_TTFC)
        self._errors = series(_ERRORS)
        self._node = _Cap(max_label_values)
        # (graph, node, namespace, status) as recorded -> resolved task label set.
        self._tasks: dict[tuple[str, str, str, str | None], _Child] = {}
        # Subgraph paths: node names only, capped like node names.
        self._namespace = _Cap(max_label_values)
        self._model = _Cap(max_label_values)
        self._checkpoint_duration = series(_CHECKPOINT_DURATION)
        self._store_duration = series(_STORE_DURATION)
        self._saver = _Cap(max_label_values)
        # (graph, operation, saver, status) as recorded -> resolved label set.
        self._calls: dict[tuple[str, str, str, str | None], _Child] = {}
        self._on_error = on_error
        self._batch = Batch(self._batch_failed)
        self._later = self._batch.items.append
        self._observe_task = self._task_duration.observe_child
        # Bound once: one queued call per task.
        self._record_task_call = self._record_task
        self._observe_checkpoint = self._checkpoint_duration.observe_child
        self._hold_checkpoint = self._checkpoint_duration.held.append
        self._observe_store = self._store_duration.observe_child
        #: Histograms still behind the API's proxy (see :meth:`_rebind`).
        self._pending = tuple(
            s for s in vars(self).values() if isinstance(s, _Series) and s._pending
        )

    def _rebind(self) -> None:
        # The global provider was a proxy when the sink was built: once the
        # application sets a real one, its histograms take the bound path too.
        # Setting it resolves every proxy instrument at once: one look per run
        # until then.
        if getattr(self._pending[0]._otel, "_real_instrument", None) is None:
            return
        provider = metrics.get_meter_provider()
        self._pending = tuple(s for s in self._pending if not s.rebind(provider))

    def _batch_failed(self, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(n.COMPONENT_METRICS, exc)
            return
        _log.debug("lg_otel %s failed: %r", n.COMPONENT_METRICS, exc, exc_info=exc)
        self.count_internal_error(n.COMPONENT_METRICS)

    def flush(self) -> None:
        """Record every batched observation now (a run's end does this too)."""
        self._batch.flush()

    def count_internal_error(self, component: str) -> None:
        """Count one swallowed telemetry failure (an ``InternalErrors`` listener)."""
        self._errors.add((component,), 1)

    # --- runs -----------------------------------------------------------------

    def run_started(self, run: RunRecord) -> None:
        """Count the run in flight."""
        if self._pending:
            self._rebind()
        self._active.add((run.graph,), 1)
        run.slots[_ACTIVE] = True

    def run_first_token(self, run: RunRecord) -> None:
        """Record the run's time to first token."""
        ttft = _seconds(run.start_ns, run.first_token_ns)
        if ttft is not None:
            self._run_ttft.observe((run.graph,), ttft, run.slots.get(_SPAN))

    def run_first_chunk(self, run: RunRecord) -> None:
        """Record the streaming call's time to its first stream item."""
        ttfc = _seconds(run.start_ns, run.first_chunk_ns)
        if ttfc is not None:
            self._run_ttfc.observe((run.graph,), ttfc, run.slots.get(_SPAN))

    def run_ended(self, run: RunRecord) -> None:
        """Record run duration and consumer wait; the run is no longer in flight."""
        # Only undo what run_started did, so the gauge never drifts below zero.
        if run.slots.pop(_ACTIVE, False):
            self._active.add((run.graph,), -1)
        # The run's tasks and saver calls first: all of them are in by its end.
        self._batch.flush()
        span = run.slots.get(_SPAN)
        duration = _seconds(run.start_ns, run.end_ns)
        if duration is not None:
            status = run.status or n.STATUS_OK
            self._run_duration.observe((run.graph, status), duration, span)
        self._wait.observe((run.graph,), run.consumer_wait_ns / 1e9, span)

    # --- tasks ----------------------------------------------------------------

    def task_ended(self, run: RunRecord, task: TaskRecord) -> None:
        """Queue the task's duration: the batch records it (:meth:`_record_task`)."""
        if task.end_ns is None:
            return
        # An ended task's record no longer changes: read it when the batch runs.
        self._later((self._record_task_call, run, task, None, None))
        if monotonic_ns() > self._batch.due_ns:
            self._batch.arm()

    def _record_task(self, run: RunRecord, task: TaskRecord, _: None, __: None) -> None:
        end = task.end_ns
        if end is None:
            return
        key = (run.graph, task.name, task.namespace, task.status)
        child = self._tasks.get(key)
        if child is None:
            child = self._task_child(key)
        span = task.slots.get(_SPAN)
        # No span (its start failed): no context either, as it would name the parent.
        ctx = task.slots.get(_CTX) if span is not None else None
        self._observe_task(child, (end - task.start_ns) / 1e9, span, ctx)

    def _task_child(self, key: tuple[str, str, str, str | None]) -> _Child:
        """Resolve a task's labels (capped) once per (graph, node, namespace,
        status) seen; values past the cap are resolved each time, not kept."""
        graph, node, namespace, status = key
        labels = (
            graph,
            self._node(node),
            self._namespace(namespace) if namespace else "",
            status or n.STATUS_OK,
        )
        child = self._task_duration.child(labels)
        if n.LABEL_OTHER not in labels[1:3]:
            self._tasks[key] = child
        return child

    # --- model calls ----------------------------------------------------------

    def llm_ended(self, run: RunRecord, llm: LlmRecord) -> None:
        """Record duration, streaming figures and provider-reported token usage."""
        node = self._node(llm.node) if llm.node else n.LABEL_UNKNOWN
        model = self._model(llm.model) if llm.model else n.LABEL_UNKNOWN
        labels = (
            llm.operation,
            llm.provider or n.LABEL_UNKNOWN,
            model,
            run.graph,
            node,
        )
        span = llm.slots.get(_SPAN)
        duration = _seconds(llm.start_ns, llm.end_ns)
        if duration is not None:
            failure = ""
            if llm.status == n.STATUS_ERROR:
                failure = error_type(llm.error) if llm.error else n.ERROR_TYPE_OTHER
            self._llm_duration.observe((*labels, failure), duration, span)
        ttfc = _seconds(llm.start_ns, llm.first_chunk_ns)
        if ttfc is not None:
            self._ttfc.observe(labels, ttfc, span)
        streamed = _seconds(llm.first_chunk_ns, llm.last_chunk_ns)
        if streamed is not None and llm.chunks >= 2:
            self._llm_tpoc.observe(labels, streamed / (llm.chunks - 1), span)
            self._max_gap.observe(labels, llm.max_gap_ns / 1e9, span)
            if self._tpoc is not None and llm.gaps:
                observe = self._tpoc.observe
                for gap in llm.gaps:
                    observe(labels, gap / 1e9, span)
        if streamed is not None and streamed > 0:  # one chunk has no rate
            count = llm.output_tokens if llm.output_tokens is not None else llm.chunks
            self._rate.observe(labels, count / streamed, span)
        # Only what the provider reported: a chunk is not a token.
        if llm.input_tokens is not None:
            self._tokens.observe((*labels, n.TOKEN_TYPE_INPUT), llm.input_tokens, span)
        if llm.output_tokens is not None:
            self._tokens.observe(
                (*labels, n.TOKEN_TYPE_OUTPUT), llm.output_tokens, span
            )

    # --- checkpoints and stores -------------------------------------------------

    def checkpoint_ended(self, run: RunRecord | None, call: CheckpointRecord) -> None:
        """Record the checkpointer call's duration: in a run, from the batch."""
        if run is None:  # get_state() and the like: no run end to flush it
            self.checkpoint_done(None, call)
            return
        # A batch item: checkpoint_done(self, None, call, None).
        self._later((MetricsSink.checkpoint_done, self, None, call, None))
        if monotonic_ns() > self._batch.due_ns:
            self._batch.arm()

    def checkpoint_done(
        self, run: RunRecord | None, call: CheckpointRecord, _unused: None = None
    ) -> None:
        """Record the duration of a checkpointer call that ended, now (from the
        batch, or outside a run). The unused argument makes it a batch's call."""
        end = call.end_ns
        if end is None:
            return
        key = (call.graph, call.operation, call.saver, call.status)
        child = self._calls.get(key)
        if child is None:
            child = self._call_child(call)
        slots = call.slots
        span = slots.get(_SPAN)
        ctx = slots.get(_CTX) if span is not None else None
        value = (end - call.start_ns) / 1e9
        if run is None:  # outside a run, or its own batch's item: now
            self._observe_checkpoint(child, value, span, ctx)
            return
        # In a run, from the batch of its calls: with the batch's others.
        self._hold_checkpoint((child, value, span, ctx))
        if not self._checkpoint_duration.held_queued:
            self._queue_held(self._checkpoint_duration)

    def _call_child(self, call: CheckpointRecord) -> _Child:
        # The label set of a checkpointer call not in _calls yet.
        saver = self._saver(call.saver)
        labels = (call.graph, call.operation, saver, call.status or n.STATUS_OK)
        child = self._checkpoint_duration.child(labels)
        if saver != n.LABEL_OTHER:  # past the cap: resolved each time, not kept
            self._calls[(call.graph, call.operation, call.saver, call.status)] = child
        return child

    def calls_done(
        self,
        run: RunRecord,
        calls: Sequence[CheckpointRecord | StoreRecord],
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """The durations of a run's calls that ended, handed on together (see
        :meth:`Sink.calls_done` for ``on_error``): the checkpointer calls'
        recorded now, each label set's at once (as :meth:`_Series.take` groups
        them), a store call's held as :meth:`store_done` holds it."""
        series = self._checkpoint_duration
        if series.held:
            # Held before these (a call handed on alone): recorded first, so each
            # sum adds the calls in their order.
            series.observe_held()
        resolved, bounds = self._calls, series._bounds
        plain: Groups = {}
        now = monotonic_ns()
        try:
            for call in calls:
                try:
                    if type(call) is not CheckpointRecord:
                        self.store_done(run, call)  # type: ignore[arg-type]
                        continue
                    end = call.end_ns
                    if end is None:
                        continue
                    key = (call.graph, call.operation, call.saver, call.status)
                    child = resolved.get(key)
                    if child is None:
                        child = self._call_child(call)
                    value = (end - call.start_ns) / 1e9
                    if value >= 0.0:  # finite: a difference of ints
                        # _Series.take(), inline for the common case: a bucket
                        # that had an exemplar less than an interval ago.
                        bucket = bisect_left(bounds, value)
                        if now - child.exemplar_ns[bucket] < EXEMPLAR_INTERVAL_NS:
                            group = plain.get(id(child))
                            if group is None:
                                plain[id(child)] = (child, [value], [bucket])
                            else:
                                group[1].append(value)
                                group[2].append(bucket)
                            continue
                    slots = call.slots
                    span = slots.get(_SPAN)
                    ctx = slots.get(_CTX) if span is not None else None
                    series.take(plain, child, value, span, ctx, now)
                except Exception as exc:
                    if on_error is None:
                        raise
                    on_error(exc)
        finally:
            # Also after a failure: what was taken is recorded.
            observe_groups(plain)

    def _queue_held(self, series: _Series) -> None:
        # Set before queueing: observe_held() clears it before it reads on.
        series.held_queued = True
        self._later((_Series.observe_held, series, None, None, None))
        if monotonic_ns() > self._batch.due_ns:
            self._batch.arm()

    def store_ended(self, run: RunRecord | None, call: StoreRecord) -> None:
        """Record the store call's duration: in a run, from the batch."""
        if run is None:
            self.store_done(None, call)
            return
        # A batch item: store_done(self, None, call, None).
        self._later((MetricsSink.store_done, self, None, call, None))
        if monotonic_ns() > self._batch.due_ns:
            self._batch.arm()

    def store_done(
        self, run: RunRecord | None, call: StoreRecord, _unused: None = None
    ) -> None:
        """Record the duration of a store call that ended, now (from the batch,
        or outside a run). The unused argument makes it a batch's call."""
        duration = _seconds(call.start_ns, call.end_ns)
        if duration is None:
            return
        labels = (call.graph, call.operation, call.status or n.STATUS_OK)
        span = call.slots.get(_SPAN)
        ctx = call.slots.get(_CTX) if span is not None else None
        series = self._store_duration
        if run is None:  # outside a run, or its own batch's item: now
            self._observe_store(series.child(labels), duration, span, ctx)
            return
        series.held.append((series.child(labels), duration, span, ctx))
        if not series.held_queued:
            self._queue_held(series)
