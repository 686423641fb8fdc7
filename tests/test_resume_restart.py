"""Interrupt in one process, resume in another: the resumed run links back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig

import lg_otel
from lg_otel import _names as n
from tests.conftest import by_name
from tests.graphs import human

SCRIPT = textwrap.dedent(
    """
    import json, sqlite3, sys
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.types import Command
    import lg_otel
    from lg_otel.testing import in_memory_tracing
    from tests.graphs import human

    db, thread, step = sys.argv[1], sys.argv[2], sys.argv[3]
    saver = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
    graph = human().copy(update={"checkpointer": saver})
    provider, exporter = in_memory_tracing()
    traced = lg_otel.instrument(
        graph, tracer_provider=provider, config=lg_otel.Config(persist_links=True)
    )
    config = {"configurable": {"thread_id": thread}}
    inp = {"log": []} if step == "start" else Command(resume="yes")
    out = traced.invoke(inp, config)
    spans = exporter.get_finished_spans()
    (run,) = [s for s in spans if s.name == "invoke_workflow human"]
    print(json.dumps({
        "trace_id": f"{run.context.trace_id:032x}",
        "span_id": f"{run.context.span_id:016x}",
        "status": run.attributes["langgraph.status"],
        "conversation": run.attributes["gen_ai.conversation.id"],
        "links": [[f"{l.context.trace_id:032x}", f"{l.context.span_id:016x}"]
                  for l in run.links],
        "log": out["log"],
    }))
    """
)


def _run(db: Path, thread: str, step: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(db), thread, step],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
    )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_resume_in_a_new_process_links_to_the_interrupted_run(tmp_path: Path) -> None:
    """sqlite checkpointer, two processes: link and conversation id survive."""
    db, thread = tmp_path / "checkpoints.sqlite", str(uuid.uuid4())
    first = _run(db, thread, "start")
    second = _run(db, thread, "resume")
    assert first["status"] == n.STATUS_INTERRUPTED
    assert second["status"] == n.STATUS_OK
    assert second["log"][-1] == "finish"
    assert second["links"] == [[first["trace_id"], first["span_id"]]]
    assert first["conversation"] == second["conversation"] == thread


def test_links_are_not_persisted_by_default(tracing: Any) -> None:
    """Without persist_links nothing is added to what the graph stores."""
    provider, _ = tracing
    graph = lg_otel.instrument(human(), tracer_provider=provider)
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
    graph.invoke({"log": []}, config)
    metadata = graph.get_state(config).metadata
    assert metadata is not None
    assert n.CHECKPOINT_LINK_KEY not in metadata


def test_persisted_link_in_checkpoint_metadata_only(tracing: Any) -> None:
    """With persist_links the key is in checkpoint metadata; state is unchanged."""
    provider, exporter = tracing
    bare = human()
    graph = lg_otel.instrument(
        human(), tracer_provider=provider, config=lg_otel.Config(persist_links=True)
    )
    config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
    bare_config: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
    graph.invoke({"log": []}, config)
    bare.invoke({"log": []}, bare_config)
    state = graph.get_state(config)
    (run,) = by_name(exporter.get_finished_spans(), "invoke_workflow human")
    ctx = run.context
    # lg_otel's key is not one CheckpointMetadata declares: read it as a Mapping.
    metadata: Mapping[str, object] | None = state.metadata
    assert metadata is not None
    assert metadata[n.CHECKPOINT_LINK_KEY] == (
        f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    )
    assert state.values == bare.get_state(bare_config).values
