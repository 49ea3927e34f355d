"""Starting and stopping `copilot` as an operator does: bad settings, migrations, restarts."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_HOST, PG_PORT, PG_USER
from tests.e2e.api import PROJECT, Users, answer
from tests.e2e.server import COPILOT, assert_stops_cleanly, backend_env, start_server, user_env

PG_URL = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/copilot_never_created"


def copilot(*args: str, env: dict[str, str], cwd: Path, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run the console script to completion; the timeout is how long "a few seconds" may be."""
    return subprocess.run([str(COPILOT), *args], env=user_env(**env), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


BAD_SETTINGS = {
    "api-port-not-a-number": ("COPILOT_API_PORT", {"COPILOT_API_PORT": "abc"}),
    "ws-port-out-of-range": ("COPILOT_WS_PORT", {"COPILOT_WS_PORT": "70000"}),
    "postgres-without-secret-key": ("COPILOT_SECRET_KEY", {"COPILOT_DATABASE_URL": PG_URL}),
    "short-secret-key": ("COPILOT_SECRET_KEY", {"COPILOT_SECRET_KEY": "too short"}),
    "mysql-url": ("COPILOT_DATABASE_URL", {"COPILOT_DATABASE_URL": "mysql://x"}),
    "nats-url-not-nats": ("COPILOT_NATS_URL", {"COPILOT_NATS_URL": "http://127.0.0.1:4222"}),
}


@pytest.mark.parametrize(("variable", "env"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_a_bad_setting_stops_serve_with_one_line_naming_the_variable(
    tmp_path: Path, variable: str, env: dict[str, str]
) -> None:
    result = copilot("serve", env={"COPILOT_VAR_DIR": str(tmp_path / "var"), **env}, cwd=tmp_path, timeout=10)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert variable in lines[0]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_busy_port_stops_serve_with_a_message_naming_it(tmp_path: Path, backend: str) -> None:
    env = backend_env(backend, tmp_path / "var", None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["COPILOT_API_PORT"])))
        taken.listen()
        result = copilot("serve", env=env, cwd=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert env["COPILOT_API_PORT"] in output
    assert "Traceback" not in output, output[-2000:]


def test_migrate_applies_the_migrations_once_then_says_the_database_is_up_to_date(
    tmp_path: Path, backend: str, database_url: str | None
) -> None:
    env = backend_env(backend, tmp_path / "var", database_url)
    first = copilot("migrate", env=env, cwd=tmp_path)
    second = copilot("migrate", env=env, cwd=tmp_path)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert first.stdout.startswith("applied ")
    assert first.stdout.strip().endswith("migration(s)")
    assert int(first.stdout.split()[1]) >= 1
    assert second.stdout.strip() == "database is up to date"


def test_accounts_and_projects_survive_a_restart(tmp_path: Path, backend: str, database_url: str | None) -> None:
    env = backend_env(backend, tmp_path / "var", database_url)
    log = tmp_path / "server.log"

    first = start_server(backend, env, log)
    try:
        with Users(first.api_url) as users:
            owner = users.register()
            answer(owner.client.post("/projects", json={"name": "Payments"}), 201, PROJECT)
            projects = answer(owner.client.get("/projects"), 200)
    finally:
        assert_stops_cleanly(first)

    again = start_server(backend, env, log)
    try:
        with Users(again.api_url) as users:
            signed_in = users.login(owner.email)
            assert signed_in.user_id == owner.user_id
            assert answer(signed_in.client.get("/projects"), 200) == projects
            # Tokens issued before the restart still work: the signing key was kept.
            me = httpx.get(f"{again.api_url}/auth/me", headers=owner.bearer, timeout=10)
            assert answer(me, 200)["id"] == owner.user_id
    finally:
        assert_stops_cleanly(again)
