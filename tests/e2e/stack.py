"""Real servers for end-to-end tests: Arize Phoenix, a rotel collector hop, the app.

Every server listens on 127.0.0.1 only, is started by the test setup, and is stopped
by the PID it was started with. Phoenix and rotel live in their own virtualenv
(``.e2e/phoenix-venv``, made by ``scripts/install-phoenix.sh``) so their pins never
clash with the library's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import pytest
from typing_extensions import Self

ROOT = Path(__file__).resolve().parents[2]
PHOENIX_VENV = ROOT / ".e2e" / "phoenix-venv"
LAUNCHER = Path(__file__).with_name("phoenix_launcher.py")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def missing(what: str, how: str) -> NoReturn:
    """Fail under CI=true (an e2e test may never skip there); skip elsewhere."""
    message = f"{what} is not installed; run {how}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def http_json(url: str, *, data: Any = None, timeout: float = 10) -> Any:
    """GET (or POST ``data`` as JSON) and decode the JSON answer."""
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def _epoch(rfc3339: str) -> float:
    """Seconds since the epoch of Prometheus's RFC 3339 time (nanoseconds cut)."""
    stamp = re.sub(r"(\.\d{6})\d+", r"\1", rfc3339).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until true; TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def _up(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


class Process:
    """A server started as a subprocess, logged to a file, stopped by its PID."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path):
        self.name = name
        self._argv = argv
        self._env = env
        self.log = log
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process (output goes to the log file)."""
        with self.log.open("wb") as out:
            self._proc = subprocess.Popen(
                self._argv, env=self._env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        """The PID it was started with."""
        assert self._proc is not None
        return self._proc.pid

    def stop(self) -> None:
        """Terminate by PID; kill after 10 s."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        """The end of its log, for failure messages."""
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Server:
    """A :class:`Process` that is ready once ``{url}{ready_path}`` answers 200."""

    process: Process
    url: str
    ready_path = "/-/ready"
    ready_timeout = 30.0

    def __enter__(self) -> Self:
        self.process.start()
        try:
            wait_for(
                lambda: _up(f"{self.url}{self.ready_path}"),
                self.ready_timeout,
                self.process.name,
            )
        except TimeoutError as exc:
            self.process.stop()
            raise TimeoutError(f"{exc}\n{self.process.tail()}") from None
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.process.stop()


class Phoenix(Server):
    """Arize Phoenix as an OTLP trace store with a REST API, on loopback."""

    ready_path = "/healthz"
    ready_timeout = 90.0

    def __init__(self, workdir: Path) -> None:
        python = PHOENIX_VENV / "bin" / "python"
        if not python.exists():
            missing("Arize Phoenix", "scripts/install-phoenix.sh")
        self.port, self.grpc_port = free_port(), free_port()
        env = {
            **os.environ,
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_WORKING_DIR": str(workdir / "phoenix"),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        }
        self.process = Process(
            "phoenix", [str(python), str(LAUNCHER)], env, workdir / "phoenix.log"
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def spans(self, project: str) -> list[dict[str, Any]]:
        """All spans of a project (following pagination)."""
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {"limit": "500"}
            if cursor:
                query["cursor"] = cursor
            url = (
                f"{self.url}/v1/projects/{urllib.parse.quote(project)}/spans?"
                f"{urllib.parse.urlencode(query)}"
            )
            try:
                page = http_json(url)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # the project exists once its first span landed
                    return out
                raise
            out.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def project_id(self, name: str) -> str:
        """Phoenix's id of a project (for its UI's URLs)."""
        for project in http_json(f"{self.url}/v1/projects")["data"]:
            if project["name"] == name:
                return str(project["id"])
        raise KeyError(name)


class Rotel:
    """A real OTLP collector hop (OTLP/HTTP in, OTLP/gRPC out to Phoenix)."""

    def __init__(self, workdir: Path, upstream_grpc_port: int) -> None:
        agents = list(PHOENIX_VENV.glob("lib/python*/site-packages/rotel/rotel-agent"))
        if not agents:
            missing("rotel", "scripts/install-phoenix.sh")
        self.http_port, self.grpc_port = free_port(), free_port()
        argv = [
            str(agents[0]),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            f"http://127.0.0.1:{upstream_grpc_port}",
            "--otlp-exporter-protocol",
            "grpc",
        ]
        self.process = Process("rotel", argv, dict(os.environ), workdir / "rotel.log")
        self.endpoint = f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self.process.start()

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=1):
                return True

        wait_for(listening, 20, "rotel")

    def stop(self) -> None:
        """Stop by PID."""
        self.process.stop()


# The fixed fields rotel prints for a log record or a span, as "Name: value".
_DEBUG_FIELDS = frozenset(
    {"SeverityText", "SeverityNumber", "EventName", "Body", "Trace ID", "Span ID"}
    | {"Parent ID", "ID", "Name", "Kind", "Flags"}
)


def _debug_value(text: str) -> Any:
    """A value as rotel prints it (``Str(x)``, ``Int(3)``...) as Python."""
    kind, _, rest = text.partition("(")
    if not rest.endswith(")"):
        return text
    inner = rest[:-1]
    if kind == "Int":
        return int(inner)
    if kind == "Double":
        return float(inner)
    if kind == "Bool":
        return inner == "true"
    return inner


def debug_items(text: str) -> list[dict[str, Any]]:
    """The log records and spans in rotel's detailed debug log, one dict each.

    Each has ``kind`` (``log`` or ``span``), the fixed fields by their printed name
    (``Trace ID``, ``Span ID``, ``SeverityNumber``, ``Name``...), ``attributes``,
    ``resource`` (its resource's attributes) and ``scope`` (the scope line).
    """
    items: list[dict[str, Any]] = []
    resource: dict[str, Any] = {}
    scope = ""
    target: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("ResourceLog #", "ResourceSpans #")):
            resource, target = {}, None
        elif line == "Resource attributes:":
            target = resource
        elif line.startswith("InstrumentationScope "):
            scope = line.removeprefix("InstrumentationScope ").strip()
        elif line.startswith(("LogRecord #", "Span #")):
            kind = "log" if line.startswith("LogRecord") else "span"
            item = {"kind": kind, "resource": resource, "scope": scope}
            item["attributes"] = {}
            items.append(item)
            target = None
        elif line == "Attributes:" and items:
            target = items[-1]["attributes"]
        elif line in ("Events:", "Links:"):
            target = None
        elif line.startswith("-> ") and target is not None:
            key, _, value = line[3:].partition(": ")
            target[key] = _debug_value(value)
        elif items and ":" in line:
            key, _, value = line.partition(":")
            if key.strip() in _DEBUG_FIELDS:
                items[-1][key.strip()] = value.strip()
    return items


class DebugRotel(Rotel):
    """rotel printing what it receives (detailed debug log) and exporting nowhere.

    OTLP/HTTP and gRPC in on 127.0.0.1, a blackhole exporter out; the records and
    spans it received are read back with :meth:`items`.
    """

    def __init__(self, workdir: Path, signals: tuple[str, ...] = ("traces", "logs")):
        agents = list(PHOENIX_VENV.glob("lib/python*/site-packages/rotel/rotel-agent"))
        if not agents:
            missing("rotel", "scripts/install-phoenix.sh")
        self.http_port, self.grpc_port = free_port(), free_port()
        argv = [
            str(agents[0]),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--exporter",
            "blackhole",
            "--pid-file",
            str(workdir / "rotel-debug.pid"),
            "--debug-log-verbosity",
            "detailed",
        ]
        for signal in signals:
            argv += ["--debug-log", signal]
        log = workdir / "rotel-debug.log"
        self.process = Process("rotel", argv, dict(os.environ), log)
        self.endpoint = f"http://127.0.0.1:{self.http_port}"

    def items(self) -> list[dict[str, Any]]:
        """Everything received so far (see :func:`debug_items`)."""
        if not self.process.log.exists():
            return []
        return debug_items(self.process.log.read_text(errors="replace"))


class App(Server):
    """The SSE example service (uvicorn) with the given environment."""

    ready_path = "/healthz"

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        if shutil.which("uvicorn", path=str(Path(sys.executable).parent)) is None:
            missing("uvicorn", "./run test (it installs the test extras)")
        self.port = free_port()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "examples.sse_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        self.process = Process(
            "app", argv, {**clean, "PYTHONPATH": str(ROOT), **env}, workdir / "app.log"
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def chat(self, *, fail: bool = False, thread: str = "t") -> list[dict[str, Any]]:
        """One streamed request; the decoded SSE events."""
        body = json.dumps({"message": "status?", "thread_id": thread, "fail": fail})
        request = urllib.request.Request(
            f"{self.url}/chat/stream",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        events = []
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            assert response.headers["X-Accel-Buffering"] == "no"
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
        return events


def require(binary: str) -> str:
    """The path of a server binary; fail in CI, skip elsewhere, when missing."""
    path = shutil.which(binary)
    if path is None:
        missing(binary, "scripts/install-servers.sh (as root)")
    assert path is not None
    return path


class Prometheus(Server):
    """Debian's Prometheus on loopback: scrapes targets, evaluates rules, keeps
    exemplars (``--enable-feature=exemplar-storage``)."""

    def __init__(
        self,
        workdir: Path,
        targets: list[str],
        *,
        rule_files: list[Path] | None = None,
        alertmanager: str | None = None,
        interval: str = "1s",
        external_labels: dict[str, str] | None = None,
        alert_relabel_configs: list[dict[str, Any]] | None = None,
    ) -> None:
        binary = require("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        lines = [
            "global:",
            f"  scrape_interval: {interval}",
            f"  evaluation_interval: {interval}",
        ]
        if external_labels:
            lines.append(f"  external_labels: {json.dumps(external_labels)}")
        lines += [
            "scrape_configs:",
            "  - job_name: app",
            "    static_configs:",
            f"      - targets: {json.dumps(targets)}",
        ]
        if rule_files:
            lines.append("rule_files:")
            lines.extend(f"  - {json.dumps(str(path))}" for path in rule_files)
        if alertmanager:
            lines.append("alerting:")
            if alert_relabel_configs:
                relabel = json.dumps(alert_relabel_configs)
                lines.append(f"  alert_relabel_configs: {relabel}")
            lines += [
                "  alertmanagers:",
                "    - static_configs:",
                f"        - targets: [{json.dumps(alertmanager)}]",
            ]
        config.write_text("\n".join(lines) + "\n")
        subprocess.run(
            [require("promtool"), "check", "config", str(config)],
            check=True,
            capture_output=True,
        )
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--enable-feature=exemplar-storage",
        ]
        self.process = Process(
            "prometheus", argv, dict(os.environ), workdir / "prometheus.log"
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        answer = http_json(url)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def exemplars(self, promql: str, start: float, end: float) -> list[dict[str, Any]]:
        """``/api/v1/query_exemplars`` for a selector over [start, end]."""
        query = urllib.parse.urlencode({"query": promql, "start": start, "end": end})
        answer = http_json(f"{self.url}/api/v1/query_exemplars?{query}")
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]
        return result

    def evaluated_after(self, when: float) -> bool:
        """Whether every rule group was last evaluated after wall-clock ``when``."""
        groups = http_json(f"{self.url}/api/v1/rules")["data"]["groups"]
        return bool(groups) and all(
            _epoch(group["lastEvaluation"]) > when for group in groups
        )

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Prometheus currently holds (pending or firing)."""
        alerts: list[dict[str, Any]] = http_json(f"{self.url}/api/v1/alerts")["data"][
            "alerts"
        ]
        return alerts


class Alertmanager(Server):
    """Debian's Alertmanager on loopback, delivering to one webhook."""

    def __init__(self, workdir: Path, webhook: str) -> None:
        binary = require("prometheus-alertmanager")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = workdir / "alertmanager.yml"
        config.write_text(
            "route:\n"
            "  receiver: hook\n"
            "  group_by: [alertname]\n"
            "  group_wait: 1s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            "receivers:\n"
            "  - name: hook\n"
            "    webhook_configs:\n"
            f"      - url: {json.dumps(webhook)}\n"
            "        send_resolved: true\n"
        )
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.path={workdir / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]
        self.process = Process(
            "alertmanager", argv, dict(os.environ), workdir / "alertmanager.log"
        )


class Webhook:
    """A webhook receiver on loopback that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def __enter__(self) -> Webhook:
        import threading

        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
