"""An investigation as a new user meets it: a Prometheus with history, a deploy, an incident — the
workflow shows each step, the top hypothesis names the deploy with cited numbers, feedback moves
later confidences, and with no evidence the engine abstains. Real Prometheus, backfilled with promtool."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.api import Account, Users
from tests.e2e.monitoring_tools import PROMETHEUS, prometheus
from tests.e2e.server import Server
from tests.e2e.test_live_stream import live, receive

STEP = 15  # seconds between samples


def backfill(workdir: Path, service: str, detected: datetime) -> None:
    """Two hours of request counters for `service`: 0.2% errors, then 6% from 8 minutes before detection."""
    start = int((detected - timedelta(hours=1, minutes=30)).timestamp())
    end = int(min(datetime.now(UTC), detected + timedelta(minutes=20)).timestamp())
    breaks = int((detected - timedelta(minutes=8)).timestamp())
    ok = err = 0.0
    ok_lines, err_lines = [], []
    for ts in range(start, end, STEP):
        rate = 100.0  # requests per second, steady
        error_share = 0.06 if ts >= breaks else 0.002
        ok += rate * STEP * (1 - error_share)
        err += rate * STEP * error_share
        ok_lines.append(f'http_requests_total{{service="{service}",status="200"}} {ok:.1f} {ts}')
        err_lines.append(f'http_requests_total{{service="{service}",status="500"}} {err:.1f} {ts}')
    text = "# TYPE http_requests counter\n" + "\n".join(ok_lines + err_lines) + "\n# EOF\n"
    source = workdir / "history.om"
    workdir.mkdir(parents=True, exist_ok=True)
    source.write_text(text)
    promtool = str(Path(PROMETHEUS).with_name("promtool"))
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(workdir / "data")],
                   check=True, capture_output=True, timeout=120)


def wait_for_run(owner: Account, incident_id: str, run: int = 1, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = owner.client.get(f"/incidents/{incident_id}/workflow")
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            if body["run"] == run and body["status"] != "running":
                return body
        time.sleep(0.3)
    last = owner.client.get(f"/incidents/{incident_id}/workflow").text
    raise AssertionError(f"the investigation of {incident_id} did not finish: {last}")


def test_the_top_hypothesis_names_the_deploy_with_cited_numbers_and_feedback_moves_confidence(
    server: Server, users: Users, tmp_path: Path
) -> None:
    owner = users.register(who="sre")
    detected = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    backfill(tmp_path / "prom", "payment-api", detected)
    with prometheus(tmp_path / "prom", None, "groups: []\n") as prom_url:
        created = owner.client.post(f"/projects/{owner.project_id}/monitoring/integrations",
                                    json={"name": "prom", "type": "prometheus", "config": {"url": prom_url}})
        assert created.status_code == 201, created.text
        change = owner.client.post(f"/projects/{owner.project_id}/changes", json={
            "service_name": "payment-api", "type": "deploy", "description": "checkout refactor",
            "version": "v2.4.5", "occurred_at": (detected - timedelta(minutes=10)).isoformat()})
        assert change.status_code == 201, change.text

        with live(server, owner, ["hypotheses"]) as socket:
            incident = owner.client.post("/incidents", json={
                "title": "High error rate on payment-api", "service_name": "payment-api", "severity": "critical",
                "detected_at": detected.isoformat()}).json()
            workflow = wait_for_run(owner, incident["id"])
            [generated] = receive(socket, 1, timeout=10)
        assert generated["type"] == "hypothesis.generated" and generated["incidentId"] == incident["id"]

        assert [s["step"] for s in workflow["steps"]] == [
            "collect_alerts", "query_metrics", "change_events", "similar_incidents", "generate", "rank"]
        assert all(s["status"] == "completed" for s in workflow["steps"]), workflow["steps"]
        metrics = {m["signal"]: m for m in workflow["steps"][1]["findings"]}
        assert metrics["error_ratio"]["before"] < 0.005 and metrics["error_ratio"]["during"] > 0.05
        assert abs(metrics["traffic"]["change_pct"]) < 10

        hypotheses = owner.client.get(f"/incidents/{incident['id']}/hypotheses").json()
        best = hypotheses[0]
        assert generated["data"]["top_hypothesis"]["claim"] == best["claim"]
        assert best["category"] == "deploy_regression" and "v2.4.5" in best["claim"]
        assert any("10 minutes before detection" in e for e in best["supporting_evidence"])
        assert any("error ratio of payment-api" in e and "%" in e for e in best["supporting_evidence"])
        assert best["confidence_lower"] < best["confidence_score"] < best["confidence_upper"]

        confirmed = owner.client.post(f"/incidents/{incident['id']}/hypotheses/{best['id']}/feedback",
                                      json={"feedback": "confirmed", "comment": "rolled back, fixed"})
        assert confirmed.status_code == 200 and confirmed.json()["user_feedback"] == "confirmed"

        # The next deploy regression of this project: confirmations raise and tighten the confidence.
        owner.client.post(f"/projects/{owner.project_id}/changes", json={
            "service_name": "payment-api", "type": "deploy", "description": "checkout refactor, again",
            "version": "v2.4.6", "occurred_at": (detected - timedelta(minutes=10)).isoformat()})
        again = owner.client.post("/incidents", json={
            "title": "High error rate on payment-api", "service_name": "payment-api", "severity": "critical",
            "detected_at": detected.isoformat()}).json()
        wait_for_run(owner, again["id"])
        later = next(h for h in owner.client.get(f"/incidents/{again['id']}/hypotheses").json()
                     if h["category"] == "deploy_regression")
        assert later["confidence_score"] > best["confidence_score"]
        width = best["confidence_upper"] - best["confidence_lower"]
        assert later["confidence_upper"] - later["confidence_lower"] < width


def test_with_no_evidence_the_engine_abstains_and_a_rerun_is_recorded(server: Server, users: Users) -> None:
    owner = users.register(who="sre")
    incident = owner.client.post("/incidents", json={
        "title": "Something feels slow", "service_name": "mystery", "severity": "low"}).json()
    workflow = wait_for_run(owner, incident["id"])
    statuses = {s["step"]: s["status"] for s in workflow["steps"]}
    assert statuses["query_metrics"] == "skipped"
    [first, *_] = owner.client.get(f"/incidents/{incident['id']}/hypotheses").json()
    assert first["recommendation"] == "inconclusive" and first["confidence_score"] < 0.5

    assert owner.client.post(f"/incidents/{incident['id']}/investigate").status_code == 202
    rerun = wait_for_run(owner, incident["id"], run=2)
    assert rerun["trigger"] == "manual"
    assert rerun["cached"] is True  # identical evidence: the earlier hypotheses are reused


def test_changes_are_listed_and_a_webhook_token_can_record_them(server: Server, users: Users) -> None:
    owner = users.register(who="sre")
    integration = owner.client.post(f"/projects/{owner.project_id}/monitoring/integrations",
                                    json={"name": "ci", "type": "webhook"}).json()
    pipeline = users.anonymous()
    recorded = pipeline.post(f"/webhooks/changes/{integration['id']}",
                             headers={"Authorization": f"Bearer {integration['webhook_token']}"},
                             json={"service_name": "api", "type": "deploy", "description": "ci", "version": "1.2.3"})
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["integration_id"] == integration["id"] and recorded.json()["recorded_by"] is None
    refused = pipeline.post(f"/webhooks/changes/{integration['id']}", headers={"Authorization": "Bearer whk_nope"},
                            json={"service_name": "api", "type": "deploy", "description": "x"})
    assert refused.status_code == 401
    owner.client.post(f"/projects/{owner.project_id}/changes",
                      json={"service_name": "db", "type": "config", "description": "pool size 50"})
    listed = owner.client.get(f"/projects/{owner.project_id}/changes").json()
    assert [c["service_name"] for c in listed] == ["db", "api"]
    deploys = owner.client.get(f"/projects/{owner.project_id}/changes?type=deploy").json()
    assert [c["version"] for c in deploys] == ["1.2.3"]
    assert owner.client.post(f"/projects/{owner.project_id}/changes",
                             json={"service_name": "db", "type": "reboot", "description": "x"}).status_code == 422
