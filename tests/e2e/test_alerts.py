"""End to end: first tokens slow down, the TTFT burn alerts page, then resolve.

Prometheus scrapes the example service and evaluates the shipped rules plus a test-only
copy of the page-level TTFT burn alert with 30 s / 10 s windows
(``fixtures/short_windows.yml``), under the shipped prometheus.yml's external labels and
alert relabelling with ``runbook_base_url`` pointing at this checkout's RUNBOOK.md. The
load generator makes the simulated model's first token slower than the 2.56 s SLO, then
fast again; Alertmanager delivers firing and resolved notifications to a webhook.

With minutes of data every window of a burn alert sees the same slow ratio, so the
shipped 1 h, 6 h and 3 d burn alerts fire as well as the short-window copy, in no fixed
order. They resolve by dilution: 18 slow runs among 448 is 4.0 %, under the fast
(14.4 %) and slow (6 %) burn thresholds and over the ticket's 1 %. (One seed run before
the healthy phase makes Prometheus see the series first, so every later run counts.)
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

from tests.e2e.stack import ROOT, Alertmanager, App, Prometheus, Webhook, wait_for

pytestmark = pytest.mark.e2e

DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules"
SHORT_WINDOWS = Path(__file__).with_name("fixtures") / "short_windows.yml"
RUNBOOK_LABEL = "runbook_base_url"
#: The base the test configures: this checkout's runbook, so every link can be opened.
RUNBOOK_BASE = (DEPLOY / "RUNBOOK.md").as_uri()
SHORT = "LgOtelRunTTFTBudgetBurnFastShortWindow"
FAST = "LgOtelRunTTFTBudgetBurnFast"
SLOW = "LgOtelRunTTFTBudgetBurnSlow"
TICKET = "LgOtelRunTTFTBudgetBurnTicket"
#: Every alert the slow phase fires: its severity and its runbook heading (the
#: short-window copy is the fast burn and links the fast burn's entry).
FIRES = {
    SHORT: ("page", "lgotelrunttftbudgetburnfast"),
    FAST: ("page", "lgotelrunttftbudgetburnfast"),
    SLOW: ("page", "lgotelrunttftbudgetburnslow"),
    TICKET: ("ticket", "lgotelrunttftbudgetburnticket"),
}
#: The ones recovery resolves; the ticket's 3 d / 6 h ratio stays above 1 %.
RESOLVES = {SHORT, FAST, SLOW}
HEALTHY_RUNS, SLOW_RUNS, FAST_RUNS = 30, 18, 400
RUNS = "sum(langgraph_run_time_to_first_token_seconds_count)"
SLOW_RATIO = "lg_otel:run_ttft_slow_ratio:rate5m"


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


def _number(prometheus: Prometheus, promql: str) -> float | None:
    """The value of a one-element instant query (None when it has none)."""
    result = prometheus.query(promql)
    return float(result[0]["value"][1]) if result else None


def _alerts(hook: Webhook, status: str) -> dict[str, dict[str, Any]]:
    """The first delivered alert of each alertname with ``status``."""
    first: dict[str, dict[str, Any]] = {}
    for body in list(hook.received):
        for alert in body.get("alerts", []):
            if alert["status"] == status:
                first.setdefault(alert["labels"]["alertname"], alert)
    return first


def _wait(hook: Webhook, status: str, names: set[str], timeout: float) -> None:
    """Wait until every one of ``names`` was delivered with ``status`` (or give up:
    the tests then say which are missing)."""
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: names <= set(_alerts(hook, status)), timeout, status)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Healthy, slow, then recovered load; what Prometheus and the webhook saw."""
    tmp_path = tmp_path_factory.mktemp("alerts")
    shipped = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    env = {"SIM_FIRST_CHUNK_DELAY": "0.05", "SIM_CHUNK_DELAY": "0.001"}
    seen: dict[str, Any] = {}
    with (
        Webhook() as hook,
        Alertmanager(tmp_path, hook.url) as alertmanager,
        App(tmp_path, env) as app,
        Prometheus(
            tmp_path,
            [f"127.0.0.1:{app.port}"],
            rule_files=[RULES / "lg_otel.yml", SHORT_WINDOWS],
            alertmanager=f"127.0.0.1:{alertmanager.port}",
            external_labels={
                **shipped["global"]["external_labels"],
                RUNBOOK_LABEL: RUNBOOK_BASE,
            },
            alert_relabel_configs=shipped["alerting"]["alert_relabel_configs"],
        ) as prometheus,
    ):
        app.chat(thread="seed")
        wait_for(lambda: _number(prometheus, RUNS) == 1, 30, "the seed run's scrape")
        seen["healthy"] = load(app, 0.05, requests=HEALTHY_RUNS, seconds=10)
        runs = 1 + seen["healthy"]["requests"]
        wait_for(lambda: _number(prometheus, RUNS) == runs, 30, "the healthy runs")
        # Every rule group evaluated on data where the healthy runs had all ended:
        # an evaluation made while they ran may hold LgOtelStreamsStalled pending
        # (runs in flight, none finished yet); `for: 10m` keeps it from firing.
        scraped = time.time()
        wait_for(lambda: prometheus.evaluated_after(scraped), 30, "rule evaluation")
        # NaN until the rules have evaluated a window that holds the healthy runs.
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: _number(prometheus, SLOW_RATIO) == 0, 30, SLOW_RATIO)
        seen["healthy_ratio"] = prometheus.query(SLOW_RATIO)
        seen["healthy_alerts"] = prometheus.alerts()

        seen["slow"] = load(app, 3.0, requests=SLOW_RUNS, seconds=20)
        _wait(hook, "firing", set(FIRES), 60)

        seen["recovered"] = load(app, 0.05, requests=FAST_RUNS, seconds=45)
        _wait(hook, "resolved", RESOLVES, 90)
        seen["firing"] = _alerts(hook, "firing")
        seen["resolved"] = _alerts(hook, "resolved")
    return seen


