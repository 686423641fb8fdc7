"""End to end: latency degrades, the TTFT alert fires and is delivered, then resolves.

Prometheus scrapes the example service and evaluates the shipped rules plus a
test-only copy of the page-level TTFT burn alert with 30 s / 10 s windows; the load
generator makes the simulated model's first token slower than the 2.56 s SLO, then
fast again; Alertmanager delivers firing and resolved notifications to a webhook.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import ROOT, Alertmanager, App, Prometheus, Webhook, wait_for

pytestmark = pytest.mark.e2e

RULES = ROOT / "deploy" / "prometheus" / "rules"
SHORT_WINDOWS = Path(__file__).with_name("fixtures") / "short_windows.yml"
ALERT = "LgOtelRunTTFTBudgetBurnFastShortWindow"


def load(app: App, first_chunk_delay: float, requests: int, seconds: float) -> Any:
    """Run examples/loadgen.py against the app (bounded); its JSON summary."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "loadgen.py"),
            "--url",
            app.url,
            "--clients",
            "6",
            "--requests",
            str(requests),
            "--seconds",
            str(seconds),
            "--first-chunk-delay",
            str(first_chunk_delay),
            "--chunk-delay",
            "0.001",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _notified(hook: Webhook, status: str) -> bool:
    return any(
        alert["labels"].get("alertname") == ALERT and alert["status"] == status
        for body in hook.received
        for alert in body.get("alerts", [])
    )


def test_ttft_alert_fires_then_resolves(tmp_path: Path) -> None:
    """Slow first tokens page through Alertmanager; recovery resolves the page."""
    rule_files = [RULES / "lg_otel.yml", SHORT_WINDOWS]
    env = {"SIM_FIRST_CHUNK_DELAY": "0.05", "SIM_CHUNK_DELAY": "0.001"}
    with (
        Webhook() as hook,
        Alertmanager(tmp_path, hook.url) as alertmanager,
        App(tmp_path, env) as app,
        Prometheus(
            tmp_path,
            [f"127.0.0.1:{app.port}"],
            rule_files=rule_files,
            alertmanager=f"127.0.0.1:{alertmanager.port}",
        ) as prometheus,
    ):
        healthy = load(app, 0.05, requests=30, seconds=10)
        assert healthy["error_events"] == 0
        assert not _notified(hook, "firing")

        slow = load(app, 3.0, requests=18, seconds=20)
        assert slow["first_token_p50"] > 2.56
        wait_for(lambda: _notified(hook, "firing"), 60, "the firing notification")
        # The shipped rules are evaluated too: their recording rules have values.
        assert prometheus.query("lg_otel:run_ttft_slow_ratio:rate5m")

        recovered = load(app, 0.05, requests=400, seconds=45)
        assert recovered["first_token_p50"] < 2.56
        wait_for(lambda: _notified(hook, "resolved"), 90, "the resolved notification")
        firing = [
            alert
            for body in hook.received
            for alert in body.get("alerts", [])
            if alert["status"] == "firing"
        ]
        assert firing[0]["labels"]["langgraph_graph"] == "sse_chat"
        assert firing[0]["labels"]["severity"] == "page"
        assert firing[0]["annotations"]["runbook_url"].endswith(
            "#lgotelrunttftbudgetburnfast"
        )
