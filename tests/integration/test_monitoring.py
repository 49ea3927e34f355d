"""Monitoring through the API on the real stores: integrations, secrets, webhooks, alerts, correlation, probes.

Connection tests call real HTTP servers started here on 127.0.0.1 that answer as
Prometheus, Alertmanager, Grafana, Datadog and PagerDuty document.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from copilot.bootstrap import Container
from copilot.settings import Settings, load_settings
from tests.conftest import settings_env
from tests.integration.conftest import Account, register

API = "/api/v1"
SECRET = "dd-api-key-7f3c1e9a5b2d4c6e8f0a"
OTHER_SECRET = "dd-api-key-second-91b7d2f4e6a8c0b3"
PD_TOKEN = "pd-token-y_NbAkKc66ryYTWUXYEu"
PROMETHEUS_VERSION = "2.51.2"
ALERTMANAGER_VERSION = "0.27.0"
GRAFANA_VERSION = "10.4.0"


@pytest.fixture
def settings(backend: str, database_url: str | None, tmp_path: Path) -> Settings:
    """As the shared fixture, with the encryption key a PostgreSQL deployment must configure."""
    extra = {}
    if backend == "postgres":  # SQLite generates its own key beside the database
        extra["COPILOT_ENCRYPTION_KEY"] = base64.urlsafe_b64encode(bytes(range(32))).decode()
    return load_settings(settings_env(backend, tmp_path / "var", database_url, **extra))


# -- helpers ------------------------------------------------------------------------------------


def join(client: TestClient[Any], owner: Account, email: str, role: str, project_id: str | None = None) -> Account:
    project_id = project_id or owner.project_id
    response = client.post(f"{API}/projects/{project_id}/members", headers=owner.headers,
                           json={"email": email, "role": role})
    assert response.status_code == 201, response.text
    joined = register(client, email, invite_token=response.json()["invite_token"])
    assert joined.project_id == project_id  # so the helpers build URLs of that project
    return joined


def integrations_url(account: Account, *rest: str) -> str:
    return "/".join([f"{API}/projects/{account.project_id}/monitoring/integrations", *rest])


def create(client: TestClient[Any], account: Account, **fields: Any) -> dict[str, Any]:
    body = {"name": "Production Alertmanager", "type": "alertmanager",
            "config": {"url": "http://alertmanager.internal:9093"}, **fields}
    response = client.post(integrations_url(account), json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def deliver(client: TestClient[Any], integration: dict[str, Any], body: Any, token: str | None = None) -> Any:
    bearer = token if token is not None else integration["webhook_token"]
    return client.post(integration["webhook_url"], json=body, headers={"Authorization": f"Bearer {bearer}"})


def alerts(client: TestClient[Any], account: Account, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"{API}/projects/{account.project_id}/monitoring/alerts?{query}", headers=account.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def incidents(client: TestClient[Any], account: Account) -> list[dict[str, Any]]:
    return list(client.get(f"{API}/incidents?limit=100", headers=account.headers).json())


def trail(client: TestClient[Any], account: Account, incident_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{API}/incidents/{incident_id}/events", headers=account.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def rule_url(account: Account) -> str:
    return f"{API}/projects/{account.project_id}/monitoring/correlation-rule"


def rfc3339nano(moment: datetime) -> str:
    """A time as Alertmanager and Grafana (Go) write it: nanoseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "417Z"


def am_alert(name: str = "HighErrorRate", service: str = "payment-api", severity: str = "critical",
             status: str = "firing", fingerprint: str = "c6f9e8b2a1d3e4f5", ends_at: str | None = None,
             minutes_ago: int = 2) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "service": service, "severity": severity, "instance": "10.0.4.7:9100"},
        "annotations": {"summary": f"{name} on {service}", "description": "5xx above 5% for 5 minutes"},
        "startsAt": rfc3339nano(datetime.now(UTC) - timedelta(minutes=minutes_ago)),
        "endsAt": ends_at or "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.internal:9090/graph?g0.expr=rate%28http_5xx%5B5m%5D%29",
        "fingerprint": fingerprint,
    }


def am_payload(*alerts_: dict[str, Any]) -> dict[str, Any]:
    """Alertmanager's webhook_config body, version 4."""
    return {
        "version": "4", "groupKey": '{}:{alertname="HighErrorRate"}', "truncatedAlerts": 0,
        "status": alerts_[0]["status"], "receiver": "sre-copilot", "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager.internal:9093",
        "alerts": list(alerts_),
    }


def generic(name: str, service: str = "checkout", severity: str = "critical", **extra: Any) -> dict[str, Any]:
    return {"name": name, "status": "firing", "severity": severity, "service": service,
            "description": f"{name} on {service}", **extra}


# -- fake tools ---------------------------------------------------------------------------------