def test_healthy_runs_evaluate_to_zero_and_alert_nobody(run: dict[str, Any]) -> None:
    """Fast first tokens: the shipped slow ratio is 0 and no alert is pending."""
    assert run["healthy"]["requests"] == HEALTHY_RUNS
    assert run["healthy"]["error_events"] == 0
    ratios = run["healthy_ratio"]
    assert {r["metric"]["langgraph_graph"]: r["value"][1] for r in ratios} == {
        "sse_chat": "0"
    }
    assert run["healthy_alerts"] == []


def test_slow_first_tokens_fire_every_ttft_burn_alert(run: dict[str, Any]) -> None:
    """Every TTFT burn alert, shipped and short-window, fires; no other alert."""
    assert run["slow"]["requests"] == SLOW_RUNS
    assert run["slow"]["first_token_p50"] > 2.56
    assert set(run["firing"]) == set(FIRES)


def test_recovery_resolves_the_page_level_burns(run: dict[str, Any]) -> None:
    """Fast runs again: both page burns and the short-window copy resolve."""
    assert run["recovered"]["requests"] == FAST_RUNS
    assert run["recovered"]["first_token_p50"] < 2.56
    assert set(run["resolved"]) == RESOLVES


def test_alerts_carry_graph_and_severity(run: dict[str, Any]) -> None:
    """Each delivered alert names the graph and the severity its rule gives it."""
    for name, alert in run["firing"].items():
        assert alert["labels"]["langgraph_graph"] == "sse_chat", name
        assert alert["labels"]["severity"] == FIRES[name][0], name


def test_runbook_url_is_the_configured_base_plus_a_runbook_heading(
    run: dict[str, Any],
) -> None:
    """runbook_url = the configured runbook_base_url + #<a heading in that file>."""
    assert run["firing"]
    for name, alert in run["firing"].items():
        url = alert["annotations"]["runbook_url"]
        assert url == f"{RUNBOOK_BASE}#{FIRES[name][1]}", name
        page = Path(urlsplit(url).path).read_text()
        assert re.search(rf"^## {urlsplit(url).fragment}$", page, re.MULTILINE), url


def test_runbook_base_url_is_not_an_alert_label(run: dict[str, Any]) -> None:
    """The shipped alert relabelling keeps the setting out of alert labels."""
    assert run["firing"]
    for name, alert in run["firing"].items():
        assert RUNBOOK_LABEL not in alert["labels"], name
