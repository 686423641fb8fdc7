"""Zero-code: LangGraphInstrumentor instruments graphs compiled while it is active."""

from __future__ import annotations

import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points, requires
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.func import entrypoint
from langgraph.graph import START, StateGraph
from langgraph.pregel import Pregel
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.sdk.trace import TracerProvider
from packaging.requirements import Requirement
from prometheus_client import CollectorRegistry, Counter

import lg_otel
from lg_otel import _names as n
from lg_otel.instrumentor import INSTRUMENTS, LangGraphInstrumentor
from tests.conftest import by_name, tree
from tests.graphs import S, chat, linear, nested
from tests.test_copy import functional, langchain_agent, react_agent

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def instrumentor() -> Iterator[LangGraphInstrumentor]:
    """The (singleton) instrumentor, always uninstrumented after the test."""
    instr = LangGraphInstrumentor()
    yield instr
    if instr.is_instrumented_by_opentelemetry:
        instr.uninstrument()


def _activate(
    instr: LangGraphInstrumentor, provider: TracerProvider, **kwargs: Any
) -> CollectorRegistry:
    registry = CollectorRegistry()
    instr.instrument(tracer_provider=provider, registry=registry, **kwargs)
    return registry


def _chat_input() -> dict[str, Any]:
    return {"messages": [HumanMessage("hi")]}


CASES: list[tuple[str, Callable[[], Pregel[Any, Any, Any, Any]], Callable[[], Any]]] = [
    ("StateGraph.compile", nested, lambda: {"log": []}),
    ("chat", chat, _chat_input),
    ("entrypoint", functional, lambda: 3),
    ("create_react_agent", react_agent, _chat_input),
    ("create_agent", langchain_agent, _chat_input),
]


@pytest.mark.parametrize(("name", "build", "inputs"), CASES, ids=[c[0] for c in CASES])
def test_compiled_while_active_traces_like_instrument(
    name: str,
    build: Callable[[], Pregel[Any, Any, Any, Any]],
    inputs: Callable[[], Any],
    tracing: Any,
    instrumentor: LangGraphInstrumentor,
) -> None:
    """A graph compiled while active has the trace tree of lg_otel.instrument()."""
    provider, exporter = tracing
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
    lg_otel.instrument(
        build(), tracer_provider=provider, registry=CollectorRegistry()
    ).invoke(inputs(), config)
    explicit = tree(exporter.get_finished_spans())
    exporter.clear()
    _activate(instrumentor, provider)
    graph = build()
    graph.invoke(inputs(), {"configurable": {"thread_id": str(uuid.uuid4())}})
    assert len(explicit) > 1
    assert tree(exporter.get_finished_spans()) == explicit


def test_uninstrument_puts_the_originals_back(
    tracing: Any, instrumentor: LangGraphInstrumentor
) -> None:
    """uninstrument() restores StateGraph.compile and entrypoint.__call__ exactly."""
    provider, _ = tracing
    compile_before = StateGraph.__dict__["compile"]
    call_before = entrypoint.__dict__["__call__"]
    _activate(instrumentor, provider)
    assert StateGraph.__dict__["compile"] is not compile_before
    instrumentor.uninstrument()
    assert StateGraph.__dict__["compile"] is compile_before
    assert entrypoint.__dict__["__call__"] is call_before


@pytest.mark.parametrize(("name", "build", "inputs"), CASES, ids=[c[0] for c in CASES])
def test_compiled_after_uninstrument_emits_nothing(
    name: str,
    build: Callable[[], Pregel[Any, Any, Any, Any]],
    inputs: Callable[[], Any],
    tracing: Any,
    instrumentor: LangGraphInstrumentor,
) -> None:
    """A graph compiled after uninstrument() is bare: no span, no metric sample."""
    provider, exporter = tracing
    registry = _activate(instrumentor, provider)
    instrumentor.uninstrument()
    graph = build()
    graph.invoke(inputs(), {"configurable": {"thread_id": str(uuid.uuid4())}})
    assert not hasattr(type(graph), "_lg_otel")
    assert exporter.get_finished_spans() == ()
    samples = [s for m in registry.collect() for s in m.samples if s.value]
    assert samples == []


def test_graph_compiled_before_activation_is_untouched(
    tracing: Any, instrumentor: LangGraphInstrumentor
) -> None:
    """A graph compiled before activation stays bare and emits nothing."""
    provider, exporter = tracing
    before = linear()
    _activate(instrumentor, provider)
    before.invoke({"log": []})
    assert exporter.get_finished_spans() == ()
    lg_otel.instrument(before, tracer_provider=provider).invoke({"log": []})
    assert len(by_name(exporter.get_finished_spans(), "invoke_workflow linear")) == 1


def test_warns_once_about_module_graphs_compiled_before(
    tracing: Any, instrumentor: LangGraphInstrumentor
) -> None:
    """Activation names module-level graphs it cannot reach, in one warning."""
    provider, _ = tracing
    module = type(sys)("lg_otel_test_app")
    module.graph = linear()  # type: ignore[attr-defined]
    module.other = nested()  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        with pytest.warns(UserWarning, match="compiled before") as caught:
            _activate(instrumentor, provider)
    finally:
        del sys.modules[module.__name__]
    assert len(caught) == 1
    assert "lg_otel_test_app.graph" in str(caught[0].message)
    assert "lg_otel_test_app.other" in str(caught[0].message)
    assert "wrap each with instrument(graph)" in str(caught[0].message)


