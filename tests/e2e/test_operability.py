"""Operating the copilot: probes that tell the truth, metrics that move, logs without secrets,
and a SIGTERM that loses no acknowledged command."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import fresh_postgres_database
from tests.e2e.api import Users
from tests.e2e.monitoring_tools import PROMETHEUS
from tests.e2e.server import Server, assert_stops_cleanly, backend_env, free_port, start_server
from tests.own_nats import own_nats

ROOT = Path(__file__).resolve().parents[2]


def metric_value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_probes_and_metrics_answer_on_both_ports_and_counters_move(server: Server, users: Users) -> None:
    for port in (server.api_port, server.ws_port):
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert httpx.get(f"{server.root_url}/readyz").json()["checks"]["event_store"]["ok"] is True
    before = httpx.get(f"{server.root_url}/metrics").text
    owner = users.register(who="sre")
    for _ in range(3):
        owner.client.get("/incidents")
    after = httpx.get(f"{server.root_url}/metrics").text
    route = {"method": "GET", "route": "/api/v1/incidents", "status": "200"}
    assert metric_value(after, "copilot_http_requests_total", **route) - \
        metric_value(before, "copilot_http_requests_total", **route) == 3
    assert metric_value(after, "copilot_events_appended_total") > metric_value(before, "copilot_events_appended_total")
    assert metric_value(after, "copilot_log_head_position") > 0
    ws_metrics = httpx.get(f"http://127.0.0.1:{server.ws_port}/metrics").text
    assert "copilot_websocket_connections" in ws_metrics


def test_the_alerting_rules_check_and_the_dashboard_only_uses_exported_metrics(server: Server) -> None:
    promtool = str(Path(PROMETHEUS).with_name("promtool"))
    checked = subprocess.run([promtool, "check", "rules", str(ROOT / "deploy/prometheus-rules.yml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    exported = {family.name for family in text_string_to_metric_families(
        httpx.get(f"{server.root_url}/metrics").text + httpx.get(f"http://127.0.0.1:{server.ws_port}/metrics").text)}
    dashboard = json.loads((ROOT / "deploy/grafana-dashboard.json").read_text())
    bases = {name for panel in dashboard["panels"] for target in panel["targets"]
             for name in re.findall(r"copilot_[a-z_]+", target["expr"])}
    known = exported | {f"{n}_bucket" for n in exported} | {f"{n}_total" for n in exported}
    assert bases <= known, bases - known


@pytest.mark.parametrize("backend", ["sqlite"])
def test_logs_are_json_lines_without_secrets(server: Server, users: Users, backend: str) -> None:
    owner = users.register(who="sre")
    hook = owner.client.post(f"/projects/{owner.project_id}/monitoring/integrations",
                             json={"name": "x", "type": "webhook", "credentials": {"token": "s3cr3t-value-xyz"}}).json()
    users.anonymous().post(f"/webhooks/webhook/{hook['id']}", headers={"Authorization": "Bearer whk_wrong"},
                           json={"alerts": [{"name": "x"}]})
    echoed = users.anonymous().get("/projects", headers={"X-Request-ID": "req-123"})
    assert echoed.headers["x-request-id"] == "req-123"
    assert users.anonymous().get("/projects").headers["x-request-id"]  # one is made when none is sent
    log = server.output()
    for secret in (owner.password, owner.token, hook["webhook_token"], "s3cr3t-value-xyz"):
        assert secret not in log
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines and all(json.loads(line)["level"] for line in lines)


def test_sigterm_during_a_burst_loses_no_acknowledged_command(tmp_path: Path) -> None:
    env = backend_env("sqlite", tmp_path / "var", None)
    server = start_server("sqlite", env, tmp_path / "first.log")
    acknowledged: list[str] = []
    with Users(server.api_url) as users:
        owner = users.register(who="sre")
        token = owner.token

    def burst() -> None:
        with httpx.Client(base_url=server.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            for n in range(400):
                try:
                    response = c.post("/incidents", json={"title": f"burst {n}", "service_name": "api",
                                                          "severity": "low"})
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    acknowledged.append(response.json()["id"])

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(30)
    assert server.process.wait(20) == 0, server.output()
    server.stopped = True
    assert acknowledged
    again = start_server("sqlite", env, tmp_path / "second.log")
    try:
        with Users(again.api_url) as users:
            owner = users.login(owner.email)
            missing = [i for i in acknowledged if owner.client.get(f"/incidents/{i}").status_code != 200]
            assert missing == []
    finally:
        assert_stops_cleanly(again)


def test_readiness_follows_nats_going_away_and_coming_back(tmp_path: Path) -> None:
    if not shutil.which("nats-server") and not Path("/usr/sbin/nats-server").exists():
        pytest.fail("nats-server is required")
    port = free_port()
    with fresh_postgres_database() as url:
        env = backend_env("postgres", tmp_path / "var", url)
        env["COPILOT_NATS_URL"] = f"nats://127.0.0.1:{port}"
        with own_nats(tmp_path / "nats", port):
            server = start_server("postgres", env, tmp_path / "server.log")
            try:
                deadline = time.monotonic() + 10
                while httpx.get(f"{server.root_url}/readyz").status_code != 200 and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert httpx.get(f"{server.root_url}/readyz").status_code == 200
            except BaseException:
                assert_stops_cleanly(server)
                raise
        try:
            deadline = time.monotonic() + 10
            while httpx.get(f"{server.root_url}/readyz").status_code != 503 and time.monotonic() < deadline:
                time.sleep(0.2)
            down = httpx.get(f"{server.root_url}/readyz")
            assert down.status_code == 503 and down.json()["checks"]["nats"]["ok"] is False
            with own_nats(tmp_path / "nats", port):
                deadline = time.monotonic() + 15
                while httpx.get(f"{server.root_url}/readyz").status_code != 200 and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert httpx.get(f"{server.root_url}/readyz").status_code == 200
        finally:
            assert_stops_cleanly(server)
