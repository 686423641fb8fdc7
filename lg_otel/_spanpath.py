"""How lg_otel's spans are produced: through the tracer's API, or recorded and emitted.

Most of an SDK span's cost is its live-span machinery (lock, sampler call per span,
``on_start`` fan-out, attribute validation), not its export. lg_otel knows every
attribute and both timestamps of its own spans, so where it is *equivalent* it
records a span in plain fields and hands the SDK's processors one finished
``ReadableSpan``. Equivalent means: the SDK's own ``TracerProvider``, processors that
are exactly the SDK's batch or simple processor (they act only in ``on_end``), a
sampler whose child decision follows the parent, no SDK self-metrics, and an enabled
tracer. Anywhere else the tracer's public API is used, unchanged.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types

from lg_otel._batch import Batch

try:  # the key under which the API keeps a context's span (private, stable)
    from opentelemetry.trace.propagation import _SPAN_KEY as _KEY

    _SPAN_KEY: str | None = _KEY
except ImportError:  # pragma: no cover - another API release: use the API calls
    _SPAN_KEY = None

_sdk_log = logging.getLogger("opentelemetry.sdk.trace")

#: Processors that only act in ``on_end`` (their ``on_start`` does nothing).
_END_ONLY_PROCESSORS = (BatchSpanProcessor, SimpleSpanProcessor)
_SAMPLED = trace.TraceFlags.SAMPLED
_RANDOM = getattr(trace.TraceFlags, "RANDOM_TRACE_ID", 0)
#: What BoundedAttributes keeps unchanged (so a plain dict stores it identically).
_PLAIN = (str, bool, int, float)
#: How this SDK's ``Span.set_attributes`` stores a mapping (newer SDKs clean it as a
#: whole); None where the SDK sets it key by key.
_SET_ITEMS = getattr(BoundedAttributes, "_set_items", None)
_EMPTY = otel_context.Context()
#: Every trace-flags value a span of lg_otel's can carry, made once.
_FLAGS = {bits: trace.TraceFlags(bits) for bits in (0, 1, _RANDOM, _RANDOM | 1)}
#: A span's status until one is set (the SDK shares its default the same way).
_UNSET = Status(StatusCode.UNSET)
_MAX_SPAN_ID = (1 << 64) - 1
_ONLY_STR = {str}
_new_tuple = tuple.__new__
_new = object.__new__
#: The SDK's own span ids, which :meth:`FinishedSpans.emit_children` makes inline.
_GENERATE_SPAN_ID = RandomIdGenerator.generate_span_id
#: A span :meth:`FinishedSpans.emit_children` emits: name, parent, attributes,
#: start, end, and the mapping its :class:`EndedSpan` goes in.
Child = tuple[
    str, otel_context.Context, dict[str, Any], int, int, MutableMapping[str, Any]
]


def _follows_parent(sampler: Sampler) -> bool:
    """Whether the sampler's decision for a local child is the parent's."""
    if type(sampler) is ParentBased or (
        isinstance(sampler, ParentBased)
        and type(sampler).__module__ == ParentBased.__module__
    ):
        return (
            getattr(sampler, "_local_parent_sampled", None) is ALWAYS_ON
            and getattr(sampler, "_local_parent_not_sampled", None) is ALWAYS_OFF
        )
    # Same trace id, same decision; a static sampler decides the same for all.
    return type(sampler) is TraceIdRatioBased or (
        isinstance(sampler, StaticSampler)
        and type(sampler).__module__ == StaticSampler.__module__
    )


def _self_metrics_off(tracer: SdkTracer) -> bool:
    metrics = getattr(tracer, "_tracer_metrics", None)
    return metrics is None or type(metrics).__name__ == "NoOpTracerMetrics"


class ApiSpans:
    """Spans through the tracer's public API: any provider, processor or sampler."""

    finished = False

    def __init__(self, tracer: trace.Tracer) -> None:
        """Start spans with ``tracer``."""
        self._tracer = tracer

    def start(
        self,
        name: str,
        parent: otel_context.Context | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        start_ns: int,
        links: Sequence[Link] = (),
        root: bool = False,
    ) -> trace.Span:
        """Start a span (``root`` is the run span; the API needs no such hint)."""
        return self._tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes=attributes,
            links=links,
            start_time=start_ns,
        )


