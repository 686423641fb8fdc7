"""A bound histogram records exactly what ``Histogram.record`` would, on any SDK set-up.

Each case builds two identical SDK set-ups, records the same observations through
a bound recorder on one and through the public ``record`` on the other, and
compares everything the readers collect (timestamps aside).
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import Histogram as SdkHistogramKind
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricReader,
)
from opentelemetry.sdk.metrics.view import (
    DropAggregation,
    ExplicitBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.trace import TracerProvider

from lg_otel import _histograms
from lg_otel._histograms import api_recorder, can_bind, recorder, recorders
from tests.conftest import VendorMeterProvider

_A = {"langgraph.graph.name": "g", "langgraph.node": "a", "langgraph.status": "ok"}
_B = {"langgraph.graph.name": "g", "langgraph.node": "b", "langgraph.status": "error"}
_VALUES = (0.0, 0.0004, 0.003, 0.003, 0.02, 0.7, 2.5, 11.0, 400.0)
_EMPTY = Context()


def _sampled_context() -> Context:
    span = TracerProvider().get_tracer("t").start_span("s")
    span.end()
    return trace.set_span_in_context(span, Context())


def _delta() -> InMemoryMetricReader:
    return InMemoryMetricReader(
        preferred_temporality={SdkHistogramKind: AggregationTemporality.DELTA}
    )


_VIEW_KEYS = View(instrument_name="h", attribute_keys={"langgraph.node"})
_VIEW_BUCKETS = View(
    instrument_name="h",
    name="h.coarse",
    aggregation=ExplicitBucketHistogramAggregation((0.01, 1.0)),
)

#: name -> (readers factory, provider keyword arguments)
_SETUPS: dict[str, tuple[Callable[[], list[MetricReader]], dict[str, Any]]] = {
    "cumulative": (lambda: [InMemoryMetricReader()], {}),
    "delta": (lambda: [_delta()], {}),
    "two readers": (lambda: [InMemoryMetricReader(), _delta()], {}),
    "view keeping one key": (lambda: [InMemoryMetricReader()], {"views": [_VIEW_KEYS]}),
    "two views": (
        lambda: [InMemoryMetricReader()],
        {"views": [_VIEW_BUCKETS, View(instrument_name="h")]},
    ),
    "dropped": (
        lambda: [InMemoryMetricReader()],
        {"views": [View(instrument_name="h", aggregation=DropAggregation())]},
    ),
    "no reader": (lambda: [], {}),
}


def _histogram(provider: MeterProvider) -> Any:
    return provider.get_meter("m").create_histogram(
        "h", "s", "d", explicit_bucket_boundaries_advisory=[0.001, 0.01, 0.1, 1.0, 10.0]
    )


def _points(reader: MetricReader) -> list[Any]:
    """Everything a collection holds, timestamps aside."""
    data = reader.get_metrics_data()  # type: ignore[attr-defined]
    out = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    exemplars = sorted(
                        (
                            e.value,
                            e.span_id,
                            e.trace_id,
                            tuple(sorted((e.filtered_attributes or {}).items())),
                        )
                        for e in point.exemplars
                    )
                    out.append(
                        (
                            metric.name,
                            tuple(sorted(point.attributes.items())),
                            point.count,
                            point.sum,
                            tuple(point.bucket_counts),
                            tuple(point.explicit_bounds),
                            point.min,
                            point.max,
                            tuple(exemplars),
                        )
                    )
    return sorted(out, key=repr)


def _record_both(
    setup: str, observations: list[tuple[dict[str, str], float, Context]]
) -> tuple[list[list[Any]], list[list[Any]]]:
    """Collections of (bound, api) after each third of ``observations``."""
    make_readers, kwargs = _SETUPS[setup]
    sides = []
    for bound in (True, False):
        readers = make_readers()
        provider = MeterProvider(metric_readers=readers, **kwargs)
        histogram = _histogram(provider)
        assert can_bind(provider, histogram)
        recorders = {
            tuple(attrs.items()): recorder(histogram, attrs, bound)
            for attrs, _, _ in observations
        }
        collected: list[list[Any]] = []
        third = len(observations) // 3 + 1
        for i, (attrs, value, ctx) in enumerate(observations):
            recorders[tuple(attrs.items())](value, ctx)
            if i % third == third - 1:  # collect mid-way: delta readers reset
                collected.extend(_points(r) for r in readers)
        collected.extend(_points(r) for r in readers)
        provider.shutdown()
        sides.append(collected)
    return sides[0], sides[1]


@pytest.mark.parametrize("setup", sorted(_SETUPS))
def test_bound_records_what_the_api_records(setup: str) -> None:
    """Counts, sums, buckets, min/max and exemplars match the API's, collection by
    collection, for every reader and view set-up."""
    sampled = _sampled_context()
    # A context holding the invalid span (what a run with no span hands over)
    # is no exemplar either.
    invalid = trace.set_span_in_context(trace.INVALID_SPAN, Context())
    observations = [
        (attrs, value, sampled if i % 4 == 0 else invalid if i % 4 == 1 else _EMPTY)
        for i, value in enumerate(_VALUES * 3)
        for attrs in (_A, _B)
    ]
    bound, api = _record_both(setup, observations)
    assert bound == api
    if setup != "dropped" and setup != "no reader":
        assert any(bound), "nothing was collected: the comparison proves nothing"
        assert any(point[-1] for points in bound for point in points), "no exemplar"


def test_values_the_sdk_refuses_are_refused_alike(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Negative, infinite and NaN values: the SDK's warning, and no observation."""
    bad = [-1.0, math.inf, math.nan]
    with caplog.at_level(logging.WARNING, logger="opentelemetry.sdk.metrics"):
        bound, api = _record_both(
            "cumulative", [(_A, v, _EMPTY) for v in [0.5, *bad, 0.25]]
        )
    assert bound == api
    assert bound[-1][0][2] == 2  # the two valid values only
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 * len(bad), warned


