"""How lg_otel records one label set of an OTel histogram: by the API, or bound.

Part of the metrics sink. The SDK's ``Histogram.record(value, attributes)`` cleans
the attribute mapping (``Measurement.__post_init__``), copies it and hashes it again
(``_hash_attributes``: a sort and a type tag per key) on every call: about two
thirds of its cost. lg_otel resolves each label set once, and its attributes are
already clean (short ``str`` keys and values), so where it is *equivalent* a
:func:`recorder` hashes them once and hands each observation straight to the
aggregation the SDK itself would pick for that key. Equivalent means: the SDK's own
``MeterProvider`` (not a subclass), its own histogram, measurement consumer, reader
storages and view matches, and an aggregation the SDK has already made for this
key under a view that keeps every attribute and a cumulative reader. For
everything else (a delta reader, a view that filters attributes, a label set not
yet seen, a value the SDK would refuse) the observation goes to the SDK's own code
for that step, with the same measurement. Anywhere else the API is used, unchanged.

The SDK internals used are private; each is looked up when a series is made, and
any that is missing makes that series take the API path.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN

from lg_otel._spanpath import _SPAN_KEY

#: One observation of a bound label set: ``(value, context)``.
Recorder = Callable[[float, Context], None]
#: Observations of a bound label set that make no exemplar, at once: ``(values,
#: buckets, context)``. Each value is finite and >= 0, ``buckets[i]`` its index
#: in the bounds the recorder was made for, and ``context`` holds no valid span.
ManyRecorder = Callable[[Sequence[float], Sequence[int], Context], None]

try:  # the SDK's metric internals (private): the bound path needs all of them
    from opentelemetry.sdk.metrics import MeterProvider as _SdkMeterProvider
    from opentelemetry.sdk.metrics import TraceBasedExemplarFilter
    from opentelemetry.sdk.metrics._internal._view_instrument_match import (
        _hash_attributes,
        _ViewInstrumentMatch,
    )
    from opentelemetry.sdk.metrics._internal.aggregation import (
        _ExplicitBucketHistogramAggregation as _Buckets,
    )
    from opentelemetry.sdk.metrics._internal.instrument import (
        _Histogram as _SdkHistogram,
    )
    from opentelemetry.sdk.metrics._internal.measurement import Measurement
    from opentelemetry.sdk.metrics._internal.measurement_consumer import (
        SynchronousMeasurementConsumer,
    )
    from opentelemetry.sdk.metrics._internal.metric_reader_storage import (
        MetricReaderStorage,
    )
except ImportError:  # pragma: no cover - another SDK release: the API path
    _AVAILABLE = False
else:
    _FIELDS = ("value", "time_unix_nano", "instrument", "context", "attributes")
    _AVAILABLE = (
        tuple(f.name for f in dataclasses.fields(Measurement)) == _FIELDS
        # Its fields live in the instance's __dict__ (see record()).
        and not hasattr(Measurement, "__slots__")
        and all(
            hasattr(cls, name)
            for cls, name in (
                (_SdkHistogram, "_is_enabled"),
                (MetricReaderStorage, "_get_or_init_view_instrument_match"),
                (_ViewInstrumentMatch, "consume_measurement"),
            )
        )
        # Where the caller decides exemplar sampling once for every reader.
        and "should_sample_exemplar"
        in inspect.signature(_ViewInstrumentMatch.consume_measurement).parameters
    )

    # What the explicit-bucket aggregation's aggregate() reads and writes: the
    # names of this SDK release's. Several observations are added under one hold
    # of its lock (see add_many()) only where aggregate() names exactly these, so
    # an SDK that changed it takes aggregate() for each.
    _ADDS_PLAINLY = frozenset(_Buckets.aggregate.__code__.co_names) == frozenset(
        {
            "_lock",
            "_value",
            "_get_empty_bucket_counts",
            "value",
            "_sum",
            "_record_min_max",
            "min",
            "_min",
            "max",
            "_max",
            "bisect_left",
            "_boundaries",
            "_sample_exemplar",
        }
    )

    class _Cleaned(Measurement):
        """A measurement whose attributes are already what cleaning makes of them."""

        def __post_init__(self) -> None:
            # Measurement's cleans the mapping into a new dict; lg_otel's attribute
            # sets are str -> str, which cleaning copies unchanged.
            pass


try:  # the holder of a meter's enabled flag (SDK 1.3x on): read without a call
    from opentelemetry.sdk.metrics._internal import _ProxyMeterConfig as _Holder

    _ProxyMeterConfig: type | None = _Holder
except ImportError:  # pragma: no cover - another SDK release: _is_enabled()
    _ProxyMeterConfig = None

_INF = math.inf
_INVALID = INVALID_SPAN
_new = object.__new__


def can_bind(provider: Any, instrument: Any) -> bool:
    """Whether ``instrument`` (made by ``provider``) takes the bound path."""
    if not _AVAILABLE or type(provider) is not _SdkMeterProvider:
        return False
    if type(instrument) is not _SdkHistogram:
        return False
    consumer = getattr(instrument, "_measurement_consumer", None)
    return (
        type(consumer) is SynchronousMeasurementConsumer
        and isinstance(getattr(consumer, "_reader_storages", None), Mapping)
        and hasattr(getattr(consumer, "_sdk_config", None), "exemplar_filter")
    )


def api_recorder(instrument: Any, attributes: Mapping[str, str]) -> Recorder:
    """Record through the instrument's public ``record``."""

    def record(value: float, context: Context) -> None:
        instrument.record(value, attributes, context=context)

    return record


