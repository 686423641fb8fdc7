"""The instrumented copy carries everything the compiled graph has, and no more."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint, task
from langgraph.pregel import Pregel

import lg_otel
from lg_otel.testing import SimulatedChatModel
from tests.graphs import SHAPES, agent_model
from tests.typed_graphs import TYPED_SHAPES


class ToolModel(SimulatedChatModel):
    """The agent model, accepting the tools the prebuilt agents bind."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        """Tools change nothing: the scripted answers already call them."""
        return self


def tool_model() -> ToolModel:
    """A scripted tool-calling model the prebuilt agents can bind tools to."""
    return ToolModel(messages=agent_model().messages)


def schema_of(get: Callable[[], Any]) -> Any:
    """A JSON schema, or the type of the error making it raises (bare or traced)."""
    try:
        return get()
    except Exception as exc:  # noqa: BLE001 - the failure itself is compared
        return type(exc).__name__


@tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


def react_agent() -> Pregel[Any, Any, Any, Any]:
    """A graph from langgraph.prebuilt.create_react_agent."""
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        # Deprecated in favour of langchain's create_agent on newer releases only.
        warnings.simplefilter("ignore")
        return create_react_agent(tool_model(), [echo], name="react")


def langchain_agent() -> Pregel[Any, Any, Any, Any]:
    """A graph from langchain.agents.create_agent."""
    from langchain.agents import create_agent

    return create_agent(tool_model(), [echo], name="lc_agent")


def functional() -> Pregel[Any, Any, Any, Any]:
    """A graph from the functional API (@entrypoint and @task)."""

    @task
    def double(x: int) -> int:
        return x * 2

    @entrypoint(checkpointer=InMemorySaver())
    def workflow(x: int) -> int:
        return double(x).result()

    return workflow


BUILDERS: list[tuple[str, Callable[[], Pregel[Any, Any, Any, Any]]]] = [
    *((s.name, s.build) for s in SHAPES + TYPED_SHAPES),
    ("create_react_agent", react_agent),
    ("create_agent", langchain_agent),
    ("entrypoint", functional),
]


@pytest.mark.parametrize(("name", "build"), BUILDERS, ids=[b[0] for b in BUILDERS])
def test_copy_has_every_attribute(
    name: str, build: Callable[[], Pregel[Any, Any, Any, Any]], tracing: Any
) -> None:
    """Every non-None attribute of the compiled graph is on its copy, and equal."""
    graph = build()
    traced = lg_otel.instrument(graph, tracer_provider=tracing[0])
    original = vars(graph)
    copied = vars(traced)
    assert set(copied) == set(original)
    for key, value in original.items():
        if value is None:
            continue
        assert copied[key] is value or copied[key] == value, key


@pytest.mark.parametrize(("name", "build"), BUILDERS, ids=[b[0] for b in BUILDERS])
def test_copy_keeps_class_surface(
    name: str, build: Callable[[], Pregel[Any, Any, Any, Any]], tracing: Any
) -> None:
    """Class, name, schemas, config specs and drawing are the original's."""
    graph = build()
    traced = lg_otel.instrument(graph, tracer_provider=tracing[0])
    assert isinstance(traced, type(graph))
    assert type(traced).__name__ == type(graph).__name__
    assert type(traced).__module__ == type(graph).__module__
    assert traced.get_name() == graph.get_name()
    assert traced.config == graph.config
    assert traced.config_specs == graph.config_specs
    assert schema_of(traced.get_input_jsonschema) == schema_of(
        graph.get_input_jsonschema
    )
    assert schema_of(traced.get_output_jsonschema) == schema_of(
        graph.get_output_jsonschema
    )
    assert traced.get_graph().draw_mermaid() == graph.get_graph().draw_mermaid()


def test_copy_of_subscripted_generic_keeps_orig_class(tracing: Any) -> None:
    """A graph made through a subscripted class keeps its __orig_class__."""
    graph = SHAPES[0].build()
    # Subscripting the runtime class (type[...] is not subscriptable to mypy).
    cls: Any = type(graph)
    alias = cls[dict, None, dict, dict]
    typed = alias(**{k: v for k, v in vars(graph).items() if not k.startswith("_")})
    assert typed.__orig_class__ is alias
    traced = lg_otel.instrument(typed, tracer_provider=tracing[0])
    assert traced.__orig_class__ is alias


@pytest.mark.parametrize("method", ["copy", "with_config"])
def test_derived_copies_match_bare_derived_copies(method: str, tracing: Any) -> None:
    """copy()/with_config() of the traced graph keep what the bare one's keep."""
    graph = TYPED_SHAPES[0].build()
    traced = lg_otel.instrument(graph, tracer_provider=tracing[0])
    bare_derived = getattr(graph, method)()
    traced_derived = getattr(traced, method)()
    assert type(traced_derived) is type(traced)
    assert vars(traced_derived).keys() == vars(bare_derived).keys()
    for key, value in vars(bare_derived).items():
        assert (vars(traced_derived)[key] is None) == (value is None), key