def test_cardinality_overflow_goes_to_the_overflow_series() -> None:
    """Past the reader's cardinality limit both paths fold into one series."""
    labels = [{"langgraph.node": f"n{i}"} for i in range(6)]
    sides = []
    for bound in (True, False):
        reader = InMemoryMetricReader(cardinality_limits={SdkHistogramKind: 3})
        provider = MeterProvider(metric_readers=[reader])
        histogram = _histogram(provider)
        for attrs in labels:
            recorder(histogram, attrs, bound)(0.5, _EMPTY)
        sides.append(_points(reader))
        provider.shutdown()
    assert sides[0] == sides[1]
    assert any(("otel.metric.overflow", True) in point[1] for point in sides[0]), sides[
        0
    ]


def test_a_reader_added_later_gets_later_observations() -> None:
    """The reader set is read at each observation, not when the label set is bound."""
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    if not hasattr(provider, "add_metric_reader"):
        pytest.skip("this SDK fixes its readers at construction")
    histogram = _histogram(provider)
    record = recorder(histogram, _A, True)
    record(0.5, _EMPTY)
    late = InMemoryMetricReader()
    provider.add_metric_reader(late)
    record(0.25, _EMPTY)
    (point,) = _points(late)
    assert point[2] == 1
    assert point[3] == 0.25
    provider.shutdown()


def test_a_meter_disabled_and_enabled_again_is_followed() -> None:
    """A meter the provider's configurator turns off records nothing on either
    path, and records again once turned back on: read at each observation."""
    from opentelemetry.sdk.metrics._internal import (
        _default_meter_configurator,
        _disable_meter_configurator,
    )

    sides = []
    for bound in (True, False):
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        if not hasattr(provider, "_set_meter_configurator"):
            pytest.skip("this SDK has no meter configurator")
        record = recorder(_histogram(provider), _A, bound)
        record(0.5, _EMPTY)
        provider._set_meter_configurator(meter_configurator=_disable_meter_configurator)
        record(0.25, _EMPTY)
        provider._set_meter_configurator(meter_configurator=_default_meter_configurator)
        record(0.125, _EMPTY)
        sides.append(_points(reader))
        provider.shutdown()
    assert sides[0] == sides[1]
    (point,) = sides[0]
    assert point[2:4] == (2, 0.625), point  # the disabled meter's 0.25 is not in


