"""Backup and restore as the README tells an operator to do it: `pg_dump` of the event store (the read
models left out: the log is what matters), `pg_restore` into an empty database, `copilot projections
rebuild` — and every read-model table is back row for row, the log byte for byte, and users carry on."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psycopg

from tests.conftest import fresh_postgres_database
from tests.e2e.api import Account, Users, answer, unique_email
from tests.e2e.log_checks import READ_MODEL_TABLES, dump_read_models, rebuild_with_cli, wait_for_projections
from tests.e2e.server import COPILOT, assert_stops_cleanly, backend_env, start_server, user_env
from tests.e2e.test_investigation import wait_for_run

# Derived data a backup can leave out: every projection's tables and the aggregate snapshots.
DERIVED = [*READ_MODEL_TABLES, "copilot_snapshots"]
# What proves the log came back unchanged: every event, in order, with its state.
LOG_DIGEST = ("SELECT count(*), coalesce(max(notification_id), 0), md5(coalesce(string_agg("
              "notification_id || ':' || originator_id || ':' || originator_version || ':' || topic || ':' || "
              "md5(state), ',' ORDER BY notification_id), '')) FROM copilot_events")


def run(*args: str) -> None:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"


def fill(owner: Account, users: Users) -> list[str]:
    """A bit of everything a team does: projects, members, incidents moved along, alerts, changes."""
    staging = answer(owner.client.post("/projects", json={"name": "Staging", "description": "pre-prod"}), 201)
    answer(owner.client.post(f"/projects/{staging['id']}/members", json={"email": unique_email("mate"),
                                                                         "role": "admin"}), 201)
    answer(owner.client.patch(f"/projects/{staging['id']}", json={"name": "Staging EU"}), 200)
    incidents = []
    for n, path in enumerate([[], ["acknowledged"], ["investigating", "mitigated", "resolved"],
                              ["inconclusive", "investigating", "resolved", "learned"]]):
        incident = answer(owner.client.post("/incidents", json={
            "title": f"incident {n}", "service_name": f"svc{n % 2}", "severity": "high", "description": "é ✓"}), 200)
        for state in path:
            answer(owner.client.patch(f"/incidents/{incident['id']}/state", json={"state": state}), 200)
        incidents.append(incident["id"])
    hook = answer(owner.client.post(f"/projects/{owner.project_id}/monitoring/integrations",
                                    json={"name": "alerts", "type": "webhook"}), 201)
    answer(users.anonymous().post(f"/webhooks/changes/{hook['id']}", json={
        "service_name": "svc0", "type": "deploy", "description": "v2", "version": "2.0.0"},
        headers={"Authorization": f"Bearer {hook['webhook_token']}"}), 201)
    fired = users.anonymous().post(f"/webhooks/webhook/{hook['id']}", json={"alerts": [
        {"name": "HighErrorRate", "status": "firing", "severity": "critical", "service": "svc0",
         "description": "5xx > 5%"}]}, headers={"Authorization": f"Bearer {hook['webhook_token']}"})
    incidents += answer(fired, 200)["incidents_opened"]
    for incident in incidents:  # the investigator writes too: let it finish before the backup
        wait_for_run(owner, incident)
    return incidents


def seen_by(owner: Account, incidents: list[str]) -> dict[str, Any]:
    return {
        "projects": answer(owner.client.get("/projects"), 200),
        "incidents": answer(owner.client.get("/incidents", params={"limit": 100}), 200),
        "timelines": {i: answer(owner.client.get(f"/incidents/{i}/events"), 200) for i in incidents},
        "hypotheses": {i: answer(owner.client.get(f"/incidents/{i}/hypotheses"), 200) for i in incidents},
        "alerts": answer(owner.client.get(f"/projects/{owner.project_id}/monitoring/alerts"), 200),
    }


def test_a_pg_dump_of_the_log_restored_and_rebuilt_gives_back_every_read_model(tmp_path: Path) -> None:
    with fresh_postgres_database() as source_url, fresh_postgres_database() as restored_url:
        env = backend_env("postgres", tmp_path / "var", source_url)
        server = start_server("postgres", env, tmp_path / "server.log")
        try:
            with Users(server.api_url) as users:
                users.register(who="neighbour")  # another tenant, restored alongside
                owner = users.register(who="owner")
                incidents = fill(owner, users)
                before = seen_by(owner, incidents)
            head = wait_for_projections(source_url)
        finally:
            assert_stops_cleanly(server)
        original = dump_read_models(source_url)
        assert all(original[t] for t in ("users", "projects", "project_members", "incidents", "incident_events",
                                         "alerts", "changes", "investigations", "hypotheses")), \
            {t: len(rows) for t, rows in original.items()}
        with psycopg.connect(source_url) as conn:
            log_digest = conn.execute(LOG_DIGEST).fetchone()
            identity = conn.execute("SELECT id FROM store_identity").fetchall()
        assert log_digest is not None and log_digest[1] == head

        # The backup and the restore, exactly as the README's operations section has them.
        backup = tmp_path / "copilot.dump"
        run("pg_dump", "--format=custom", f"--file={backup}",
            *(f"--exclude-table-data={table}" for table in DERIVED), source_url)
        run("pg_restore", "--no-owner", f"--dbname={restored_url}", str(backup))
        restored_env = backend_env("postgres", tmp_path / "restored-var", restored_url)
        assert not any(dump_read_models(restored_url).values()), "the backup was meant to hold the log only"
        migrated = subprocess.run([str(COPILOT), "migrate"], env=user_env(**restored_env), capture_output=True,
                                  text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        rebuild_with_cli(restored_env)

        with psycopg.connect(restored_url) as conn:
            assert conn.execute(LOG_DIGEST).fetchone() == log_digest
            assert conn.execute("SELECT id FROM store_identity").fetchall() == identity
        restored = dump_read_models(restored_url)
        for table in READ_MODEL_TABLES:
            assert restored[table] == original[table], f"{table} differs after restore and rebuild"

        # Users of the restored copilot see what they saw, sign in with their password, and write on.
        server = start_server("postgres", restored_env, tmp_path / "restored.log")
        try:
            with Users(server.api_url) as users:
                again = users.login(owner.email)
                assert seen_by(again, incidents) == before
                answer(again.client.post("/incidents", json={"title": "after the restore", "service_name": "svc0",
                                                             "severity": "low"}), 200)
        finally:
            assert_stops_cleanly(server)
        with psycopg.connect(restored_url) as conn:
            row = conn.execute("SELECT min(notification_id) FROM copilot_events WHERE notification_id > %s",
                               (head,)).fetchone()
        assert row is not None and row[0] is not None and row[0] > head  # the log goes on where it was
