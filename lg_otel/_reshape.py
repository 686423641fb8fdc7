"""Give the caller exactly the items the bare graph would have yielded.

The tap asks LangGraph for more than the caller did (extra modes, subgraph parts);
this module decides, per part, whether the caller would have seen it and in which
shape. It mirrors LangGraph's ``pregel.main._output`` (1.1-1.2): membership is
``mode in stream_mode`` (a string mode means substring membership, as there), and the
v1 shape depends on ``isinstance(stream_mode, list)``, exactly as there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lg_otel._parse import Part

#: Modes the tap adds for itself.
TAP_MODES: tuple[str, ...] = ("tasks",)


@dataclass(frozen=True, slots=True)
class Request:
    """What the caller asked for, with ``stream_mode`` already defaulted."""

    stream_mode: str | Sequence[str]
    subgraphs: bool
    version: str

    def modes(self) -> set[str]:
        """The caller's modes as a set (LangGraph's own ``_defaults`` reading)."""
        if isinstance(self.stream_mode, str):
            return {self.stream_mode}
        return set(self.stream_mode)

    def tap_modes(self, extra: Sequence[str] = TAP_MODES) -> list[str]:
        """The modes the tap asks LangGraph for: the caller's plus its own."""
        modes = self.modes()
        return sorted(modes.union(extra))

    def wants(self, part: Part) -> bool:
        """Whether the bare graph would have yielded this part to the caller."""
        return part.mode in self.stream_mode and (self.subgraphs or not part.ns)

    def shape(self, part: Part, item: object) -> Any:
        """The item in the caller's shape; ``item`` is the tap's raw item."""
        if self.version == "v2":
            return item
        listed = isinstance(self.stream_mode, list)
        if self.subgraphs and listed:
            return (part.ns, part.mode, part.payload)
        if listed:
            return (part.mode, part.payload)
        if self.subgraphs:
            return (part.ns, part.payload)
        return part.payload
