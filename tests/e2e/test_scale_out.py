"""Scale-out by role on PostgreSQL + NATS: two API processes feed one log, two gateways each deliver
every event to their own clients, and a relay killed mid-stream resumes with nothing lost or doubled."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fresh_postgres_database
from tests.e2e.api import Users
from tests.e2e.server import COPILOT, Server, backend_env, free_port, user_env
from tests.e2e.test_live_stream import create_incident, live, nothing_more, receive


@contextmanager
def role(
    name: str, env: dict[str, str], log: Path, health_port: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen([str(COPILOT), "serve", "--role", name], env=user_env(**env),
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        if health_port is not None:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                assert process.wait(15) == 0, log.read_text()
            except subprocess.TimeoutExpired:
                process.kill()
                pytest.fail(f"{name} did not stop on SIGINT:\n{log.read_text()}")


def as_server(env: dict[str, str], api_port: int, ws_port: int, log: Path, process: Any) -> Server:
    return Server(backend="postgres", process=process, env=env, var_dir=Path(env["COPILOT_VAR_DIR"]), log=log,
                  api_port=api_port, ws_port=ws_port)


def test_roles_run_apart_and_every_gateway_delivers_every_event_once(tmp_path: Path) -> None:
    with fresh_postgres_database() as url, ExitStack() as stack:
        env = backend_env("postgres", tmp_path / "var", url)
        api_ports, ws_ports = [free_port(), free_port()], [free_port(), free_port()]
        # Headless roles serve probes on their own COPILOT_API_PORT.
        projector_port, relay_port = free_port(), free_port()
        stack.enter_context(role("projector", {**env, "COPILOT_API_PORT": str(projector_port)},
                                 tmp_path / "projector.log", projector_port))
        relay_log = tmp_path / "relay.log"
        relay_env = {**env, "COPILOT_API_PORT": str(relay_port)}
        relay = stack.enter_context(role("relay", relay_env, relay_log, relay_port))
        ready = httpx.get(f"http://127.0.0.1:{relay_port}/readyz").json()
        assert ready["checks"]["event_store"]["ok"] and ready["checks"]["nats"]["ok"]
        apis = [stack.enter_context(role("api", {**env, "COPILOT_API_PORT": str(p)}, tmp_path / f"api{p}.log", p))
                for p in api_ports]
        gateways = [stack.enter_context(role("stream", {**env, "COPILOT_WS_PORT": str(p)},
                                             tmp_path / f"ws{p}.log", p)) for p in ws_ports]
        servers = [as_server(env, api_ports[i], ws_ports[i], tmp_path / "x.log", apis[i]) for i in range(2)]

        with Users(servers[0].api_url) as first, Users(servers[1].api_url) as second:
            ann = first.register(who="ann")
            ann_elsewhere = second.login(ann.email)  # the same user through the other API process
            assert gateways[0].poll() is None and gateways[1].poll() is None
            with live(servers[0], ann, ["incidents"]) as via_first, \
                    live(servers[1], ann_elsewhere, ["incidents"]) as via_second:
                a = create_incident(ann, "through api 1")
                b = create_incident(ann_elsewhere, "through api 2")
                for socket in (via_first, via_second):
                    titles = sorted(e["data"]["title"] for e in receive(socket, 2))
                    assert titles == ["through api 1", "through api 2"]

                # Kill the relay mid-stream; events keep being written; a new relay catches up.
                relay.send_signal(signal.SIGKILL)
                relay.wait(10)
                written = [create_incident(ann, f"while relay down {n}")["id"] for n in range(3)]
                stack.enter_context(role("relay", relay_env, relay_log, relay_port))
                for socket in (via_first, via_second):
                    events = receive(socket, 3, timeout=15)
                    assert [e["data"]["id"] for e in events] == written
                    nothing_more(socket)
                assert {a["id"], b["id"]}.isdisjoint(written)


def _nice_of_every_thread(pid: int) -> set[int]:
    """The nice value of each of the process's threads (field 19 of /proc/<pid>/task/<tid>/stat)."""
    return {int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
            for task in Path(f"/proc/{pid}/task").iterdir()}


def test_an_investigator_apart_runs_behind_the_processes_that_answer_requests(tmp_path: Path) -> None:
    with fresh_postgres_database() as url:
        env = backend_env("postgres", tmp_path / "var", url)
        for setting, nice in ((None, 10), ("0", 0), ("15", 15)):
            port = free_port()
            chosen = {} if setting is None else {"COPILOT_INVESTIGATOR_NICE": setting}
            with role("investigator", {**env, "COPILOT_API_PORT": str(port), **chosen},
                      tmp_path / f"investigator-{setting}.log", port) as investigator:
                assert _nice_of_every_thread(investigator.pid) == {nice}
