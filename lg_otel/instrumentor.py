"""Zero-code tracing: an OpenTelemetry instrumentor for LangGraph graphs.

``opentelemetry-instrument python app.py`` finds :class:`LangGraphInstrumentor`
through lg_otel's ``opentelemetry_instrumentor`` entry point (named ``lg_otel``) and
activates it before the application's code runs. From then on every graph compiled
in the process is returned already instrumented, exactly as
``lg_otel.instrument(graph)`` would do it, with the global tracer, meter and
prometheus_client registry. This is lg_otel's one global hook, and it is opt-in:
nothing is patched unless the application runs under ``opentelemetry-instrument``
or calls ``LangGraphInstrumentor().instrument()`` itself.

What it hooks: ``StateGraph.compile`` (and so ``create_react_agent``,
langchain's ``create_agent`` and every builder graph) and the functional API's
``@entrypoint``. Subgraphs compiled while it is active are instrumented too; an
instrumented graph running inside a traced run passes through, so they add no
second run span. Graphs built as a raw ``Pregel(...)`` are not hooked: wrap them
with ``lg_otel.instrument()``.

Graphs compiled *before* activation are left untouched and emit nothing. Call
``lg_otel.instrument()`` on them, or compile them after activation;
``instrument()`` warns once when it finds such graphs as module globals.

``uninstrument()`` puts the original ``compile`` and ``entrypoint`` back: graphs
compiled afterwards are plain LangGraph graphs and emit nothing. Graphs compiled
while it was active are instrumented copies the application holds, and keep
tracing.

Needs the ``instrumentor`` extra (``pip install 'lg_otel[instrumentor]'``, that is
``opentelemetry-instrumentation``); ``opentelemetry-distro`` brings it along.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Collection
from typing import Any

from langgraph.func import entrypoint
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from prometheus_client import CollectorRegistry

from lg_otel._config import Config
from lg_otel._instrument import instrument
from lg_otel._tap import is_instrumented

#: What the instrumentor patches (the versions lg_otel supports).
INSTRUMENTS = ("langgraph >= 1.1, < 2",)
_OPTIONS = (
    "tracer_provider",
    "meter_provider",
    "registry",
    "config",
    "logger_provider",
)
# Modules whose globals are never the application's graphs.
_LIBRARIES = frozenset(
    ("langgraph", "langchain", "langchain_core", "lg_otel", "opentelemetry")
)
_MISSING = object()

_log = logging.getLogger("lg_otel")
_lock = threading.Lock()
#: instrument() keyword arguments while active; None when not.
_active: dict[str, Any] | None = None
#: (owner, attribute, what was in owner.__dict__ before, the wrapper installed).
_patched: list[tuple[type, str, Any, Any]] = []
_warned = False


def _traced(graph: Any) -> Any:
    """``graph`` instrumented if the instrumentor is active; never raises."""
    options = _active
    if options is None or not isinstance(graph, Pregel) or is_instrumented(graph):
        return graph
    try:
        return instrument(graph, **options)
    except Exception as exc:  # noqa: BLE001 - a compile must never fail for telemetry
        _log.debug("lg_otel instrumentor: graph left untraced: %r", exc, exc_info=exc)
        global _warned
        if not _warned:
            # Once: the same cause (a clashing registry, say) fails every compile.
            _warned = True
            warnings.warn(
                f"lg_otel: a compiled graph is left untraced: {exc}",
                RuntimeWarning,
                stacklevel=3,
            )
        return graph


def _wrap_compile(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def compile(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _traced(original(self, *args, **kwargs))

    return compile


def _wrap_entrypoint(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __call__(self: Any, func: Any) -> Any:
        return _traced(original(self, func))

    return __call__


#: The hooks: every LangGraph API that hands the caller a new compiled graph ends
#: in one of these two (``create_react_agent`` and ``create_agent`` call compile).
_HOOKS: tuple[tuple[type, str, Callable[[Any], Any]], ...] = (
    (StateGraph, "compile", _wrap_compile),
    (entrypoint, "__call__", _wrap_entrypoint),
)


def _check(options: dict[str, Any]) -> None:
    """The checks ``lg_otel.instrument()`` makes, at activation rather than compile."""
    where = "LangGraphInstrumentor().instrument"
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(
            f"{where}(): unexpected argument(s) {', '.join(unknown)}; "
            f"it takes {', '.join(_OPTIONS)}"
        )
    wants = {
        "tracer_provider": ("get_tracer", "an OpenTelemetry TracerProvider"),
        "meter_provider": ("get_meter", "an OpenTelemetry MeterProvider"),
        "logger_provider": ("get_logger", "an OpenTelemetry LoggerProvider"),
    }
    for key, (method, what) in wants.items():
        value = options.get(key)
        if value is not None and not hasattr(value, method):
            raise TypeError(
                f"{where}({key}=...): expected {what}, got {type(value).__name__}"
            )
    registry = options.get("registry")
    if registry not in (None, False) and not isinstance(registry, CollectorRegistry):
        raise TypeError(
            f"{where}(registry=...): expected a prometheus_client.CollectorRegistry "
            f"(or False to skip the prometheus_client path), "
            f"got {type(registry).__name__}"
        )
    config = options.get("config")
    if config is not None and not isinstance(config, Config):
        raise TypeError(
            f"{where}(config=...): expected lg_otel.Config, got {type(config).__name__}"
        )


def _compiled_before() -> list[str]:
    """Module globals holding uninstrumented compiled graphs (``module.name``).

    The usual way a graph escapes the instrumentor: ``graph = builder.compile()`` at
    import time, then ``LangGraphInstrumentor().instrument()`` in ``main()``.
    """
    found: list[str] = []
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in _LIBRARIES:
            continue
        try:
            namespace = vars(module)
            for attr, value in list(namespace.items()):
                # type(), not isinstance(): a proxy's __class__ may run code.
                if issubclass(type(value), Pregel) and not is_instrumented(value):
                    found.append(f"{name}.{attr}")
        except Exception:  # noqa: BLE001 - an odd module only hides its graphs
            continue
    return found


class LangGraphInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every LangGraph graph compiled while it is active.

    ``LangGraphInstrumentor().instrument(**options)`` takes ``lg_otel.instrument()``'s
    keyword arguments (``tracer_provider``, ``meter_provider``, ``registry``,
    ``config``, ``logger_provider``; the globals when left out) and applies them
    to every graph compiled afterwards. ``uninstrument()`` removes the hook.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        """The LangGraph versions this instrumentor supports."""
        return INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        global _active
        _check(kwargs)
        with _lock:
            for owner, attr, make in _HOOKS:
                before = owner.__dict__.get(attr, _MISSING)
                wrapper = make(getattr(owner, attr))
                setattr(owner, attr, wrapper)
                _patched.append((owner, attr, before, wrapper))
            _active = dict(kwargs)
        earlier = _compiled_before()
        if earlier:
            shown = ", ".join(earlier[:5]) + (" ..." if len(earlier) > 5 else "")
            warnings.warn(
                f"lg_otel: {len(earlier)} graph(s) compiled before "
                f"LangGraphInstrumentor().instrument() stay untraced ({shown}); "
                "compile them after it, or wrap each with instrument(graph) "
                "from lg_otel",
                UserWarning,
                stacklevel=3,
            )

    def _uninstrument(self, **kwargs: Any) -> None:
        global _active
        with _lock:
            _active = None
            while _patched:
                owner, attr, before, wrapper = _patched.pop()
                if owner.__dict__.get(attr) is not wrapper:
                    # Someone patched on top of us: leave theirs; ours is now inert.
                    continue
                if before is _MISSING:
                    delattr(owner, attr)
                else:
                    setattr(owner, attr, before)


__all__ = ["INSTRUMENTS", "LangGraphInstrumentor"]
