"""The wheel users install: lg_otel only, typed, with the OTLP exporters as extras.

The wheel is built from this tree with the project's own backend (hatchling, in the
test extra) and no registry; the install checks put it in a throwaway venv made by uv
(also in the test extra), from uv's cache when it has everything, as `./run` leaves it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from email.parser import Parser
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this tree, built offline."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-index"),
            *("--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(ROOT)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("lg_otel-*.whl")
    return built


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def _metadata(wheel: Path) -> tuple[list[Requirement], set[str]]:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"lg_otel-{version('lg_otel')}.dist-info/METADATA")
    message = Parser().parsestr(text.decode())
    requires = [Requirement(r) for r in message.get_all("Requires-Dist") or []]
    return requires, set(message.get_all("Provides-Extra") or [])


def test_wheel_holds_only_lg_otel(wheel: Path) -> None:
    """The wheel's top-level entries are lg_otel/ and its dist-info, nothing else."""
    tops = {name.split("/", 1)[0] for name in _names(wheel)}
    assert tops == {"lg_otel", f"lg_otel-{version('lg_otel')}.dist-info"}


def test_wheel_holds_every_module_and_py_typed(wheel: Path) -> None:
    """Every module of the source tree is in the wheel, with the py.typed marker."""
    source = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "lg_otel").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    shipped = set(_names(wheel))
    assert source <= shipped
    assert "lg_otel/py.typed" in shipped


def test_otlp_exporters_are_extras_only(wheel: Path) -> None:
    """No OTLP exporter nor grpcio is a hard dependency; the two extras add them."""
    requires, extras = _metadata(wheel)
    hard = {r.name for r in requires if not r.marker}
    assert not {name for name in hard if "exporter" in name or "grpc" in name}
    assert {"otlp", "otlp-grpc"} <= extras

    def of(extra: str) -> set[str]:
        return {
            r.name
            for r in requires
            if r.marker is not None and r.marker.evaluate({"extra": extra})
        }

    assert "opentelemetry-exporter-otlp-proto-http" in of("otlp")
    assert "opentelemetry-exporter-otlp-proto-grpc" in of("otlp-grpc")


@pytest.fixture(scope="module")
def plain_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with `pip install lg_otel`'s result: the wheel, no extras."""
    venv = tmp_path_factory.mktemp("plain") / "venv"
    uv = find_uv_bin()
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        check=True,
        timeout=120,
    )
    install = [
        uv,
        "pip",
        "install",
        "--quiet",
        "--python",
        str(venv / "bin" / "python"),
    ]
    # uv's cache holds every dependency once ./run has installed the project; the
    # registry is only asked when it does not (a cleared cache).
    done = subprocess.run(
        [*install, "--offline", str(wheel)], capture_output=True, timeout=300
    )
    if done.returncode != 0:
        subprocess.run([*install, str(wheel)], check=True, timeout=600)
    return venv / "bin" / "python"


def _run_plain(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -I: neither this checkout (cwd, PYTHONPATH) nor the user's site is importable,
    # so what runs is the installed wheel and its declared dependencies alone.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [str(python), "-I", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=environ,
    )


def test_plain_install_has_no_exporter_and_no_grpcio(
    plain_venv: Path, tmp_path: Path
) -> None:
    """A plain install resolves no OTLP exporter, grpcio or benchmarks package."""
    code = textwrap.dedent(
        """
        import importlib.metadata, importlib.util, json
        import lg_otel
        print(json.dumps({
            "lg_otel": lg_otel.__file__,
            "dists": sorted(d.metadata["Name"].lower()
                            for d in importlib.metadata.distributions()),
            "benchmarks": importlib.util.find_spec("benchmarks") is not None,
        }))
        """
    )
    done = _run_plain(plain_venv, "-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert not report["lg_otel"].startswith(str(ROOT))
    assert "lg_otel" in report["dists"]
    assert not [d for d in report["dists"] if "exporter" in d or "grpc" in d]
    assert report["benchmarks"] is False


def test_plain_install_configure_otlp_names_the_extra(
    plain_venv: Path, tmp_path: Path
) -> None:
    """configure(otlp_endpoint=...) without [otlp]: one ImportError naming it."""
    code = (
        "import lg_otel; lg_otel.configure(otlp_endpoint='http://127.0.0.1:4318', "
        "metrics_port=None)"
    )
    done = _run_plain(plain_venv, "-c", code, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("Traceback") == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: lg_otel.configure:")
    assert "pip install 'lg_otel[otlp]'" in last


def test_plain_install_runs_the_quickstart(plain_venv: Path, tmp_path: Path) -> None:
    """`./run demo`'s script works without any extra: trace tree and metrics."""
    done = _run_plain(
        plain_venv, str(ROOT / "examples" / "quickstart.py"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "invoke_workflow simple_chat" in done.stderr
    assert "langgraph_run_time_to_first_token_seconds_sum" in done.stdout
