"""The operator commands: migrate, projections status|rebuild, audit replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from copilot.cli import main
from copilot.settings import Settings
from tests.conftest import settings_env
from tests.integration.conftest import register
from tests.integration.test_replay_properties import dump_read_models

API = "/api/v1"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, backend: str) -> None:
    url = None if settings.embedded else settings.database_url
    for key, value in settings_env(backend, settings.var_dir, url).items():
        monkeypatch.setenv(key, value)


def test_migrate_is_idempotent(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert "applied" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out.strip() == "database is up to date"


def test_rebuild_reproduces_the_live_read_models_and_reports_its_speed(
    cli_env: None, client: TestClient[Any], container: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = register(client, "ann@acme.io")
    for severity in ("critical", "low"):
        incident = client.post(f"{API}/incidents", headers=ann.headers,
                               json={"title": "t", "service_name": "svc", "severity": severity}).json()
        client.patch(f"{API}/incidents/{incident['id']}/state", headers=ann.headers, json={"state": "resolved"})
    before = dump_read_models(container)
    assert main(["projections", "rebuild"]) == 0
    out = capsys.readouterr().out
    assert "events/s" in out and "accounts, projects, incidents" in out
    assert dump_read_models(container) == before
    if not container.settings.embedded:  # PostgreSQL's planner statistics describe the rebuilt rows
        analyzed = container.db.fetch_one("SELECT reltuples FROM pg_class WHERE relname = 'incidents'")
        assert analyzed is not None and analyzed["reltuples"] == 2
    assert main(["projections", "status"]) == 0
    status = capsys.readouterr().out.splitlines()[1:]
    assert all(line.split()[-1] == "0" for line in status)  # no lag


def test_rebuild_of_an_unknown_projection_is_refused(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["projections", "rebuild", "nonsense"]) == 2
    assert "unknown projection" in capsys.readouterr().err


def test_audit_replay_prints_every_event_and_the_state_at_a_moment(
    cli_env: None, client: TestClient[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ann = register(client, "ann@acme.io")
    incident = client.post(f"{API}/incidents", headers=ann.headers,
                           json={"title": "Disk full", "service_name": "db", "severity": "high"}).json()
    client.patch(f"{API}/incidents/{incident['id']}/state", headers=ann.headers, json={"state": "acknowledged"})
    between = datetime.now(UTC).isoformat()
    client.patch(f"{API}/incidents/{incident['id']}/state", headers=ann.headers, json={"state": "resolved"})

    assert main(["audit", "replay", incident["id"]]) == 0
    text = capsys.readouterr().out
    assert text.count("Incident.StateChanged") == 2 and "ann@acme.io" in text
    assert "state=resolved" in text

    assert main(["audit", "replay", incident["id"], "--at", between, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["state"]["state"] == "acknowledged"
    assert [e["type"] for e in body["events"]] == ["Incident.Detected", "Incident.StateChanged"]
    assert body["events"][1]["actor_email"] == "ann@acme.io"
    assert body["events"][0]["position"] < body["events"][1]["position"]


def test_audit_replay_of_an_unknown_incident_says_so(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "replay", "00000000-0000-0000-0000-000000000000"]) == 1
    assert "no incident" in capsys.readouterr().err
