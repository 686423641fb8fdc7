"""Behaviour settings: a frozen dataclass, validated when it is built."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Config:
    """How lg_otel behaves for one instrumented graph.

    Attributes:
        graph_name: Name used in span names and metric labels; defaults to the
            graph's own name (``graph.get_name()``, LangGraph's default is
            ``LangGraph``).
        max_interrupted_threads: How many threads' interrupted-run span contexts
            are remembered in memory, so that a resumed run can link to the run
            it resumes. Oldest entries are forgotten first.
    """

    graph_name: str | None = None
    max_interrupted_threads: int = 10_000

    def __post_init__(self) -> None:
        """Reject bad values at setup, naming the field and the fix."""
        if self.graph_name is not None and (
            not isinstance(self.graph_name, str) or not self.graph_name.strip()
        ):
            raise ValueError(
                "Config.graph_name must be a non-empty string or None "
                f"(got {self.graph_name!r}); pass None to use the graph's own name"
            )
        if (
            not isinstance(self.max_interrupted_threads, int)
            or isinstance(self.max_interrupted_threads, bool)
            or self.max_interrupted_threads < 0
        ):
            raise ValueError(
                "Config.max_interrupted_threads must be an int >= 0 "
                f"(got {self.max_interrupted_threads!r})"
            )
