"""The public surface: instrument()'s contract, bad input, exports, layering."""

from __future__ import annotations

import ast
import pathlib
import uuid
import warnings
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph

import lg_otel
from tests.conftest import by_name
from tests.graphs import SHAPES, S, human, linear, nested


def test_same_class_and_original_untouched(tracing: Any) -> None:
    """The traced graph is an instance of the original's class; the original isn't."""
    provider, _ = tracing
    original = linear()
    traced = lg_otel.instrument(original, tracer_provider=provider)
    assert isinstance(traced, type(original))
    assert traced is not original
    assert type(original).__name__ == type(traced).__name__
    assert not hasattr(type(original), "_lg_otel")


def test_idempotent_with_warning(tracing: Any) -> None:
    """Instrumenting twice warns and returns the same object."""
    provider, _ = tracing
    traced = lg_otel.instrument(linear(), tracer_provider=provider)
    with pytest.warns(UserWarning, match="already instrumented"):
        again = lg_otel.instrument(traced, tracer_provider=provider)
    assert again is traced


def test_derived_graphs_stay_instrumented(tracing: Any) -> None:
    """with_config() and copy() keep tracing (LangGraph rebuilds via __class__)."""
    provider, exporter = tracing
    traced = lg_otel.instrument(linear(), tracer_provider=provider)
    derived = traced.with_config({"tags": ["x"]}).copy()
    derived.invoke({"log": []})
    assert len(by_name(exporter.get_finished_spans(), "invoke_workflow linear")) == 1


def test_get_state_still_works(tracing: Any) -> None:
    """State APIs of the graph work on the traced copy."""
    provider, _ = tracing
    traced = lg_otel.instrument(human(), tracer_provider=provider)
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
    traced.invoke({"log": []}, config)
    state = traced.get_state(config)
    assert state.next == ("ask",)


def test_instrumented_subgraph_inside_instrumented_graph(tracing: Any) -> None:
    """An instrumented graph used as a node adds no second run span."""
    provider, exporter = tracing
    inner = lg_otel.instrument(linear(), tracer_provider=provider)
    g = StateGraph(S)
    g.add_node("sub", inner)
    g.add_edge(START, "sub")
    outer = lg_otel.instrument(g.compile(name="outer"), tracer_provider=provider)
    outer.invoke({"log": []})
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans if s.name.startswith("invoke_workflow")] == [
        "invoke_workflow outer"
    ]
    assert len(by_name(spans, "invoke_node a")) == 1


async def test_astream_events_is_traced(tracing: Any) -> None:
    """astream_events (built on astream) is traced and yields events as before."""
    provider, exporter = tracing
    traced = lg_otel.instrument(nested(), tracer_provider=provider)
    events = [
        e["event"] async for e in traced.astream_events({"log": []}, version="v2")
    ]
    bare = [
        e["event"] async for e in nested().astream_events({"log": []}, version="v2")
    ]
    assert events == bare
    assert len(by_name(exporter.get_finished_spans(), "invoke_workflow nested")) == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (StateGraph(S), r"call \.compile\(\) first"),
        (None, "expected a compiled LangGraph graph"),
        (lambda state: state, "expected a compiled LangGraph graph"),
    ],
    ids=["uncompiled", "none", "function"],
)
def test_not_a_graph_is_a_type_error(bad: Any, message: str) -> None:
    """instrument() on something that is not a compiled graph says what to pass."""
    with pytest.raises(TypeError, match=message):
        lg_otel.instrument(bad)


def test_bad_keyword_arguments() -> None:
    """Wrong config or provider types raise TypeError naming the argument."""
    # Wrong types on purpose (hence Any): the TypeError is what is tested.
    bad_config: Any = {"graph_name": "x"}
    with pytest.raises(TypeError, match="config="):
        lg_otel.instrument(linear(), config=bad_config)
    bad_provider: Any = "otlp"
    with pytest.raises(TypeError, match="tracer_provider="):
        lg_otel.instrument(linear(), tracer_provider=bad_provider)
    with pytest.raises(TypeError):
        # Positional past the graph: mypy rejects the call, as it must.
        lg_otel.instrument(linear(), lg_otel.Config())  # type: ignore[call-arg, arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"graph_name": ""}, {"graph_name": 3}, {"max_interrupted_threads": -1}],
)
def test_config_validates_fields(kwargs: dict[str, Any]) -> None:
    """Every Config field is validated with a message naming the field."""
    with pytest.raises(ValueError, match=f"Config.{next(iter(kwargs))}"):
        lg_otel.Config(**kwargs)


def test_graph_name_default_and_override(tracing: Any) -> None:
    """A graph with no name is 'LangGraph'; Config.graph_name overrides it."""
    provider, exporter = tracing
    g = StateGraph(S)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_edge(START, "a")
    lg_otel.instrument(g.compile(), tracer_provider=provider).invoke({"log": []})
    lg_otel.instrument(
        g.compile(), tracer_provider=provider, config=lg_otel.Config(graph_name="chat")
    ).invoke({"log": []})
    names = sorted(
        s.name for s in exporter.get_finished_spans() if "workflow" in s.name
    )
    assert names == ["invoke_workflow LangGraph", "invoke_workflow chat"]


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and names only public, existing objects."""
    assert lg_otel.__all__ == sorted(lg_otel.__all__)
    for name in lg_otel.__all__:
        assert not name.startswith("_")
        assert getattr(lg_otel, name).__doc__


PURE = ["_parse.py", "_reshape.py", "_records.py", "_tracker.py"]
FORBIDDEN = (
    "opentelemetry",
    "prometheus_client",
    "structlog",
    "langgraph",
    "langchain",
)


@pytest.mark.parametrize("module", PURE)
def test_pure_core_imports_no_outside_library(module: str) -> None:
    """Parsing, reshaping and tracking import no exporter and no LangGraph."""
    path = pathlib.Path(lg_otel.__file__).parent / module
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not name.startswith(FORBIDDEN), f"{module} imports {name}"


def test_names_live_in_the_names_module() -> None:
    """No span-name, attribute-key or metric-name literal outside _names.py."""
    root = pathlib.Path(lg_otel.__file__).parent
    needles = ("invoke_workflow", "invoke_node", "gen_ai.", "langgraph.", "lg_otel.i")
    for path in root.glob("*.py"):
        if path.name == "_names.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
            ):
                for needle in needles:
                    assert needle not in node.value, f"{path.name}: {node.value!r}"


def test_no_warnings_on_a_clean_run(tracing: Any) -> None:
    """An instrumented run under warnings-as-errors emits no warning."""
    provider, _ = tracing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in SHAPES[:5]:
            lg_otel.instrument(shape.build(), tracer_provider=provider).invoke(
                shape.inputs[0]
            )
