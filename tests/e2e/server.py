"""`copilot serve` as a child process, started and stopped the way a user does it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET, fresh_postgres_database, settings_env

__all__ = [
    "COPILOT", "Server", "assert_stops_cleanly", "backend_env", "free_port", "running_server", "start_server",
    "user_env",
]

COPILOT = Path(sys.executable).parent / "copilot"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@dataclass
class Server:
    """A running `copilot serve` as its users reach it."""

    backend: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    var_dir: Path
    log: Path
    api_port: int
    ws_port: int
    stopped: bool = field(default=False)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api_url(self) -> str:
        return f"{self.root_url}/api/v1"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    @property
    def secret_key(self) -> str:
        """The key the server signs tokens with (embedded mode generates and keeps its own)."""
        if self.backend == "postgres":
            return TEST_SECRET
        return (self.var_dir / "secret_key").read_text().strip()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no output)"

    def stop(self) -> int:
        """SIGINT, as Ctrl-C would; the exit code, or a failure when it does not exit in time."""
        self.stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"copilot serve did not exit within {STOP_TIMEOUT:.0f} s of SIGINT:\n{self.output()}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def user_env(**copilot_vars: str) -> dict[str, str]:
    """The caller's environment without any COPILOT_* setting of its own, plus these."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("COPILOT_")}
    env.update(copilot_vars)
    return env


def backend_env(backend: str, var_dir: Path, database_url: str | None) -> dict[str, str]:
    """What a user sets: nothing but ports and a var dir for SQLite; PostgreSQL adds URL, key and NATS."""
    env = settings_env(backend, var_dir, database_url, COPILOT_API_PORT=str(free_port()),
                       COPILOT_WS_PORT=str(free_port()))
    env.pop("COPILOT_LOG_LEVEL")
    if backend == "sqlite":
        env.pop("COPILOT_SECRET_KEY")  # embedded mode generates one and keeps it under the var dir
    return env


def start_server(backend: str, env: dict[str, str], log: Path) -> Server:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(COPILOT), "serve"], env=user_env(**env), cwd=log.parent,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    server = Server(backend=backend, process=process, env=env, var_dir=Path(env["COPILOT_VAR_DIR"]), log=log,
                    api_port=int(env["COPILOT_API_PORT"]), ws_port=int(env["COPILOT_WS_PORT"]))
    try:
        wait_until_healthy(server)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        raise
    return server


def wait_until_healthy(server: Server) -> None:
    """Both ports answer GET /healthz; fail with the server's output if they do not within the timeout."""
    deadline = time.monotonic() + START_TIMEOUT
    pending = [f"{server.root_url}/healthz", f"http://127.0.0.1:{server.ws_port}/healthz"]
    while pending:
        if server.process.poll() is not None:
            pytest.fail(f"copilot serve exited with {server.process.returncode} while starting:\n{server.output()}")
        try:
            if httpx.get(pending[0], timeout=1.0).status_code == 200:
                pending.pop(0)
                continue
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"copilot serve did not answer {pending[0]} within {START_TIMEOUT:.0f} s:\n{server.output()}")
        time.sleep(0.05)


def assert_stops_cleanly(server: Server) -> None:
    code = server.stop()
    assert code == 0, f"copilot serve exited with {code} after SIGINT:\n{server.output()}"


@contextmanager
def running_server(backend: str, workdir: Path) -> Iterator[Server]:
    """Start a server on a fresh var dir (and a fresh database for PostgreSQL); stop it with SIGINT."""
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres_database()) if backend == "postgres" else None
        server = start_server(backend, backend_env(backend, workdir / "var", database_url), workdir / "server.log")
        try:
            yield server
        finally:
            if not server.stopped:
                assert_stops_cleanly(server)


