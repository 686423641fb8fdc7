"""The two call paths give the same telemetry.

A run's checkpointer and store calls reach the sinks either from the span batch,
start and end together, once each call ended (the default), or during each call
(``lg_otel._instrument.DEFER_CALLS = False``). The same graph, run on each path and
on each span path: every exported span field (times aside), and every call
histogram's counts, must be the same.
"""

from __future__ import annotations

import contextlib
import operator
from typing import Annotated, Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_store
from langgraph.graph import START, StateGraph
from langgraph.store.memory import InMemoryStore
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from typing_extensions import TypedDict

import lg_otel
from lg_otel import _instrument
from lg_otel import _names as n
from tests.conftest import meter_provider_for, provider_for, thread_config
from tests.test_span_paths import _fields


class S(TypedDict):
    """A log of visited nodes."""

    log: Annotated[list[str], operator.add]


class ReadingSaver(InMemorySaver):
    """Reads the current span during each ``put`` and starts one under it: what a
    database instrumentation does (so the deferred span is made during the call)."""

    def __init__(self, tracer: trace.Tracer) -> None:
        super().__init__()
        self._tracer = tracer

    def put(self, *args: Any, **kwargs: Any) -> Any:
        trace.get_current_span().set_attribute("saver.note", "seen")
        with self._tracer.start_as_current_span("db put"):
            return super().put(*args, **kwargs)


class StrictStore(InMemoryStore):
    """A store whose ``get`` of a missing key raises, as some backends do."""

    def get(self, namespace: Any, key: str, **kwargs: Any) -> Any:
        found = super().get(namespace, key, **kwargs)
        if found is None:
            raise LookupError("no such key")
        return found


def _graph(tracer: trace.Tracer) -> Any:
    """A parent whose node runs a subgraph (inheriting the saver), and a node
    that uses the store: a search, and a call that fails and is caught."""

    def remember(state: S) -> dict[str, list[str]]:
        store = get_store()
        store.put(("notes",), "k", {"v": 1})
        store.search(("notes",))
        with contextlib.suppress(LookupError):  # the node carries on
            store.get(("notes",), "missing")
        return {"log": ["remember"]}

    inner = StateGraph(S)
    inner.add_node("step", lambda state: {"log": ["step"]})
    inner.add_edge(START, "step")
    outer = StateGraph(S)
    outer.add_node("sub", inner.compile())
    outer.add_node("remember", remember)
    outer.add_edge(START, "sub")
    outer.add_edge("sub", "remember")
    return outer.compile(
        checkpointer=ReadingSaver(tracer), store=StrictStore(), name="paths"
    )


def _counts(reader: InMemoryMetricReader) -> list[tuple[str, tuple[Any, ...], int]]:
    data = reader.get_metrics_data()
    assert data is not None
    rows = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name not in (
                    n.METRIC_CHECKPOINT_DURATION,
                    n.METRIC_STORE_DURATION,
                ):
                    continue
                for point in metric.data.data_points:
                    labels = tuple(sorted((point.attributes or {}).items()))
                    rows.append((metric.name, labels, point.count))  # type: ignore[union-attr]
    return sorted(rows)


def test_both_call_paths_export_the_same_spans_and_observations(
    span_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deferred and during-the-call: the same spans (names, parents, attributes,
    status, events) and the same call histogram counts, read span included."""
    results = []
    for deferred in (True, False):
        monkeypatch.setattr(_instrument, "DEFER_CALLS", deferred)
        provider, exporter = provider_for(span_path)
        reader = InMemoryMetricReader()
        graph = lg_otel.instrument(
            _graph(provider.get_tracer("db")),
            tracer_provider=provider,
            meter_provider=meter_provider_for("bound", reader),
            registry=False,
        )
        out = graph.invoke({"log": []}, thread_config(), durability="sync")
        assert out == {"log": ["step", "remember"]}
        spans = exporter.get_finished_spans()
        names = [s.name for s in spans]
        assert f"{n.SPAN_STORE} search" in names
        assert "db put" in names
        failed = [
            s
            for s in spans
            if s.name == f"{n.SPAN_STORE} get"
            and (s.attributes or {}).get(n.ATTR_STATUS) == n.STATUS_ERROR
        ]
        assert len(failed) == 1
        results.append((_fields(spans), _counts(reader)))
        provider.shutdown()
    assert results[0][0] == results[1][0]
    assert results[0][1] == results[1][1]
    assert results[0][1], "no call was observed"