class FinishedSpans:
    """Spans recorded by lg_otel, emitted to the provider's processors when ended."""

    finished = True

    def __init__(self, tracer: SdkTracer, processors: Sequence[Any]) -> None:
        """Emit as ``tracer`` would, to exactly these (end-only) processors."""
        self.tracer = tracer
        self._sampler = tracer.sampler
        self._ids = tracer.id_generator
        self._random = bool(getattr(self._ids, "is_trace_id_random", bool)())
        self.limits: SpanLimits = tracer._span_limits
        self.scope = tracer._instrumentation_scope
        self.info = tracer.instrumentation_info
        self.on_end: tuple[Callable[[ReadableSpan], None], ...] = tuple(
            _on_end_of(p) for p in processors
        )
        #: The provider's processor fan-out, and the processors it had at the choice.
        self.active: Any = tracer.span_processor
        self.processors = processors
        # lg_otel's own attributes stay in a plain dict while they are few enough
        # that the span's limits would keep them all, unchanged.
        limit = self.limits.max_span_attributes
        self.plain_limit = limit if limit is not None else 1 << 30
        self.plain_ok = self.limits.max_span_attribute_length is None

    def start(
        self,
        name: str,
        parent: otel_context.Context | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        start_ns: int,
        links: Sequence[Link] = (),
        root: bool = False,
    ) -> trace.Span:
        """A span under ``parent``; the ``root`` (run) span asks the sampler."""
        # span_of(parent).get_span_context(), two calls fewer for lg_otel's own
        # parent spans (a context holding a RecordedSpan: nearly every span).
        holder: Any = (
            parent.get(_SPAN_KEY)
            if parent is not None and _SPAN_KEY is not None
            else None
        )
        if holder is None:
            holder = span_of(parent)
        parent_ctx = (
            holder._ctx if type(holder) is RecordedSpan else holder.get_span_context()
        )
        if type(parent_ctx) is SpanContext:
            # A tuple whose properties each index it: unpacked, no call per field.
            trace_id, _, _, flags, parent_state, valid = parent_ctx
        else:
            trace_id, flags = parent_ctx.trace_id, parent_ctx.trace_flags
            parent_state, valid = parent_ctx.trace_state, parent_ctx.is_valid
        if valid:
            random = flags & _RANDOM
            local = parent_ctx
            if not root and flags & _SAMPLED:
                # The common case (every span but the run's, sampled), in short.
                ctx = self._sampled_child(trace_id, flags, parent_state)
                return RecordedSpan(
                    self, name, ctx, local, kind, attributes, start_ns, links
                )
        else:
            trace_id = self._ids.generate_trace_id()
            random = _RANDOM if self._random else 0
            local = None
        if root:
            result = self._sampler.should_sample(
                parent, trace_id, name, kind, attributes, links
            )
            sampled = result.decision.is_sampled()  # type: ignore[no-untyped-call]
            recording = result.decision.is_recording()  # type: ignore[no-untyped-call]
            trace_state = result.trace_state
            attributes = dict(result.attributes)
        else:
            # The child decision of a parent-following sampler: the parent's.
            sampled = recording = bool(flags & _SAMPLED)
            trace_state = parent_state
        ctx = SpanContext(
            trace_id,
            self._ids.generate_span_id(),
            False,
            _FLAGS[(_SAMPLED if sampled else 0) | random],
            trace_state,
        )
        if not recording:
            return NonRecordingSpan(ctx)
        return RecordedSpan(self, name, ctx, local, kind, attributes, start_ns, links)

    def _sampled_child(self, trace_id: int, flags: int, state: Any) -> SpanContext:
        """The context of a sampled child of a parent with these trace id, flags
        and trace state: the parent's decision, and a new span id, the only id
        left to check (SpanContext's own ``__new__`` would check both)."""
        span_id = self._ids.generate_span_id()
        return _new_tuple(
            SpanContext,
            (
                trace_id,
                span_id,
                False,
                _FLAGS[_SAMPLED | flags & _RANDOM],
                state,
                0 < span_id <= _MAX_SPAN_ID,
            ),
        )

    def emit(
        self,
        name: str,
        ctx: SpanContext,
        parent: SpanContext | None,
        attributes: Any,
        events: Any,
        links: Any,
        kind: SpanKind,
        status: Status,
        start_ns: int,
        end_ns: int,
        processors: Any,
    ) -> None:
        """Hand a finished span to the provider's processors: those it has now
        (``processors`` None), or those it had as the span ended."""
        readable = ReadableSpan(
            name,
            ctx,
            parent,
            self.tracer.resource,
            attributes,
            events,
            links,
            kind,
            self.info,
            status,
            start_ns,
            end_ns,
            self.scope,
        )
        active = self.active
        if processors is None:
            processors = active._span_processors
        if processors is self.processors:
            for on_end in self.on_end:
                on_end(readable)
        elif processors is active._span_processors:
            # A processor was added since the run began: the SDK's fan-out hands
            # a span ending now to every processor the provider has now.
            active.on_end(readable)
        else:  # and one was added since this span ended: those it had then
            for processor in processors:
                processor.on_end(readable)

    def emit_children(
        self,
        spans: Sequence[Child],
        slot: str,
        key: str,
        value: str,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> list[int]:
        """Emit at once spans that already ended, in their order: each of
        ``spans`` is (name, parent, attributes, start, end, target), and gets
        ``key: value`` among its attributes and no status, events or links; its
        :class:`EndedSpan` goes in ``target[slot]``. Returns the indices of those
        not emitted, for which the caller must take :meth:`start`. One that fails
        goes to ``on_error`` (None: raised, and the rest is not emitted).

        The span :meth:`start` and :meth:`RecordedSpan.end_with` give, for a child
        of one of lg_otel's own sampled spans, without the live span between
        them: a saver's call reaches the sinks once it ended, and nearly every one
        is such a span (the rest, an unsampled parent or a user's span above the
        call, take the live path). Made for a batch of a run's saver calls: their
        parents (nearly always one) are read once, and no call is made per span
        but the SDK's own. Each ``attributes`` becomes its span's: the caller
        hands over dicts it made for them.
        """
        if not self.plain_ok:
            return list(range(len(spans)))
        missed: list[int] = []
        limit = self.plain_limit
        active = self.active
        # emit()'s choice, once: the processors the provider has now.
        on_ends = (
            self.on_end
            if active._span_processors is self.processors
            else (active.on_end,)
        )
        resource, info, scope = self.tracer.resource, self.info, self.scope
        # _sampled_child()'s span id: the SDK's RandomIdGenerator, inline.
        bits = (
            random.getrandbits
            if type(self._ids) is RandomIdGenerator
            and RandomIdGenerator.generate_span_id is _GENERATE_SPAN_ID
            else None
        )
        seen: object = None
        parent_ctx: Any = None
        for index, (name, parent, attributes, start_ns, end_ns, target) in enumerate(
            spans
        ):
            try:
                if parent is not seen:
                    seen, parent_ctx = parent, None
                    holder = parent.get(_SPAN_KEY) if _SPAN_KEY is not None else None
                    if type(holder) is RecordedSpan:
                        trace_id, _, _, flags, state, valid = holder._ctx
                        if valid and flags & _SAMPLED:
                            parent_ctx = holder._ctx
                            child_flags = _FLAGS[_SAMPLED | flags & _RANDOM]
                if parent_ctx is None or key in attributes or len(attributes) >= limit:
                    missed.append(index)
                    continue
                span_id = bits(64) if bits is not None else 0
                if not span_id:
                    span_id = self._ids.generate_span_id()
                ctx = _new_tuple(
                    SpanContext,
                    (
                        trace_id,
                        span_id,
                        False,
                        child_flags,
                        state,
                        0 < span_id <= _MAX_SPAN_ID,
                    ),
                )
                attributes[key] = value
                readable = ReadableSpan(
                    name,
                    ctx,
                    parent_ctx,
                    resource,
                    attributes,
                    (),
                    (),
                    SpanKind.INTERNAL,
                    info,
                    _UNSET,
                    start_ns,
                    end_ns,
                    scope,
                )
                for on_end in on_ends:
                    on_end(readable)
                # EndedSpan(ctx), one frame fewer.
                ended = _new(EndedSpan)
                ended._context = ended._ctx = ctx
                target[slot] = ended
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(exc)
        return missed


class EndedSpan(NonRecordingSpan):
    """The span of a call that :meth:`FinishedSpans.emit_children` emitted: its
    context, no longer recording (as the SDK's span once ended, minus the
    warnings a call on it would log). ``_ctx`` as on a :class:`RecordedSpan`."""

    def __init__(self, context: SpanContext) -> None:
        """The ended span of ``context``."""
        # NonRecordingSpan's own __init__ sets only _context: one frame fewer
        # (made once per saver call).
        self._context = self._ctx = context


def _on_end_of(processor: Any) -> Callable[[ReadableSpan], None]:
    """What ``processor`` does with a sampled span that ended.

    For the SDK's batch processor, its queue's ``emit``: its ``on_end`` reads the
    span's context and sampled flag (five calls) only to refuse unsampled spans,
    which lg_otel never hands it.
    """
    if type(processor) is BatchSpanProcessor:
        emit = getattr(getattr(processor, "_batch_processor", None), "emit", None)
        if callable(emit):
            return emit  # type: ignore[no-any-return]
    return processor.on_end  # type: ignore[no-any-return]


def _bounded_links(limits: SpanLimits, links: Sequence[Link]) -> BoundedList[Link]:
    valid = []
    for link in links:
        ctx = link.context
        if link and ctx and (ctx.is_valid or link.attributes or ctx.trace_state):
            link._attributes = BoundedAttributes(  # as the SDK does, in place
                limits.max_link_attributes,
                link.attributes,
                max_value_len=limits.max_attribute_length,
                immutable=True,
            )
            valid.append(link)
    return BoundedList.from_seq(limits.max_links, valid)


class RecordedSpan(trace.Span):
    """A span lg_otel records in plain fields and emits finished, once.

    It implements the OpenTelemetry API ``Span``: user code inside a node gets it
    from ``trace.get_current_span()`` and its attributes, events and status land
    on the exported span, under the provider's limits, as on an SDK span.
    """

    __slots__ = (
        "_attrs",
        "_ctx",
        "_end",
        "_events",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_path",
        "_start",
        "_status",
    )

    def __init__(
        self,
        path: FinishedSpans,
        name: str,
        ctx: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        start_ns: int,
        links: Sequence[Link],
    ) -> None:
        """Record a started span (see :meth:`FinishedSpans.start`)."""
        self._path = path
        self._name = name
        self._ctx = ctx
        self._parent = parent
        self._kind = kind
        self._start = start_ns
        self._end: int | None = None
        self._status = _UNSET
        self._events: BoundedList[Event] | None = None
        self._links: Sequence[Link] = (
            _bounded_links(path.limits, links) if links else ()
        )
        self._attrs: dict[str, Any] | BoundedAttributes = attributes
        if len(attributes) > path.plain_limit or not path.plain_ok:
            self._bound()

    def __repr__(self) -> str:
        """As the SDK's span shows itself."""
        return f'{type(self).__name__}(name="{self._name}", context={self._ctx})'

    def _bound(self) -> BoundedAttributes:
        """Switch to the SDK's bounded attributes (limits, validation), for good."""
        attrs = self._attrs
        if not isinstance(attrs, BoundedAttributes):
            limits = self._path.limits
            attrs = self._attrs = BoundedAttributes(
                limits.max_span_attributes,
                attrs,
                immutable=False,
                max_value_len=limits.max_span_attribute_length,
            )
        return attrs

    def get_span_context(self) -> SpanContext:
        """This span's context."""
        return self._ctx

    def is_recording(self) -> bool:
        """True until ended, as an SDK span."""
        return self._end is None

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        """Set one attribute, as the SDK would store it."""
        if self._end is not None:
            _sdk_log.warning("Setting attribute on ended span.")
            return
        attrs = self._attrs
        if (
            type(attrs) is dict
            and type(key) is str
            and key
            and (
                type(value) in _PLAIN
                or (
                    type(value) is tuple
                    and value
                    # Every item exactly a str, tested in C (no generator frames).
                    and set(map(type, value)) == _ONLY_STR
                )
            )
            and len(attrs) < self._path.plain_limit
        ):
            if key in attrs:
                del attrs[key]  # BoundedAttributes moves an updated key last
            attrs[key] = value
            return
        self._bound()[key] = value

    def set_own(self, key: str, value: str | tuple[str, ...]) -> None:
        """:meth:`set_attribute` of a value lg_otel made, a ``str`` or a tuple of
        ``str``, while the span records (ended, it does nothing): stored the same,
        without the checks a user's value needs."""
        if self._end is not None:
            return
        attrs = self._attrs
        if (
            type(attrs) is dict
            and value
            and key not in attrs
            and len(attrs) < self._path.plain_limit
        ):
            attrs[key] = value
            return
        self.set_attribute(key, value)

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        """Set several attributes, as the SDK would store them."""
        if self._end is not None:
            _sdk_log.warning("Setting attribute on ended span.")
            return
        if _SET_ITEMS is not None and not all(
            type(key) is str and type(value) in _PLAIN
            for key, value in attributes.items()
        ):
            # SDKs that clean the mapping as a whole keep what a key-by-key set
            # drops (a key made a string, a nested mapping): do exactly that.
            _SET_ITEMS(self._bound(), attributes)
            return
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        """Add an event, its attributes bounded by the provider's limits."""
        if self._end is not None:
            _sdk_log.warning("Tried calling %s on an ended span.", "_add_event")
            return
        limits = self._path.limits
        bounded = BoundedAttributes(
            limits.max_event_attributes,
            attributes,
            max_value_len=limits.max_attribute_length,
            immutable=True,
        )
        if self._events is None:
            self._events = BoundedList(limits.max_events)
        # Event takes "now" for None only: a timestamp of 0 is the caller's.
        self._events.append(Event(name, bounded, timestamp))

    def add_link(
        self, context: SpanContext, attributes: types.Attributes = None
    ) -> None:
        """Add a link after the start, as the SDK allows."""
        if self._end is not None:
            _sdk_log.warning("Tried calling %s on an ended span.", "_add_link")
            return
        if not (context and (context.is_valid or attributes or context.trace_state)):
            return
        limits = self._path.limits
        if not isinstance(self._links, BoundedList):
            self._links = BoundedList.from_seq(limits.max_links, list(self._links))
        self._links.append(
            Link(
                context,
                BoundedAttributes(
                    limits.max_link_attributes,
                    attributes,
                    max_value_len=limits.max_attribute_length,
                    immutable=True,
                ),
            )
        )

    def update_name(self, name: str) -> None:
        """Rename the span."""
        if self._end is not None:
            _sdk_log.warning("Tried calling %s on an ended span.", "update_name")
            return
        self._name = name

    def set_status(
        self, status: Status | StatusCode, description: str | None = None
    ) -> None:
        """Set the status with the SDK's rules (OK is final, UNSET ignored)."""
        if self._end is not None:
            _sdk_log.warning("Tried calling %s on an ended span.", "set_status")
            return
        if self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is StatusCode.UNSET:
                return
            if description is not None:
                _sdk_log.warning(
                    "Description %s ignored. Use either `Status` or "
                    "`(StatusCode, Description)`",
                    description,
                )
            self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Record an exception event with the SDK's attributes."""
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        event: dict[str, types.AnyValue] = {
            "exception.type": f"{module}.{qualname}"
            if module and module != "builtins"
            else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        """End once: hand the processors one finished span (if sampled)."""
        if self._end is not None:
            _sdk_log.warning("Calling end() on an ended span.")
            return
        self.end_with(None, "", end_time)

    def end_with(
        self,
        key: str | None,
        value: str,
        end_time: int | None,
        batch: Batch | None = None,
    ) -> None:
        """Set one ``str`` attribute (unless ``key`` is None) and end: what lg_otel
        does last to most spans, in one call (it is :meth:`end`'s body).

        With a ``batch``, the finished span reaches the processors when the batch
        is flushed (its run's end, or the batch's timer), not now: the span is
        ended all the same, and exported unchanged.
        """
        if self._end is not None:
            return  # as lg_otel's callers skip a span that no longer records
        if key is not None:
            attrs = self._attrs
            if (
                type(attrs) is dict
                and key not in attrs
                and len(attrs) < self._path.plain_limit
            ):
                attrs[key] = value
            else:
                self.set_attribute(key, value)
        self._end = end = end_time if end_time is not None else time.time_ns()
        if not self._ctx[3] & _SAMPLED:  # trace_flags (lg_otel made this context)
            return  # recorded, not sampled: the SDK's processors drop it
        if batch is None:
            self.emit(end, None, None)
            return
        # The processors the provider has as the span ends: they get it, as the
        # SDK's fan-out would hand it to them now.
        processors = self._path.active._span_processors
        batch.items.append((RecordedSpan.emit, self, end, processors, None))
        if time.monotonic_ns() > batch.due_ns:
            batch.arm()

    def emit(self, end: int, processors: Any, _unused: None) -> None:
        """Hand the finished span to the provider's processors (sampled spans
        only): those it has now, or (from a batch) those it had as the span
        ended. The unused argument makes it a batch's call."""
        self._path.emit(
            self._name,
            self._ctx,
            self._parent,
            self._attrs,
            # Even an empty list: under max_events=0 it holds the dropped count.
            () if self._events is None else self._events,
            self._links,
            self._kind,
            self._status,
            self._start,
            end,
            processors,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """As an SDK span used as a context manager: record, set ERROR, end."""
        if exc_val is not None and self.is_recording():
            self.record_exception(exc_val, escaped=True)
            self.set_status(
                Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}")
            )
        super().__exit__(exc_type, exc_val, exc_tb)


SpanMaker = ApiSpans | FinishedSpans


class SpanPath:
    """Chooses, per run, how spans are produced; re-decides when processors change.

    The choice is made once and cached against the provider's processor tuple
    (the SDK replaces that tuple when a processor is added), so a run pays one
    identity check.
    """

    def __init__(self, tracer: trace.Tracer, provider: object = None) -> None:
        """Produce spans for ``tracer``, made by ``provider`` (None: the global).

        A tracer got from the global provider before the application set one is a
        proxy: the choice waits until the proxy has a real tracer behind it.
        """
        self._api = ApiSpans(tracer)
        self._proxy = tracer if isinstance(tracer, trace.ProxyTracer) else None
        self._tracer = tracer
        self._provider = provider if provider is not None else _global_provider()
        self._seen: object = None
        self._maker: SpanMaker = self._api
        self._decide()

    def _resolve_proxy(self, proxy: trace.ProxyTracer) -> None:
        real = proxy._tracer  # the proxy's own resolution: real, or its no-op
        if isinstance(real, trace.NoOpTracer):
            return
        self._proxy = None
        self._tracer = real
        self._provider = _global_provider()
        self._decide()

    def _processors(self) -> object:
        active = getattr(self._provider, "_active_span_processor", None)
        return getattr(active, "_span_processors", None)

    def _decide(self) -> None:
        procs = self._processors()
        self._seen = procs
        self._maker = self._api
        tracer = self._tracer
        if not (
            type(self._provider) is SdkTracerProvider
            and type(tracer) is SdkTracer
            and isinstance(procs, tuple)
            and all(type(p) in _END_ONLY_PROCESSORS for p in procs)
            and type(getattr(self._provider, "_active_span_processor", None)).__name__
            == "SynchronousMultiSpanProcessor"
            and _follows_parent(tracer.sampler)
            and _self_metrics_off(tracer)
            and getattr(tracer, "_span_limits", None) is not None
            and getattr(tracer, "_instrumentation_scope", None) is not None
        ):
            return
        self._maker = FinishedSpans(tracer, procs)

    def current(self) -> SpanMaker:
        """The maker for a run starting now."""
        if self._proxy is not None:
            self._resolve_proxy(self._proxy)
        if self._processors() is not self._seen:
            self._decide()
        enabled = getattr(self._tracer, "_is_enabled", None)
        if self._maker.finished and enabled is not None and not enabled():
            return self._api
        return self._maker


def _global_provider() -> object:
    return trace.get_tracer_provider()


def context_with(
    span: trace.Span, base: otel_context.Context | None = None
) -> otel_context.Context:
    """``base`` (else an empty context) with ``span`` as its span: what children
    and user code nest under. ``base``'s other values (baggage) carry over."""
    if _SPAN_KEY is None:  # pragma: no cover - see the import
        return trace.set_span_in_context(span, base or _EMPTY)
    if not base:
        return otel_context.Context({_SPAN_KEY: span})
    return otel_context.Context({**base, _SPAN_KEY: span})


def span_of(ctx: otel_context.Context | None) -> trace.Span:
    """The span ``ctx`` holds (the invalid span if none; None: the current one)."""
    if _SPAN_KEY is None or ctx is None:
        return trace.get_current_span(ctx)
    span = ctx.get(_SPAN_KEY)
    return span if span is not None else trace.INVALID_SPAN  # type: ignore[return-value]
