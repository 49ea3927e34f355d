"""A new user adds the team's Prometheus and Alertmanager, tests them, points Alertmanager at the
webhook — and a firing rule becomes one alert and one incident within seconds, streamed live, and
its resolution resolves the alert. Real Prometheus and Alertmanager from Debian's packages."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.api import Account, Users
from tests.e2e.monitoring_tools import alertmanager, prometheus
from tests.e2e.server import Server
from tests.e2e.test_live_stream import live, receive

FIRING_SECONDS = 15


def rule_firing_until(deadline: float) -> str:
    # `vector(time()) < T` holds until T: the alert fires at once, then resolves by itself.
    return f"""
groups:
  - name: copilot-e2e
    rules:
      - alert: CheckoutErrorRate
        expr: vector(time()) < {deadline:.0f}
        labels:
          severity: critical
          service: checkout
        annotations:
          description: Error rate above 5% on checkout
"""


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def add_integration(owner: Account, kind: str, url: str) -> dict[str, Any]:
    response = owner.client.post(f"/projects/{owner.project_id}/monitoring/integrations",
                                 json={"name": f"team {kind}", "type": kind, "config": {"url": url}})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_firing_rule_becomes_one_alert_and_one_incident_and_resolves(
    server: Server, users: Users, tmp_path: Path
) -> None:
    owner = users.register(who="sre")
    base = f"/projects/{owner.project_id}/monitoring"
    # The copilot's webhook for Alertmanager, with its one-time token.
    receiver = owner.client.post(f"{base}/integrations", json={
        "name": "alerts", "type": "alertmanager", "config": {"url": "http://127.0.0.1:1"}}).json()
    assert receiver["webhook_token"].startswith("whk_")
    with alertmanager(tmp_path / "am", receiver["webhook_url"], receiver["webhook_token"]) as am_url:
        # Point the integration at the real Alertmanager and test it.
        owner.client.patch(f"{base}/integrations/{receiver['id']}", json={"config": {"url": am_url}})
        tested = owner.client.post(f"{base}/integrations/{receiver['id']}/test").json()
        assert tested["success"] is True and tested["version"], tested
        rules = rule_firing_until(time.time() + FIRING_SECONDS)

        with live(server, owner, ["alerts", "incidents"]) as socket, \
                prometheus(tmp_path / "prom", am_url, rules) as prom_url:
            prom = add_integration(owner, "prometheus", prom_url)
            check = owner.client.post(f"{base}/integrations/{prom['id']}/test").json()
            assert check["success"] is True and check["version"], check

            alerts = wait_for(lambda: owner.client.get(f"{base}/alerts").json(), 30, "the alert to arrive")
            assert len(alerts) == 1
            [alert] = alerts
            assert (alert["name"], alert["severity"], alert["service"], alert["status"]) == (
                "CheckoutErrorRate", "critical", "checkout", "firing")
            assert alert["description"] == "Error rate above 5% on checkout"
            incidents = owner.client.get("/incidents").json()
            assert [i["id"] for i in incidents] == [alert["incident_id"]]
            assert incidents[0]["service_name"] == "checkout" and incidents[0]["severity"] == "critical"

            # The incident the alert opened is investigated: the alert is collected as linked, the
            # project's real Prometheus is queried, and hypotheses come out.
            def finished() -> Any:
                body = owner.client.get(f"/incidents/{alert['incident_id']}/workflow").json()
                return body if body["run"] == 1 and body["status"] == "completed" else None

            steps = {s["step"]: s for s in wait_for(finished, 30, "the investigation")["steps"]}
            assert [(a["name"], a["linked"]) for a in steps["collect_alerts"]["findings"]] == [
                ("CheckoutErrorRate", True)]
            assert steps["query_metrics"]["status"] == "completed", steps["query_metrics"]
            assert owner.client.get(f"/incidents/{alert['incident_id']}/hypotheses").json()

            messages = receive(socket, 2, timeout=10)
            types = sorted(m["type"] for m in messages)
            assert types == ["alert.fired", "incident.created"]
            fired = next(m for m in messages if m["type"] == "alert.fired")
            assert fired["data"]["alertname"] == "CheckoutErrorRate"
            assert fired["data"]["severity"] == "critical" and fired["data"]["service"] == "checkout"

            # Repeats do not multiply anything while it keeps firing.
            time.sleep(3)
            assert len(owner.client.get(f"{base}/alerts").json()) == 1
            assert len(owner.client.get("/incidents").json()) == 1

            resolved = wait_for(
                lambda: owner.client.get(f"{base}/alerts?status=resolved").json(), FIRING_SECONDS + 30,
                "the resolved notification")
            assert [a["id"] for a in resolved] == [alert["id"]] and resolved[0]["ends_at"]
        trail = owner.client.get(f"/incidents/{alert['incident_id']}/events").json()
        assert [e["type"] for e in trail] == ["Incident.Detected", "Incident.AlertLinked"]
        assert json.dumps(trail).count(receiver["webhook_token"]) == 0


def test_a_bad_url_or_token_gives_a_clear_failure(server: Server, users: Users, tmp_path: Path) -> None:
    owner = users.register(who="sre")
    base = f"/projects/{owner.project_id}/monitoring"
    with prometheus(tmp_path / "prom", None, "groups: []\n") as prom_url:
        # Alertmanager's status path on a Prometheus: answers, but not as Alertmanager does.
        wrong_tool = owner.client.post(f"{base}/integrations/test-connection",
                                       json={"type": "alertmanager", "config": {"url": prom_url}}).json()
        assert wrong_tool["success"] is False and wrong_tool["detail"]
    closed = owner.client.post(f"{base}/integrations/test-connection",
                               json={"type": "prometheus", "config": {"url": prom_url}}).json()
    assert closed["success"] is False and "connect" in closed["detail"]
    receiver = owner.client.post(f"{base}/integrations", json={"name": "am", "type": "alertmanager",
                                                               "config": {"url": prom_url}}).json()
    response = users.anonymous().post(
        f"/webhooks/alertmanager/{receiver['id']}", headers={"Authorization": "Bearer whk_wrong"},
        json={"version": "4", "alerts": []})
    assert response.status_code == 401 and response.json()["detail"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_polled_prometheus_reports_firing_alerts_and_their_end(
    server: Server, users: Users, tmp_path: Path, backend: str
) -> None:
    owner = users.register(who="sre")
    base = f"/projects/{owner.project_id}/monitoring"
    # Long enough to be seen by the first poll even on a loaded machine, short enough to end in the test.
    rules = rule_firing_until(time.time() + 25)
    with prometheus(tmp_path / "prom", None, rules) as prom_url:
        response = owner.client.post(f"{base}/integrations", json={
            "name": "polled", "type": "prometheus", "config": {"url": prom_url, "poll_interval_seconds": 10}})
        assert response.status_code == 201, response.text
        [alert] = wait_for(lambda: owner.client.get(f"{base}/alerts").json(), 30, "the polled alert")
        assert (alert["name"], alert["service"], alert["status"]) == ("CheckoutErrorRate", "checkout", "firing")
        assert alert["incident_id"]
        resolved = wait_for(lambda: owner.client.get(f"{base}/alerts?status=resolved").json(), 60,
                            "the next poll to see the alert gone")
        assert [a["id"] for a in resolved] == [alert["id"]]