def _each(record: Recorder) -> ManyRecorder:
    def many(values: Sequence[float], buckets: Sequence[int], context: Context) -> None:
        for value in values:
            record(value, context)

    return many


def add_many(aggregation: Any, values: Sequence[float], buckets: Sequence[int]) -> None:
    """What ``aggregation.aggregate()`` does for each of ``values`` with no exemplar
    offered, under one hold of its lock: the sum in the same order, so the same
    float. ``aggregation`` is the SDK's explicit-bucket one (see
    :data:`_ADDS_PLAINLY`) and ``buckets`` the values' indices in its bounds."""
    with aggregation._lock:
        counts = aggregation._value
        if counts is None:
            counts = aggregation._value = aggregation._get_empty_bucket_counts()
        total = aggregation._sum
        for value in values:
            total += value
        aggregation._sum = total
        if aggregation._record_min_max:
            aggregation._min = min(aggregation._min, min(values))
            aggregation._max = max(aggregation._max, max(values))
        for bucket in buckets:
            counts[bucket] += 1


def recorder(instrument: Any, attributes: Mapping[str, str], bound: bool) -> Recorder:
    """A recorder of ``attributes`` on ``instrument``: bound when ``bound``.

    ``attributes`` must be a ``str -> str`` mapping that nobody changes later.
    """
    return recorders(instrument, attributes, bound, ())[0]


