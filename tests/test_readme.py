"""The README's tables and commands agree with the code (they cannot drift)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from lg_otel import Config
from lg_otel import _metrics as m
from lg_otel import _names as n

README = (Path(__file__).parent.parent / "README.md").read_text()
SPECS = m.SPECS


def _rows(header: str) -> list[list[str]]:
    section = README.split(header, 1)[1]
    rows: list[list[str]] = []
    for line in section.splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if set(cells[0]) <= {"-"}:
            continue
        rows.append(cells)
    return rows


def test_starts_with_the_two_commands() -> None:
    """The README opens with exactly the demo and test commands."""
    block = README.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in block] == [
        "./run demo",
        "./run test",
    ]
    assert README.index("```bash") < README.index("##")


def test_metric_table_matches_the_code() -> None:
    """Every instrument is in the table with its Prometheus name, type and unit."""
    rows = {r[0].strip("`"): r for r in _rows("| OTel instrument |")}
    assert set(rows) == {spec.name for spec in SPECS}
    for spec in SPECS:
        row = rows[spec.name]
        series = m.prometheus_name(spec)
        if spec.kind.__name__ == "Counter":
            series += "_total"
        assert row[1] == f"`{series}`", spec.name
        assert row[2].split()[0] == spec.kind.__name__.lower()
        assert row[3] == f"`{spec.unit}`"
        labels = set(re.findall(r"`([a-z_]+)`", row[4]))
        if "same" in row[4]:
            labels |= {label.replace(".", "_") for label in m._LLM}
        assert labels == {label.replace(".", "_") for label in spec.labels}, spec.name


def test_every_log_event_is_documented() -> None:
    """Every log event name in the names module has a row in the logs table."""
    documented = {r[0].strip("`") for r in _rows("| event | level | fields |")}
    events = {v for k, v in vars(n).items() if k.startswith("LOG_")}
    assert documented == events


def test_every_setting_is_documented() -> None:
    """Every Config field and LG_OTEL_* variable is in the configuration table."""
    rows = _rows("| `Config` field |")
    fields = {r[0].strip("`") for r in rows}
    assert fields == {f.name for f in dataclasses.fields(Config)}
    variables = {v for k, v in vars(n).items() if k.startswith("ENV_")}
    for variable in variables:
        assert f"`{variable}`" in README, variable
