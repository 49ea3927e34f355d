"""PostgreSQL stopped under load: commands answer 503 with a detail while it is down, readiness says so,
the server recovers by itself, and every acknowledged command is in the log exactly once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import psycopg

from tests.e2e.api import Users
from tests.e2e.own_postgres import own_postgres
from tests.e2e.server import assert_stops_cleanly, backend_env, start_server


def test_a_postgres_outage_is_503_then_recovers_with_nothing_lost(tmp_path: Path) -> None:
    with own_postgres() as cluster:
        env = backend_env("postgres", tmp_path / "var", cluster.url)
        server = start_server("postgres", env, tmp_path / "server.log")
        try:
            with Users(server.api_url) as users:
                owner = users.register(who="sre")
            acknowledged: list[str] = []
            statuses: list[int] = []
            stop = threading.Event()

            def load() -> None:
                with httpx.Client(base_url=server.api_url, timeout=60,
                                  headers={"Authorization": f"Bearer {owner.token}"}) as client:
                    n = 0
                    while not stop.is_set():
                        n += 1
                        try:
                            response = client.post("/incidents", json={"title": f"load {n}", "service_name": "api",
                                                                       "severity": "low"})
                        except httpx.TransportError:
                            continue
                        statuses.append(response.status_code)
                        if response.status_code == 200:
                            acknowledged.append(response.json()["id"])
                        else:
                            assert response.json()["detail"]
                        time.sleep(0.05)

            worker = threading.Thread(target=load)
            worker.start()
            time.sleep(2)
            cluster.stop()
            deadline = time.monotonic() + 30
            while 503 not in statuses and time.monotonic() < deadline:
                time.sleep(0.2)
            ready = httpx.get(f"{server.root_url}/readyz", timeout=10)
            assert ready.status_code == 503 and ready.json()["checks"]["event_store"]["ok"] is False
            cluster.start()
            before = len(acknowledged)
            deadline = time.monotonic() + 60
            while (len(acknowledged) <= before + 3 or httpx.get(f"{server.root_url}/readyz", timeout=10)
                   .status_code != 200) and time.monotonic() < deadline:
                time.sleep(0.3)
            stop.set()
            worker.join(60)
            assert 503 in statuses, statuses
            unhandled = [line for line in server.output().splitlines() if "unhandled error" in line]
            assert all(code in (200, 503) for code in statuses), (sorted(set(statuses)), unhandled)
            assert len(acknowledged) > before, "the server did not recover by itself"
            assert httpx.get(f"{server.root_url}/readyz", timeout=10).status_code == 200
            # The investigator (whose lock went with its connection) leads again: a new incident's
            # investigation completes.
            workflow = f"{server.api_url}/incidents/{acknowledged[-1]}/workflow"
            deadline = time.monotonic() + 60
            while httpx.get(workflow, headers=owner.bearer, timeout=10).json().get("status") != "completed":
                assert time.monotonic() < deadline, "investigations did not resume after the outage"
                time.sleep(0.5)
        finally:
            assert_stops_cleanly(server)
        with psycopg.connect(f"host=127.0.0.1 port={cluster.port} user=root dbname=copilot") as conn:
            rows = conn.execute(
                "SELECT originator_id FROM copilot_events WHERE topic LIKE %s", ("%Incident.Detected",)).fetchall()
        logged = [str(row[0]) for row in rows]
        assert sorted(set(acknowledged)) == sorted(acknowledged)
        assert set(acknowledged) <= set(logged)
        assert len(logged) == len(set(logged))  # exactly once