def recorders(
    instrument: Any,
    attributes: Mapping[str, str],
    bound: bool,
    bounds: Sequence[float],
) -> tuple[Recorder, ManyRecorder]:
    """:func:`recorder`, and a recorder of many observations at once whose
    bucket indices are in ``bounds`` (what lg_otel asked the instrument for).

    Bound, the many go to each of the SDK's explicit-bucket aggregations with
    those bounds under one hold of its lock (:func:`add_many`); anywhere else,
    each takes the single recorder.
    """
    if not bound or not all(
        type(k) is str and k and type(v) is str for k, v in attributes.items()
    ):
        one = api_recorder(instrument, attributes)
        return one, _each(one)
    bounds = tuple(bounds)
    attrs = dict(attributes)
    key = _hash_attributes(attrs)
    consumer = instrument._measurement_consumer
    sdk_config = consumer._sdk_config
    enabled = instrument._is_enabled
    # What _is_enabled() reads, read here without its two calls: the meter's
    # config holder, which the SDK updates in place when its configurator runs.
    meter_config = getattr(instrument, "_meter_config", None)
    if (
        _ProxyMeterConfig is None
        or type(meter_config) is not _ProxyMeterConfig
        or not hasattr(meter_config, "_config")
    ):
        meter_config = None
    exemplar_filter = sdk_config.exemplar_filter
    # The SDK's default filter samples only measurements made in a sampled
    # span's context: one holding no span, or the invalid span (what lg_otel
    # hands over when it wants no exemplar), is refused without the call.
    span_key = _SPAN_KEY or ""
    trace_based = bool(span_key) and type(exemplar_filter) is TraceBasedExemplarFilter
    # The aggregations an observation goes to, for the reader storages they were
    # found in (the SDK replaces that mapping when a reader comes or goes): kept
    # only where each is a cumulative aggregation of every attribute, which the
    # SDK never replaces for a key once made.
    cached: list[tuple[object, tuple[Any, ...]]] = [(None, ())]
    # The same aggregations, each with whether add_many() may add to it.
    plain: list[tuple[tuple[Any, ...], tuple[bool, ...]]] = [((), ())]

    def record(value: float, context: Context) -> None:
        # The SDK warns about (and drops) these, and does nothing when disabled.
        if not 0.0 <= value < _INF or not (
            meter_config._config.is_enabled if meter_config is not None else enabled()
        ):
            instrument.record(value, attrs, context=context)
            return
        now = time_ns()
        # The fields set where its __init__ would put them: a frozen dataclass's
        # __init__ sets each through object.__setattr__ (0.7 µs against 0.3).
        measurement = _new(_Cleaned)
        fields = measurement.__dict__
        fields["value"] = value
        fields["time_unix_nano"] = now
        fields["instrument"] = instrument
        fields["context"] = context
        fields["attributes"] = attrs
        if trace_based and context.get(span_key, _INVALID) is _INVALID:
            sample = False
        else:
            sample = exemplar_filter.should_sample(value, now, attrs, context)
        storages = consumer._reader_storages
        seen, aggregations = cached[0]
        if storages is seen:
            for aggregation in aggregations:
                aggregation.aggregate(measurement, sample)
            return
        found: list[Any] | None = []
        for storage in storages.values():
            if type(storage) is not MetricReaderStorage:
                storage.consume_measurement(measurement, sample)
                found = None
                continue
            for match in storage._get_or_init_view_instrument_match(instrument):
                aggregation = None
                try:
                    if (
                        type(match) is _ViewInstrumentMatch
                        and not match._reset_on_collect
                        and match._view._attribute_keys is None
                    ):
                        aggregation = match._attributes_aggregation.get(key)
                except AttributeError:  # another SDK release: its own code
                    aggregation = None
                if aggregation is None:
                    match.consume_measurement(measurement, sample)
                    found = None
                else:
                    aggregation.aggregate(measurement, sample)
                    if found is not None:
                        found.append(aggregation)
        if found is not None:
            cached[0] = (storages, tuple(found))

    def adds_plainly(aggregation: Any) -> bool:
        return (
            _ADDS_PLAINLY
            and type(aggregation) is _Buckets
            and getattr(aggregation, "_boundaries", None) == bounds
        )

    def many(values: Sequence[float], buckets: Sequence[int], context: Context) -> None:
        storages = consumer._reader_storages
        seen, aggregations = cached[0]
        if (
            storages is not seen
            or not trace_based
            or not (
                meter_config._config.is_enabled
                if meter_config is not None
                else enabled()
            )
        ):
            # Not found yet (the first call finds them), another exemplar
            # filter, or disabled: each as record() takes it.
            for value in values:
                record(value, context)
            return
        known, plainly = plain[0]
        if known is not aggregations:
            plainly = tuple(map(adds_plainly, aggregations))
            plain[0] = (aggregations, plainly)
        for aggregation, adds in zip(aggregations, plainly, strict=True):
            if adds:
                add_many(aggregation, values, buckets)
                continue
            now = time_ns()
            for value in values:
                measurement = _new(_Cleaned)
                fields = measurement.__dict__
                fields["value"] = value
                fields["time_unix_nano"] = now
                fields["instrument"] = instrument
                fields["context"] = context
                fields["attributes"] = attrs
                aggregation.aggregate(measurement, False)

    return record, many