def test_no_warning_without_graphs_compiled_before(
    tracing: Any, instrumentor: LangGraphInstrumentor
) -> None:
    """Activating with no stray module-level graph warns nothing."""
    provider, _ = tracing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _activate(instrumentor, provider)


def test_explicit_instrument_of_a_wrapped_graph_warns_and_returns_it(
    tracing: Any, instrumentor: LangGraphInstrumentor
) -> None:
    """lg_otel.instrument() on a graph the instrumentor wrapped warns, same object."""
    provider, exporter = tracing
    _activate(instrumentor, provider)
    graph = linear()
    with pytest.warns(UserWarning, match="already instrumented"):
        again = lg_otel.instrument(graph, tracer_provider=provider)
    assert again is graph
    again.invoke({"log": []})
    assert len(by_name(exporter.get_finished_spans(), "invoke_workflow linear")) == 1


def test_graph_compiled_inside_a_traced_run_adds_no_run_span(
    tracing: Any, instrumentor: LangGraphInstrumentor
) -> None:
    """A subgraph compiled and invoked inside a node passes through the outer run."""
    provider, exporter = tracing
    _activate(instrumentor, provider)

    def runs_a_graph(state: S) -> dict[str, Any]:
        inner = linear()  # compiled now, while active: instrumented too
        return {"log": inner.invoke({"log": []})["log"]}

    g = StateGraph(S)
    g.add_node("outer_node", runs_a_graph)
    g.add_edge(START, "outer_node")
    g.compile(name="outer").invoke({"log": []})
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans if s.name.startswith(n.SPAN_RUN)] == [
        "invoke_workflow outer"
    ]
    assert len(by_name(spans, "invoke_node outer_node")) == 1


def test_instrument_failure_leaves_the_compiled_graph_bare(
    tracing: Any, instrumentor: LangGraphInstrumentor
) -> None:
    """If instrumenting fails (a clashing registry), compile still returns the graph."""
    provider, exporter = tracing
    registry = CollectorRegistry()
    Counter("langgraph_run_duration_seconds", "clash", registry=registry)
    instrumentor.instrument(tracer_provider=provider, registry=registry)
    with pytest.warns(RuntimeWarning, match="left untraced"):
        graph = linear()
    assert graph.invoke({"log": []}) == {"log": ["a", "b", "c"]}
    assert exporter.get_finished_spans() == ()


def test_options_reach_instrument(
    tracing: Any, instrumentor: LangGraphInstrumentor
) -> None:
    """Config given to instrument() applies to every graph compiled afterwards."""
    provider, exporter = tracing
    _activate(instrumentor, provider, config=lg_otel.Config(graph_name="zero"))
    linear().invoke({"log": []})
    assert len(by_name(exporter.get_finished_spans(), "invoke_workflow zero")) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tracer_provider": "otlp"}, "tracer_provider="),
        ({"meter_provider": 3}, "meter_provider="),
        ({"logger_provider": object()}, "logger_provider="),
        ({"registry": {}}, "registry="),
        ({"config": {"graph_name": "x"}}, "config="),
        ({"tracer": None}, "unexpected argument"),
    ],
    ids=["tracer_provider", "meter_provider", "logger_provider", "registry", "config",
         "unknown"],
)  # fmt: skip
def test_bad_arguments_raise_at_activation(
    kwargs: dict[str, Any], message: str, instrumentor: LangGraphInstrumentor
) -> None:
    """A wrong option raises TypeError naming it, and nothing is patched."""
    compile_before = StateGraph.__dict__["compile"]
    with pytest.raises(TypeError, match=message):
        instrumentor.instrument(**kwargs)
    assert StateGraph.__dict__["compile"] is compile_before
    assert not instrumentor.is_instrumented_by_opentelemetry


def test_dependencies_match_the_package_requirement() -> None:
    """instrumentation_dependencies() is the package's own langgraph requirement."""
    declared = [
        Requirement(r) for r in requires("lg_otel") or [] if r.startswith("langgraph")
    ]
    declared = [d for d in declared if d.name == "langgraph" and not d.marker]
    deps = [
        Requirement(r) for r in LangGraphInstrumentor().instrumentation_dependencies()
    ]
    assert [(d.name, d.specifier) for d in deps] == [
        (d.name, d.specifier) for d in declared
    ]
    assert get_dependency_conflicts(list(INSTRUMENTS)) is None


def test_dependency_conflict_detected_for_an_unsupported_langgraph() -> None:
    """The requirement strings are real: a langgraph outside them is a conflict."""
    conflict = get_dependency_conflicts(["langgraph >= 99"])
    assert conflict is not None
    assert "langgraph" in str(conflict)


def test_entry_point_is_registered() -> None:
    """opentelemetry-instrument finds the instrumentor under its documented name."""
    found = [
        e
        for e in entry_points(group="opentelemetry_instrumentor")
        if e.name == n.INSTRUMENTOR_NAME
    ]
    assert len(found) == 1
    assert found[0].load() is LangGraphInstrumentor


def test_import_lg_otel_leaves_the_instrumentor_out() -> None:
    """`import lg_otel` imports neither lg_otel.instrumentor nor its extra."""
    code = (
        "import sys, lg_otel; "
        "print(sorted(m for m in sys.modules if m == 'lg_otel.instrumentor' "
        "or m.startswith('opentelemetry.instrumentation')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "[]"
