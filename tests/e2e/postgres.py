"""A real PostgreSQL for the checkpointer end-to-end tests (Debian's ``postgresql``).

Each :class:`Postgres` is its own cluster: initialised in a temporary directory,
listening on 127.0.0.1 on a free port (its socket in that directory too), run by
the package's unprivileged ``postgres`` user when the tests run as root (the
server refuses to run as root), and stopped by its postmaster's PID.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from typing_extensions import Self

from tests.e2e.stack import free_port, missing

HOW = "scripts/install-servers.sh (as root)"


def _bin_dir() -> Path:
    """The newest installed server's binaries; fail in CI, skip elsewhere."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if not found:
        missing("PostgreSQL (Debian's postgresql)", HOW)
    return found[-1].parent


class Postgres:
    """One throwaway PostgreSQL cluster on loopback."""

    def __init__(self) -> None:
        self._bin = _bin_dir()
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                missing("the postgres user (Debian's postgresql)", HOW)
        # Not under pytest's tmp_path: that is private to root, and the server
        # runs as another user.
        self.dir = Path(tempfile.mkdtemp(prefix="lg_otel-pg-"))
        if self._user is not None:
            os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.pid: int | None = None

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if self._user is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, cwd=self.dir
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}\n{self.tail()}"
            )

    def start(self) -> None:
        """Initialise the cluster (once) and start the server; wait until ready."""
        data = self.dir / "data"
        if not data.exists():
            self._run(
                str(self._bin / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}"
        self._run(
            str(self._bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )
        self.pid = int((data / "postmaster.pid").read_text().splitlines()[0])

    def stop(self) -> None:
        """Stop the server by its postmaster's PID (fast shutdown, then harder)."""
        pid, self.pid = self.pid, None
        if pid is None:
            return
        for sig, wait in ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _alive(pid):
                    return
                time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def tail(self, lines: int = 20) -> str:
        """The end of the server's log, for failure messages."""
        log = self.dir / "log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie child of ours does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