class ToolServer(ThreadingHTTPServer):
    """One local server answering the documented health/validation endpoint of every tool."""

    requests: list[tuple[str, dict[str, str]]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class ToolHandler(BaseHTTPRequestHandler):
    server: ToolServer

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        if self.path == "/api/v1/status/buildinfo":
            self._answer(200, {"status": "success", "data": {
                "version": PROMETHEUS_VERSION, "revision": "b4c0ab52c3e9b940ab803581ddae9b3d9a452337",
                "branch": "HEAD", "buildUser": "root@70f15a6b1d72", "buildDate": "20240418-07:36:33",
                "goVersion": "go1.22.2"}})
        elif self.path == "/api/v2/status":
            self._answer(200, {"cluster": {"name": "01HVX", "peers": [], "status": "ready"},
                               "config": {"original": "route:\n  receiver: copilot\n"},
                               "uptime": "2024-04-18T07:40:00.000Z",
                               "versionInfo": {"branch": "HEAD", "goVersion": "go1.21.7",
                                               "revision": "0aa3c2aad14cff039931923ab16b26b7481783b5",
                                               "version": ALERTMANAGER_VERSION}})
        elif self.path == "/api/health":
            self._answer(200, {"commit": "03f502a94d", "database": "ok", "version": GRAFANA_VERSION})
        elif self.path == "/api/v1/validate":
            if self.headers.get("DD-API-KEY") == SECRET:
                self._answer(200, {"valid": True})
            else:
                self._answer(403, {"errors": ["Forbidden"]})
        elif self.path == "/abilities":
            if self.headers.get("Authorization") == f"Token token={PD_TOKEN}":
                self._answer(200, {"abilities": ["sso", "advanced_reports", "teams", "read_only_users"]})
            else:
                self._answer(401, {"error": {"message": "Authentication required", "code": 2006}})
        else:
            self._answer(404, {"error": "not found"})

    def _answer(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def tool() -> Iterator[ToolServer]:
    server = ToolServer(("127.0.0.1", 0), ToolHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def check_unsaved(client: TestClient[Any], account: Account, kind: str, config: dict[str, Any],
                  credentials: dict[str, str] | None = None) -> dict[str, Any]:
    """POST …/integrations/test-connection with an unsaved integration; the result, which is always 200."""
    body: dict[str, Any] = {"type": kind, "config": config}
    if credentials is not None:
        body["credentials"] = credentials
    response = client.post(integrations_url(account, "test-connection"), json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


# -- roles and isolation --------------------------------------------------------------------------


def test_a_viewer_reads_integrations_alerts_and_the_rule_but_cannot_create(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)
    vic = join(client, ann, "vic@acme.io", "viewer")
    listed = client.get(integrations_url(vic), headers=vic.headers)
    assert listed.status_code == 200 and [i["id"] for i in listed.json()] == [integration["id"]]
    assert client.get(integrations_url(vic, integration["id"]), headers=vic.headers).status_code == 200
    assert client.get(f"{API}/projects/{ann.project_id}/monitoring/alerts", headers=vic.headers).status_code == 200
    assert client.get(rule_url(vic), headers=vic.headers).status_code == 200
    refused = client.post(integrations_url(vic), headers=vic.headers,
                          json={"name": "Mine", "type": "webhook", "config": {}})
    assert refused.status_code == 403
    assert "admin" in refused.json()["detail"]


def test_a_member_is_refused_every_monitoring_write(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)
    max_ = join(client, ann, "max@acme.io", "member")
    one = integrations_url(max_, integration["id"])
    for response in (
        client.post(integrations_url(max_), headers=max_.headers, json={"name": "Mine", "type": "webhook"}),
        client.patch(one, headers=max_.headers, json={"name": "Renamed"}),
        client.delete(one, headers=max_.headers),
        client.post(f"{one}/rotate-token", headers=max_.headers),
        client.put(rule_url(max_), headers=max_.headers, json={"min_severity": "info", "window_minutes": 5}),
    ):
        assert response.status_code == 403, response.text
    after = client.get(integrations_url(ann), headers=ann.headers).json()
    assert [(i["id"], i["name"]) for i in after] == [(integration["id"], "Production Alertmanager")]
    assert deliver(client, integration, am_payload(am_alert(severity="info"))).status_code == 200
    assert client.get(rule_url(ann), headers=ann.headers).json() == {"min_severity": "high", "window_minutes": 30}


def routes(client: TestClient[Any], caller: Account, project_id: str, integration_id: str) -> list[Any]:
    base = f"{API}/projects/{project_id}/monitoring"
    one = f"{base}/integrations/{integration_id}"
    h = caller.headers
    return [
        client.get(f"{base}/integrations", headers=h),
        client.post(f"{base}/integrations", headers=h, json={"name": "Mine", "type": "webhook"}),
        client.get(one, headers=h),
        client.patch(one, headers=h, json={"name": "Stolen"}),
        client.delete(one, headers=h),
        client.post(f"{one}/rotate-token", headers=h),
        client.post(f"{one}/test", headers=h),
        client.post(f"{base}/integrations/test-connection", headers=h,
                    json={"type": "grafana", "config": {"url": "http://grafana.internal:3000"}}),
        client.get(f"{base}/alerts", headers=h),
        client.get(f"{base}/correlation-rule", headers=h),
        client.put(f"{base}/correlation-rule", headers=h, json={"min_severity": "info", "window_minutes": 5}),
    ]


def test_a_colleague_outside_the_project_and_another_tenant_get_404_on_every_monitoring_route(
    client: TestClient[Any]
) -> None:
    ann = register(client, "ann@acme.io", tenant="Acme")
    integration = create(client, ann)
    other = client.post(f"{API}/projects", headers=ann.headers, json={"name": "Staging"}).json()
    bob = join(client, ann, "bob@acme.io", "admin", project_id=other["id"])  # admin, but of another project
    eve = register(client, "eve@evil.io", tenant="Evil")
    for outsider in (bob, eve):
        for response in routes(client, outsider, ann.project_id, integration["id"]):
            assert response.status_code == 404, f"{response.request.method} {response.request.url}: {response.text}"
    # Nor does Eve reach Ann's integration through her own project's URLs.
    assert client.get(f"{API}/projects/{eve.project_id}/monitoring/integrations/{integration['id']}",
                      headers=eve.headers).status_code == 404
    assert client.get(integrations_url(ann), headers=ann.headers).json()[0]["name"] == "Production Alertmanager"


# -- integrations: create, read, update, delete ---------------------------------------------------


def test_an_admin_who_is_not_the_owner_creates_an_integration_the_project_reads_back(
    client: TestClient[Any]
) -> None:
    ann = register(client, "ann@acme.io")
    ada = join(client, ann, "ada@acme.io", "admin")
    created = create(client, ada, name="Prod Prometheus", type="prometheus",
                     config={"url": "http://prometheus.internal:9090", "service_label": "app",
                             "poll_interval_seconds": 30})
    assert created["config"] == {"url": "http://prometheus.internal:9090", "service_label": "app",
                                 "poll_interval_seconds": 30}
    assert (created["project_id"], created["type"], created["enabled"], created["has_credentials"]) == \
        (ann.project_id, "prometheus", True, False)
    assert created["webhook_url"].endswith(f"/api/v1/webhooks/prometheus/{created['id']}")
    fetched = client.get(integrations_url(ann, created["id"]), headers=ann.headers).json()
    assert fetched == {k: v for k, v in created.items() if k != "webhook_token"}
    second = create(client, ann, name="Custom", type="webhook", config={})
    listed = client.get(integrations_url(ann), headers=ann.headers).json()
    assert [i["id"] for i in listed] == [created["id"], second["id"]]


def test_the_config_is_read_back_normalized_as_the_server_uses_it(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    prometheus = create(client, ann, name="Prometheus", type="prometheus",
                        config={"url": " http://prometheus.internal:9090/ "})
    datadog = create(client, ann, name="Datadog", type="datadog", config={})
    assert prometheus["config"] == {"url": "http://prometheus.internal:9090"}
    assert datadog["config"] == {"url": "https://api.datadoghq.com"}
    fetched = client.get(integrations_url(ann, datadog["id"]), headers=ann.headers).json()
    assert fetched["config"] == {"url": "https://api.datadoghq.com"}


def test_an_update_changes_only_the_fields_it_sends(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    created = create(client, ann, type="grafana", config={"url": "http://grafana.internal:3000"})
    response = client.patch(integrations_url(ann, created["id"]), headers=ann.headers,
                            json={"name": "Grafana (EU)", "enabled": False})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["name"], updated["enabled"], updated["config"]) == \
        ("Grafana (EU)", False, {"url": "http://grafana.internal:3000"})
    assert updated["updated_at"] >= created["updated_at"]
    assert client.get(integrations_url(ann, created["id"]), headers=ann.headers).json() == updated


def test_a_deleted_integration_is_gone_and_its_webhook_refuses_its_token(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)
    assert client.delete(integrations_url(ann, integration["id"]), headers=ann.headers).status_code == 204
    assert client.get(integrations_url(ann, integration["id"]), headers=ann.headers).status_code == 404
    assert client.get(integrations_url(ann), headers=ann.headers).json() == []
    assert deliver(client, integration, am_payload(am_alert())).status_code == 401
    assert client.delete(integrations_url(ann, integration["id"]), headers=ann.headers).status_code == 404


INVALID_CONFIGS = [
    ("prometheus", {}, "config.url"),
    ("grafana", {"url": "ftp://grafana.internal/dashboards"}, "config.url"),
    ("alertmanager", {"url": "http://admin:hunter2@alertmanager.internal:9093"}, "config.url"),
    ("webhook", {"endpoint": "http://example.org"}, "endpoint"),
    ("datadog", {"url": "javascript:alert(1)"}, "config.url"),
]


def test_an_invalid_config_is_refused_on_create_and_update_with_a_detail_naming_the_field(
    client: TestClient[Any]
) -> None:
    ann = register(client, "ann@acme.io")
    for kind, config, named in INVALID_CONFIGS:
        response = client.post(integrations_url(ann), headers=ann.headers,
                               json={"name": "Broken", "type": kind, "config": config})
        assert 400 <= response.status_code < 500, (kind, config, response.text)
        assert named in response.json()["detail"], (kind, config, response.text)
        assert "hunter2" not in response.text
    assert client.get(integrations_url(ann), headers=ann.headers).json() == []
    created = create(client, ann)
    response = client.patch(integrations_url(ann, created["id"]), headers=ann.headers,
                            json={"config": {"url": "gopher://alertmanager.internal"}})
    assert 400 <= response.status_code < 500
    assert "config.url" in response.json()["detail"]
    assert client.get(integrations_url(ann, created["id"]), headers=ann.headers).json()["config"] == \
        created["config"]


# -- secrets ----------------------------------------------------------------------------------


def test_credentials_never_appear_in_a_response_and_the_webhook_token_only_in_the_creating_one(
    client: TestClient[Any]
) -> None:
    ann = register(client, "ann@acme.io")
    created = client.post(integrations_url(ann), headers=ann.headers, json={
        "name": "Datadog", "type": "datadog", "config": {}, "credentials": {"api_key": SECRET, "app_key": SECRET}})
    assert created.status_code == 201, created.text
    token = created.json()["webhook_token"]
    assert token and created.json()["webhook_url"].startswith("http")
    one = integrations_url(ann, created.json()["id"])
    later = [
        client.get(one, headers=ann.headers),
        client.get(integrations_url(ann), headers=ann.headers),
        client.patch(one, headers=ann.headers, json={"credentials": {"api_key": OTHER_SECRET}}),
        client.get(one, headers=ann.headers),
    ]
    for answer in [created, *later]:
        assert answer.status_code in (200, 201)
        assert SECRET not in answer.text and OTHER_SECRET not in answer.text
        assert "credentials" not in (answer.json()[0] if isinstance(answer.json(), list) else answer.json())
    for answer in later:
        assert token not in answer.text and "webhook_token" not in answer.text
    assert created.json()["has_credentials"] is True
    assert later[-1].json()["has_credentials"] is True  # new credentials replaced the old ones
    assert later[-1].json()["webhook_url"] == created.json()["webhook_url"]


def test_credentials_and_webhook_tokens_reach_neither_the_event_log_nor_the_logs_in_plaintext(
    client: TestClient[Any], container: Container, tool: ToolServer
) -> None:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    root = logging.getLogger()
    handler, level = Collect(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        ann = register(client, "ann@acme.io")
        created = create(client, ann, name="Datadog", type="datadog", config={"url": tool.url},
                         credentials={"api_key": SECRET, "app_key": PD_TOKEN})
        one = integrations_url(ann, created["id"])
        client.post(f"{one}/test", headers=ann.headers)
        client.patch(one, headers=ann.headers, json={"credentials": {"api_key": OTHER_SECRET}})
        client.post(f"{one}/test", headers=ann.headers)  # refused: the key appears in a failure path too
        check_unsaved(client, ann, "datadog", {"url": tool.url}, {"api_key": OTHER_SECRET})
        rotated = client.post(f"{one}/rotate-token", headers=ann.headers).json()["webhook_token"]
        deliver(client, created, {"alerts": [generic("DiskFull")]}, rotated)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert [h.get("DD-API-KEY") for _, h in tool.requests] == [SECRET, OTHER_SECRET, OTHER_SECRET]
    notifications = container.store.recorder.select_notifications(start=1, limit=10000)
    assert any("Integration" in n.topic for n in notifications)
    for plaintext in (SECRET, PD_TOKEN, OTHER_SECRET, created["webhook_token"], rotated):
        assert not [n.topic for n in notifications if plaintext.encode() in n.state], plaintext
        assert not [line for line in lines if plaintext in line], plaintext


# -- webhook tokens -----------------------------------------------------------------------------


def test_rotating_the_webhook_token_retires_the_old_one(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)
    response = client.post(integrations_url(ann, integration["id"], "rotate-token"), headers=ann.headers)
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["webhook_url"] == integration["webhook_url"]
    assert rotated["webhook_token"] != integration["webhook_token"]
    old = deliver(client, integration, am_payload(am_alert(severity="info")))
    assert old.status_code == 401
    assert deliver(client, integration, am_payload(am_alert(severity="info")), rotated["webhook_token"]).json() \
        == {"received": 1, "fired": 1, "repeated": 0, "resolved": 0, "incidents_opened": [], "incidents_joined": []}
    assert "webhook_token" not in client.get(integrations_url(ann, integration["id"]), headers=ann.headers).text


def test_a_missing_or_wrong_webhook_token_is_401_even_one_valid_for_another_tenant(
    client: TestClient[Any]
) -> None:
    ann = register(client, "ann@acme.io", tenant="Acme")
    eve = register(client, "eve@evil.io", tenant="Evil")
    integration = create(client, ann)
    sibling = create(client, ann, name="Second Alertmanager")
    theirs = create(client, eve)
    body = am_payload(am_alert())
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer whk_not-the-token"},
                    {"Authorization": f"Basic {integration['webhook_token']}"},
                    {"Authorization": f"Bearer {sibling['webhook_token']}"},
                    {"Authorization": f"Bearer {theirs['webhook_token']}"},
                    {"Authorization": ann.headers["Authorization"]}):
        response = client.post(integration["webhook_url"], json=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["detail"]
    # Eve's integration id with Ann's valid token is refused the same way.
    assert deliver(client, theirs, body, integration["webhook_token"]).status_code == 401
    assert alerts(client, ann) == [] and alerts(client, eve) == []


def test_a_disabled_integration_refuses_its_own_token_with_401(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)
    one = integrations_url(ann, integration["id"])
    client.patch(one, headers=ann.headers, json={"enabled": False})
    refused = deliver(client, integration, am_payload(am_alert()))
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
    assert alerts(client, ann) == []
    client.patch(one, headers=ann.headers, json={"enabled": True})
    assert deliver(client, integration, am_payload(am_alert())).status_code == 200


# -- ingestion ----------------------------------------------------------------------------------


def test_an_alertmanager_notification_becomes_an_alert_with_every_field(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)
    sent = am_alert()
    response = deliver(client, integration, am_payload(sent))
    assert response.status_code == 200, response.text
    [alert] = alerts(client, ann)
    assert {k: alert[k] for k in ("integration_id", "fingerprint", "name", "severity", "service", "description",
                                  "status", "ends_at", "fired_count")} == {
        "integration_id": integration["id"], "fingerprint": "c6f9e8b2a1d3e4f5", "name": "HighErrorRate",
        "severity": "critical", "service": "payment-api", "description": "5xx above 5% for 5 minutes",
        "status": "firing", "ends_at": None, "fired_count": 1}
    assert alert["labels"] == sent["labels"] and alert["annotations"] == sent["annotations"]
    sent_start = datetime.fromisoformat(sent["startsAt"][:26] + "+00:00")
    assert datetime.fromisoformat(alert["starts_at"]) == sent_start
    assert alert["id"] and alert["incident_id"] == response.json()["incidents_opened"][0]


def test_grafana_and_generic_notifications_become_alerts_with_their_fields(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann, name="Grafana", type="grafana", config={"url": "http://grafana.internal:3000"})
    body = {
        "receiver": "sre-copilot", "status": "firing", "orgId": 1,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "HighLatency", "grafana_folder": "Payments", "service": "payment-api",
                       "severity": "warning"},
            "annotations": {"summary": "p99 latency above 2 s"},
            "startsAt": rfc3339nano(datetime.now(UTC) - timedelta(minutes=1)), "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://grafana.internal:3000/alerting/grafana/dd1ae8/view?orgId=1",
            "fingerprint": "57c6d9296de2ad39", "silenceURL": "http://grafana.internal:3000/alerting/silence/new",
            "dashboardURL": "http://grafana.internal:3000/d/payments", "panelURL": "http://grafana.internal:3000/d/p",
            "values": {"B": 2.31, "C": 1}, "valueString": "[ var='B' labels={service=payment-api} value=2.31 ]",
        }],
        "groupLabels": {"alertname": "HighLatency"}, "commonLabels": {"alertname": "HighLatency"},
        "commonAnnotations": {}, "externalURL": "http://grafana.internal:3000/", "version": "1",
        "groupKey": '{}:{alertname="HighLatency"}', "truncatedAlerts": 0,
        "title": "[FIRING:1] HighLatency Payments", "state": "alerting", "message": "**Firing**",
    }
    response = deliver(client, integration, body)
    assert response.status_code == 200, response.text
    [alert] = alerts(client, ann)
    assert (alert["name"], alert["severity"], alert["service"], alert["description"], alert["fingerprint"]) == \
        ("HighLatency", "medium", "payment-api", "p99 latency above 2 s", "57c6d9296de2ad39")
    assert alert["integration_id"] == integration["id"]
    custom = create(client, ann, name="Custom", type="webhook", config={})
    started = datetime.now(UTC) - timedelta(minutes=7)
    body = {"alerts": [generic("QueueBacklog", service="billing-worker", severity="high", fingerprint="billing-q",
                               labels={"queue": "invoices"}, annotations={"runbook": "https://wiki/q"},
                               starts_at=started.isoformat())]}
    assert deliver(client, custom, body).status_code == 200
    [alert] = alerts(client, ann, "service=billing-worker")
    assert (alert["name"], alert["severity"], alert["fingerprint"], alert["description"]) == \
        ("QueueBacklog", "high", "billing-q", "QueueBacklog on billing-worker")
    assert alert["labels"] == {"queue": "invoices"} and alert["annotations"] == {"runbook": "https://wiki/q"}
    assert datetime.fromisoformat(alert["starts_at"]) == started
    assert alert["integration_id"] == custom["id"]


def test_the_same_alertmanager_alert_twice_is_listed_once(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)
    first = deliver(client, integration, am_payload(am_alert())).json()
    again = deliver(client, integration, am_payload(am_alert())).json()
    assert (first["fired"], again["fired"], again["repeated"]) == (1, 0, 1)
    assert again["incidents_opened"] == [] and again["incidents_joined"] == []
    [alert] = alerts(client, ann)
    assert alert["fired_count"] == 1
    [incident] = incidents(client, ann)
    assert [e["type"] for e in trail(client, ann, incident["id"])].count("Incident.AlertLinked") == 1


def test_a_resolved_notification_resolves_the_alert_with_its_end_time(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)
    deliver(client, integration, am_payload(am_alert()))
    ended = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    response = deliver(client, integration,
                       am_payload(am_alert(status="resolved", ends_at=ended.isoformat().replace("+00:00", "Z"))))
    assert response.json()["resolved"] == 1
    [alert] = alerts(client, ann)
    assert alert["status"] == "resolved"
    assert datetime.fromisoformat(alert["ends_at"]) == ended
    assert alert["fired_count"] == 1


def test_a_refired_alert_rejoins_its_open_incident_and_opens_a_new_one_once_that_is_resolved(
    client: TestClient[Any]
) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)

    def resolve_alert() -> None:
        ended = rfc3339nano(datetime.now(UTC))
        assert deliver(client, integration, am_payload(am_alert(status="resolved", ends_at=ended))).json()[
            "resolved"] == 1

    first = deliver(client, integration, am_payload(am_alert())).json()["incidents_opened"][0]
    resolve_alert()
    rejoined = deliver(client, integration, am_payload(am_alert(minutes_ago=0))).json()
    assert (rejoined["fired"], rejoined["incidents_opened"], rejoined["incidents_joined"]) == (1, [], [first])
    [alert] = alerts(client, ann)
    assert (alert["status"], alert["fired_count"], alert["ends_at"], alert["incident_id"]) == \
        ("firing", 2, None, first)
    resolve_alert()
    assert client.patch(f"{API}/incidents/{first}/state", headers=ann.headers,
                        json={"state": "resolved"}).status_code == 200
    refired = deliver(client, integration, am_payload(am_alert(minutes_ago=0))).json()
    assert refired["fired"] == 1 and refired["incidents_joined"] == []
    [second] = refired["incidents_opened"]
    assert second != first
    [alert] = alerts(client, ann)
    assert (alert["status"], alert["fired_count"], alert["incident_id"]) == ("firing", 3, second)
    assert {i["id"]: i["state"] for i in incidents(client, ann)} == {first: "resolved", second: "detected"}


def test_a_bad_payload_is_4xx_with_a_detail_and_stores_nothing(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    am = create(client, ann)
    hook = create(client, ann, name="Custom", type="webhook", config={})
    too_many = [generic(f"Alert {n}", fingerprint=f"fp-{n}") for n in range(1001)]
    cases: list[tuple[dict[str, Any], Any]] = [
        (am, b'{"alerts": [{"status": "firing", "labels": '),
        (hook, b"\xff\xfe not json"),
        (am, {"version": "4", "alerts": {"status": "firing", "labels": {"alertname": "X"}}}),
        (hook, {"alerts": "DiskFull"}),
        (hook, {"alerts": too_many}),
        (am, am_payload(*[am_alert(fingerprint=f"fp-{n}") for n in range(1001)])),
        (hook, {"alerts": [{"status": "firing"}]}),
        (am, {"alerts": [{"status": "exploding", "labels": {"alertname": "X"}}]}),
    ]
    for integration, body in cases:
        headers = {"Authorization": f"Bearer {integration['webhook_token']}", "Content-Type": "application/json"}
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = client.post(integration["webhook_url"], content=raw, headers=headers)
        assert 400 <= response.status_code < 500, (raw[:80], response.status_code, response.text)
        assert response.json()["detail"], raw[:80]
    assert alerts(client, ann) == []
    assert incidents(client, ann) == []


# -- correlation --------------------------------------------------------------------------------


def test_a_warning_opens_no_incident_until_the_rule_lowers_the_threshold_to_medium(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)
    assert client.get(rule_url(ann), headers=ann.headers).json() == {"min_severity": "high", "window_minutes": 30}
    quiet = deliver(client, integration, am_payload(am_alert(severity="warning", fingerprint="w1"))).json()
    assert quiet["fired"] == 1 and quiet["incidents_opened"] == []
    assert alerts(client, ann)[0]["incident_id"] is None and incidents(client, ann) == []
    changed = client.put(rule_url(ann), headers=ann.headers, json={"min_severity": "medium", "window_minutes": 30})
    assert changed.status_code == 200 and changed.json() == {"min_severity": "medium", "window_minutes": 30}
    loud = deliver(client, integration, am_payload(am_alert(name="Latency", severity="warning", fingerprint="w2")))
    [opened] = loud.json()["incidents_opened"]
    [incident] = incidents(client, ann)
    assert (incident["id"], incident["severity"], incident["service_name"]) == (opened, "medium", "payment-api")


def test_critical_alerts_of_one_service_share_an_incident_and_another_service_gets_its_own(
    client: TestClient[Any]
) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann)
    first = deliver(client, integration, am_payload(am_alert(name="HighErrorRate", fingerprint="a"))).json()
    second = deliver(client, integration, am_payload(am_alert(name="HighLatency", fingerprint="b"))).json()
    [shared] = first["incidents_opened"]
    assert second["incidents_opened"] == [] and second["incidents_joined"] == [shared]
    other = deliver(client, integration, am_payload(am_alert(service="search-api", fingerprint="c"))).json()
    [separate] = other["incidents_opened"]
    assert separate != shared
    by_id = {i["id"]: (i["service_name"], i["severity"]) for i in incidents(client, ann)}
    assert by_id == {shared: ("payment-api", "critical"), separate: ("search-api", "critical")}
    incident_of = {a["fingerprint"]: a["incident_id"] for a in alerts(client, ann)}
    assert incident_of == {"a": shared, "b": shared, "c": separate}
    alert_ids = {a["fingerprint"]: a["id"] for a in alerts(client, ann)}
    links = [e for e in trail(client, ann, shared) if e["type"] == "Incident.AlertLinked"]
    assert [(e["change"]["alert_name"], e["change"]["alert_id"]) for e in links] == \
        [("HighErrorRate", alert_ids["a"]), ("HighLatency", alert_ids["b"])]
    assert all(e["actor"] is None for e in links)


# -- the alerts list ----------------------------------------------------------------------------


def ingest_mixed(client: TestClient[Any], ann: Account) -> dict[str, Any]:
    integration = create(client, ann, name="Custom", type="webhook", config={})
    now = datetime.now(UTC).replace(microsecond=0)
    mixed = [("DiskFull", "checkout", "critical"), ("HighLatency", "checkout", "warning"),
             ("CertExpiry", "search", "info"), ("ErrorBurst", "search", "critical"), ("PodRestarts", "search", "low")]
    body = {"alerts": [
        generic(name, service, severity, fingerprint=f"f{n}", starts_at=(now - timedelta(minutes=5 - n)).isoformat())
        for n, (name, service, severity) in enumerate(mixed)
    ]}
    assert deliver(client, integration, body).status_code == 200
    deliver(client, integration, {"alerts": [generic("CertExpiry", "search", "info", fingerprint="f2",
                                                     status="resolved")]})
    return integration


def test_alerts_filter_by_status_severity_and_service(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    ingest_mixed(client, ann)

    def names(query: str) -> set[str]:
        return {a["name"] for a in alerts(client, ann, query)}

    assert names("status=resolved") == {"CertExpiry"}
    assert names("status=firing") == {"DiskFull", "HighLatency", "ErrorBurst", "PodRestarts"}
    assert names("severity=critical") == {"DiskFull", "ErrorBurst"}
    assert names("severity=medium") == {"HighLatency"}
    assert names("service=search") == {"CertExpiry", "ErrorBurst", "PodRestarts"}
    assert names("service=search&severity=critical&status=firing") == {"ErrorBurst"}
    assert names("service=nowhere") == set()
    for query in ("status=open", "severity=urgent", "limit=0", "limit=101", "skip=-1"):
        response = client.get(f"{API}/projects/{ann.project_id}/monitoring/alerts?{query}", headers=ann.headers)
        assert response.status_code == 422 and response.json()["detail"], query


def test_alerts_page_newest_first_with_skip_and_limit(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    ingest_mixed(client, ann)
    newest_first = ["PodRestarts", "ErrorBurst", "CertExpiry", "HighLatency", "DiskFull"]
    assert [a["name"] for a in alerts(client, ann)] == newest_first
    assert [a["name"] for a in alerts(client, ann, "limit=2")] == newest_first[:2]
    assert [a["name"] for a in alerts(client, ann, "skip=2&limit=2")] == newest_first[2:4]
    assert [a["name"] for a in alerts(client, ann, "skip=4&limit=10")] == newest_first[4:]
    assert alerts(client, ann, "skip=5") == []


def test_alerts_stamped_in_another_time_zone_sort_by_their_instant(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    integration = create(client, ann, name="Custom", type="webhook", config={})
    now = datetime.now(UTC).replace(microsecond=0)
    berlin, new_york = timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))
    stamps = {"Oldest": (now - timedelta(minutes=30)).astimezone(berlin),
              "Middle": (now - timedelta(minutes=20)).astimezone(UTC),
              "Newest": (now - timedelta(minutes=10)).astimezone(new_york)}
    deliver(client, integration, {"alerts": [generic(name, "vault", "low", starts_at=at.isoformat())
                                             for name, at in stamps.items()]})
    listed = alerts(client, ann)
    assert [a["name"] for a in listed] == ["Newest", "Middle", "Oldest"]
    assert {a["name"]: datetime.fromisoformat(a["starts_at"]) for a in listed} == stamps


# -- connection tests ---------------------------------------------------------------------------


def test_each_tool_answering_its_documented_endpoint_is_a_success_with_its_version_if_it_has_one(
    client: TestClient[Any], tool: ToolServer
) -> None:
    ann = register(client, "ann@acme.io")
    cases = [("prometheus", None, PROMETHEUS_VERSION, "/api/v1/status/buildinfo"),
             ("alertmanager", None, ALERTMANAGER_VERSION, "/api/v2/status"),
             ("grafana", None, GRAFANA_VERSION, "/api/health"),
             ("datadog", {"api_key": SECRET}, None, "/api/v1/validate"),
             ("pagerduty", {"token": PD_TOKEN}, None, "/abilities")]
    for kind, credentials, version, _ in cases:
        result = check_unsaved(client, ann, kind, {"url": tool.url}, credentials)
        assert result["success"] is True, (kind, result)
        assert result.get("version") == version and (version or "") in result["detail"], (kind, result)
        assert 0 <= result["latency_ms"] < 5000
    assert [path for path, _ in tool.requests] == [path for *_, path in cases]
    assert tool.requests[3][1].get("DD-API-KEY") == SECRET
    assert tool.requests[4][1].get("Authorization") == f"Token token={PD_TOKEN}"


def test_a_refused_key_is_a_failure_whose_detail_names_the_credentials(
    client: TestClient[Any], tool: ToolServer
) -> None:
    ann = register(client, "ann@acme.io")
    for kind, credentials, status in (("datadog", {"api_key": OTHER_SECRET}, 403),
                                      ("datadog", None, 403),
                                      ("pagerduty", {"token": "wrong-token"}, 401)):
        result = check_unsaved(client, ann, kind, {"url": tool.url}, credentials)
        assert result["success"] is False, (kind, result)
        assert "credentials" in result["detail"] and str(status) in result["detail"], (kind, result)
        assert OTHER_SECRET not in result["detail"]


def test_a_closed_port_is_a_failure_not_a_500(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    result = check_unsaved(client, ann, "prometheus", {"url": f"http://127.0.0.1:{port}"})
    assert result["success"] is False
    assert "connect" in result["detail"] and "127.0.0.1" in result["detail"]


def test_a_tool_that_never_answers_fails_after_the_5_second_timeout(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        result = check_unsaved(client, ann, "grafana", {"url": f"http://127.0.0.1:{silent.getsockname()[1]}"})
        elapsed = time.monotonic() - started
    assert result["success"] is False
    assert "5 s" in result["detail"]
    assert 4.5 <= elapsed < 7


def test_metadata_and_link_local_targets_are_refused_without_a_request(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    for url in ("http://169.254.169.254", "http://169.254.169.254/latest/meta-data",
                "http://metadata.google.internal", "http://METADATA.GOOGLE.INTERNAL.:80",
                "http://[fe80::a9fe:a9fe]", "http://[::ffff:169.254.169.254]", "http://2852039166"):
        result = check_unsaved(client, ann, "prometheus", {"url": url})
        assert result["success"] is False and result["latency_ms"] is None, (url, result)
        assert "refusing" in result["detail"], (url, result)


def test_a_saved_integration_is_tested_with_its_stored_credentials_then_with_replaced_ones(
    client: TestClient[Any], tool: ToolServer
) -> None:
    ann = register(client, "ann@acme.io")
    created = create(client, ann, name="Datadog", type="datadog", config={"url": tool.url},
                     credentials={"api_key": SECRET})
    one = integrations_url(ann, created["id"])
    response = client.post(f"{one}/test", headers=ann.headers)
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    updated = client.patch(one, headers=ann.headers, json={"credentials": {"api_key": OTHER_SECRET}})
    assert updated.status_code == 200 and updated.json()["has_credentials"] is True
    failed = client.post(f"{one}/test", headers=ann.headers).json()
    assert failed["success"] is False and "credentials" in failed["detail"]
    assert [headers.get("DD-API-KEY") for _, headers in tool.requests] == [SECRET, OTHER_SECRET]


def test_a_saved_integrations_last_test_is_on_the_next_get(
    client: TestClient[Any], container: Container, tool: ToolServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = register(client, "ann@acme.io")
    created = create(client, ann, name="Grafana", type="grafana", config={"url": tool.url})
    assert "last_test" not in created
    # A busy projector, made deterministic: the read model takes 300 ms to record a test result.
    assert container.runner is not None
    monitoring = next(p for p in container.runner.projections if p.name == "monitoring")
    apply = monitoring.apply

    def slow_apply(tx: Any, topic: str, event: Any, position: int) -> None:
        if topic.endswith("ConnectionTested"):
            time.sleep(0.3)
        apply(tx, topic, event, position)

    monkeypatch.setattr(monitoring, "apply", slow_apply)
    one = integrations_url(ann, created["id"])
    result = client.post(f"{one}/test", headers=ann.headers).json()
    assert result["success"] is True
    last = client.get(one, headers=ann.headers).json().get("last_test")
    assert last is not None, "POST …/test answered, but the GET right after it shows no last_test"
    assert (last["success"], last["detail"]) == (True, result["detail"])
    assert datetime.fromisoformat(last["at"]) > datetime.now(UTC) - timedelta(minutes=1)