def test_which_set_ups_take_the_bound_path() -> None:
    """Only the SDK's own provider and histogram: a subclass, the no-op provider
    and non-string attributes go through the API."""
    plain = MeterProvider(metric_readers=[InMemoryMetricReader()])
    vendor = VendorMeterProvider(metric_readers=[InMemoryMetricReader()])
    assert can_bind(plain, _histogram(plain))
    assert not can_bind(vendor, _histogram(vendor))
    noop = NoOpMeterProvider()
    assert not can_bind(noop, noop.get_meter("m").create_histogram("h"))
    counter = plain.get_meter("m").create_counter("c")
    assert not can_bind(plain, counter)
    histogram = _histogram(plain)
    assert (
        recorder(histogram, _A, True).__qualname__
        != api_recorder(histogram, _A).__qualname__
    )
    # A non-string value: the API cleans it; the bound path would not.
    mixed: Any = {"k": 1}
    assert (
        recorder(histogram, mixed, True).__qualname__
        == api_recorder(histogram, mixed).__qualname__
    )
    plain.shutdown()
    vendor.shutdown()


def test_the_sdk_internals_are_found() -> None:
    """On the SDK this project pins, the bound path is available at all."""
    assert _histograms._AVAILABLE


_BOUNDS = (0.001, 0.01, 0.1, 1.0, 10.0)


@pytest.mark.parametrize("setup", sorted(_SETUPS))
def test_many_at_once_records_what_the_api_records_one_by_one(setup: str) -> None:
    """Plain observations of one label set handed over together (a batch's saver
    calls) collect exactly as the API's one-by-one records: the same counts,
    buckets, float sums (added in the same order), min and max, for every reader
    and view set-up; a view with other buckets included."""
    invalid = trace.set_span_in_context(trace.INVALID_SPAN, Context())
    # Sums whose float depends on the order: 1e16 + 1 + 1 != 1 + 1 + 1e16.
    groups = [[0.1, 0.2, 0.3], [1e16, 1.0, 1.0], [0.0, 0.0004, 0.003, 0.003, 0.02]]
    groups += [[0.7, 2.5, 11.0]]
    groups += [[400.0], [0.3, 0.2, 0.1, 1e-9], [5.0, 0.05]]
    make_readers, kwargs = _SETUPS[setup]
    sides = []
    for bound in (True, False):
        readers = make_readers()
        provider = MeterProvider(metric_readers=readers, **kwargs)
        histogram = _histogram(provider)
        _one, many = recorders(histogram, _A, bound, _BOUNDS)
        _other_one, other_many = recorders(histogram, _B, bound, _BOUNDS)
        collected: list[list[Any]] = []
        for i, values in enumerate(groups):
            if bound:
                buckets = [bisect_left(_BOUNDS, v) for v in values]
                many(values, buckets, invalid)
                other_many(values[::-1], buckets[::-1], invalid)
            else:  # the reference: the API, one value at a time
                for value in values:
                    api_recorder(histogram, _A)(value, invalid)
                for value in values[::-1]:
                    api_recorder(histogram, _B)(value, invalid)
            if i % 2:  # collect mid-way: delta readers reset
                collected.extend(_points(r) for r in readers)
        collected.extend(_points(r) for r in readers)
        provider.shutdown()
        sides.append(collected)
    assert sides[0] == sides[1]
    if setup != "dropped" and setup != "no reader":
        assert any(sides[0]), "nothing was collected: the comparison proves nothing"


def test_many_adds_under_one_lock_where_it_can() -> None:
    """The fast path is taken on the SDK this project pins: many observations go
    to the SDK's explicit-bucket aggregation through add_many(), not aggregate()
    (a view with other buckets takes aggregate() for each)."""
    assert _histograms._ADDS_PLAINLY
    reader = InMemoryMetricReader()
    views = [_VIEW_BUCKETS, View(instrument_name="h")]
    provider = MeterProvider(metric_readers=[reader], views=views)
    histogram = _histogram(provider)
    _one, many = recorders(histogram, _A, True, _BOUNDS)
    invalid = trace.set_span_in_context(trace.INVALID_SPAN, Context())
    calls: list[int] = []
    original = _histograms.add_many

    def counted(aggregation: Any, values: Any, buckets: Any) -> None:
        calls.append(len(values))
        original(aggregation, values, buckets)

    _histograms.add_many = counted
    try:
        many([0.5], [3], invalid)  # the SDK makes the aggregations: one by one
        many([0.25], [3], invalid)  # found, and kept: one by one
        many([0.5, 0.05, 20.0], [3, 2, 5], invalid)
    finally:
        _histograms.add_many = original
    # Two views match: the advisory buckets' (added at once) and the coarse one.
    assert calls == [3]
    points = {p[0]: p for p in _points(reader)}
    assert points["h"][2:4] == (5, 0.5 + 0.25 + 0.5 + 0.05 + 20.0)
    assert points["h.coarse"][2] == 5
    provider.shutdown()
