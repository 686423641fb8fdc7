"""Strict checkpoint deserialisation revives the state's own types, as bare."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver

ROOT = Path(__file__).resolve().parent.parent

#: Strict msgpack allow-lists arrived in later LangGraph releases than our oldest.
HAS_STRICT = hasattr(BaseCheckpointSaver, "with_allowlist") and (
    importlib.util.find_spec("langgraph._internal._serde") is not None
)


@pytest.mark.skipif(not HAS_STRICT, reason="this LangGraph has no strict msgpack")
def test_resume_under_strict_msgpack_keeps_custom_types() -> None:
    """Resumed subgraph/config-checkpointer runs see Detail, with nothing blocked."""
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.strict_msgpack_probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.pop("strict") is True, "the setting did not take effect"
    assert set(result) == {
        "subgraph-bare",
        "subgraph-traced",
        "config-bare",
        "config-traced",
    }
    for case, seen in result.items():
        assert seen == {"seen": "Detail", "blocked": []}, case
