"""Incidents through the API on the real stores: lifecycle, queries, roles, isolation, races."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar.testing import TestClient

from copilot.api.app import create_api_app
from copilot.bootstrap import Container, build_container
from copilot.commands.incidents import ChangeIncidentState
from copilot.domain import ConflictError
from copilot.domain.incident import Incident
from copilot.settings import Settings
from tests.integration.conftest import Account, register

API = "/api/v1"
SEVERITIES = ["critical", "high", "medium", "low", "info"]


def create(client: TestClient[Any], account: Account, **fields: Any) -> dict[str, Any]:
    body = {"title": "High error rate", "service_name": "payment-api", "severity": "high", **fields}
    response = client.post(f"{API}/incidents", json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def move(client: TestClient[Any], account: Account, incident_id: str, state: str) -> Any:
    return client.patch(f"{API}/incidents/{incident_id}/state", json={"state": state}, headers=account.headers)


def test_a_created_incident_is_detected_and_listed_at_once(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    incident = create(client, ann, description="5xx above 5%")
    assert incident["state"] == "detected"
    assert incident["project_id"] == ann.project_id
    listed = client.get(f"{API}/incidents", headers=ann.headers).json()
    fetched = client.get(f"{API}/incidents/{incident['id']}", headers=ann.headers).json()
    assert fetched == incident
    assert listed == [incident]  # a list shows each incident as its own read does, field for field


def test_incidents_of_every_severity_page_and_filter_newest_detection_first(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    now = datetime.now(UTC)
    created = [
        create(client, ann, title=f"incident {n}", severity=SEVERITIES[n % 5],
               detected_at=(now - timedelta(minutes=30 - n)).isoformat())
        for n in range(12)
    ]
    newest_first = [i["id"] for i in reversed(created)]
    first_page = client.get(f"{API}/incidents", headers=ann.headers).json()
    assert [i["id"] for i in first_page] == newest_first[:10]
    second_page = client.get(f"{API}/incidents?skip=10&limit=10", headers=ann.headers).json()
    assert [i["id"] for i in second_page] == newest_first[10:]
    critical = client.get(f"{API}/incidents?severity=critical&limit=100", headers=ann.headers).json()
    assert {i["id"] for i in critical} == {i["id"] for i in created if i["severity"] == "critical"}
    move(client, ann, created[3]["id"], "acknowledged")
    acked = client.get(f"{API}/incidents?state=acknowledged", headers=ann.headers).json()
    assert acked == [client.get(f"{API}/incidents/{created[3]['id']}", headers=ann.headers).json()]
    assert acked[0]["acknowledged_at"] is not None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "skip=-1", "limit=ten", "severity=urgent", "state=open"])
def test_out_of_range_or_unknown_query_values_are_422(client: TestClient[Any], query: str) -> None:
    ann = register(client, "ann@acme.io")
    response = client.get(f"{API}/incidents?{query}", headers=ann.headers)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_walking_every_state_sets_each_timestamp_once(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    incident = create(client, ann)
    seen: dict[str, str] = {}
    for state, field in [("acknowledged", "acknowledged_at"), ("investigating", "investigating_started_at"),
                         ("mitigated", "mitigated_at"), ("resolved", "resolved_at")]:
        response = move(client, ann, incident["id"], state)
        assert response.status_code == 200
        assert response.json()["state"] == state
        assert response.json()[field] is not None
        seen[field] = response.json()[field]
    # Reopen and resolve again: the first resolution time stays.
    assert move(client, ann, incident["id"], "investigating").status_code == 200
    again = move(client, ann, incident["id"], "resolved").json()
    assert again["resolved_at"] == seen["resolved_at"]
    assert again["investigating_started_at"] == seen["investigating_started_at"]
    learned = move(client, ann, incident["id"], "learned").json()
    assert learned["learned_at"] is not None
    metrics = client.get(f"{API}/incidents/{incident['id']}/metrics", headers=ann.headers).json()
    assert metrics["reopen_count"] == 1
    assert metrics["state_changes"] == 7


def test_an_illegal_move_is_409_naming_both_states(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    incident = create(client, ann)
    move(client, ann, incident["id"], "resolved")
    move(client, ann, incident["id"], "learned")
    response = move(client, ann, incident["id"], "investigating")
    assert response.status_code == 409
    assert "learned" in response.json()["detail"] and "investigating" in response.json()["detail"]


def test_a_move_to_the_current_state_is_a_no_op_without_an_event(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    incident = create(client, ann)
    move(client, ann, incident["id"], "acknowledged")
    before = client.get(f"{API}/incidents/{incident['id']}/events", headers=ann.headers).json()
    response = move(client, ann, incident["id"], "acknowledged")
    assert response.status_code == 200 and response.json()["state"] == "acknowledged"
    after = client.get(f"{API}/incidents/{incident['id']}/events", headers=ann.headers).json()
    assert after == before


def test_the_audit_trail_shows_who_did_what_when_in_order(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    incident = create(client, ann)
    move(client, ann, incident["id"], "investigating")
    trail = client.get(f"{API}/incidents/{incident['id']}/events", headers=ann.headers).json()
    assert [e["type"] for e in trail] == ["Incident.Detected", "Incident.StateChanged"]
    assert trail[0]["position"] < trail[1]["position"]
    assert {e["actor"]["email"] for e in trail} == {"ann@acme.io"}
    assert trail[1]["change"] == {"from": "detected", "to": "investigating"}
    assert trail[0]["change"]["severity"] == "high"


def test_metrics_derive_from_event_times(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    detected = datetime.now(UTC) - timedelta(hours=1)
    incident = create(client, ann, detected_at=detected.isoformat())
    metrics = client.get(f"{API}/incidents/{incident['id']}/metrics", headers=ann.headers).json()
    assert metrics["time_to_acknowledge_seconds"] is None
    acked = move(client, ann, incident["id"], "acknowledged").json()
    metrics = client.get(f"{API}/incidents/{incident['id']}/metrics", headers=ann.headers).json()
    expected = (datetime.fromisoformat(acked["acknowledged_at"]) - detected).total_seconds()
    assert metrics["time_to_acknowledge_seconds"] == pytest.approx(expected, abs=0.01)
    assert 3590 < metrics["seconds_in_state"]["detected"] < 3700
    assert metrics["time_to_resolve_seconds"] is None
    assert metrics["state_changes"] == 1


def test_detected_at_in_the_future_is_refused(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    response = client.post(f"{API}/incidents", headers=ann.headers, json={
        "title": "x", "service_name": "api", "severity": "low", "detected_at": future})
    assert response.status_code == 400
    assert "future" in response.json()["detail"]


def test_viewers_read_but_cannot_create_or_move(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    incident = create(client, ann)
    invite = client.post(f"{API}/projects/{ann.project_id}/members", headers=ann.headers,
                         json={"email": "vic@acme.io", "role": "viewer"}).json()
    vic = register(client, "vic@acme.io", invite_token=invite["invite_token"])
    assert client.get(f"{API}/incidents/{incident['id']}", headers=vic.headers).status_code == 200
    assert client.post(f"{API}/incidents", headers=vic.headers,
                       json={"title": "x", "service_name": "api", "severity": "low"}).status_code == 403
    assert move(client, vic, incident["id"], "acknowledged").status_code == 403
    trail = client.get(f"{API}/incidents/{incident['id']}/events", headers=ann.headers).json()
    assert len(trail) == 1


def test_another_tenant_gets_404_on_every_incident_route(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io", tenant="Acme")
    eve = register(client, "eve@evil.io", tenant="Evil")
    incident = create(client, ann)
    base = f"{API}/incidents/{incident['id']}"
    for response in (
        client.get(base, headers=eve.headers),
        client.get(f"{base}/metrics", headers=eve.headers),
        client.get(f"{base}/events", headers=eve.headers),
        move(client, eve, incident["id"], "acknowledged"),
    ):
        assert response.status_code == 404
    assert client.get(f"{API}/incidents", headers=eve.headers).json() == []
    assert client.get(base, headers=ann.headers).json()["state"] == "detected"


def test_a_removed_member_or_a_deleted_project_lists_404_not_an_empty_page(client: TestClient[Any]) -> None:
    # The list checks access in the same query as the page; an empty answer must still tell
    # "no such project for you" (404) from "no incidents yet" ([]).
    ann = register(client, "ann@acme.io")
    create(client, ann)
    invite = client.post(f"{API}/projects/{ann.project_id}/members", headers=ann.headers,
                         json={"email": "bob@acme.io", "role": "member"}).json()
    bob = register(client, "bob@acme.io", invite_token=invite["invite_token"])
    assert len(client.get(f"{API}/incidents", headers=bob.headers).json()) == 1
    assert client.get(f"{API}/incidents?state=resolved", headers=bob.headers).json() == []

    assert client.delete(f"{API}/projects/{ann.project_id}/members/{bob.user_id}", headers=ann.headers).is_success
    removed = client.get(f"{API}/incidents", headers=bob.headers)
    assert removed.status_code == 404 and removed.json()["detail"] == "project not found"

    assert client.delete(f"{API}/projects/{ann.project_id}", headers=ann.headers).is_success
    deleted = client.get(f"{API}/incidents", headers=ann.headers)
    assert deleted.status_code == 404 and deleted.json()["detail"] == "project not found"


def test_a_demoted_or_removed_member_is_refused_at_once_here_and_within_a_second_elsewhere(
        client: TestClient[Any], settings: Settings) -> None:
    # Commands trust a role they have just read for a second (ProjectsView.ROLE_FOR). Another API process
    # (a second container on the same database) learns of a change only by asking again.
    ann = register(client, "ann@acme.io")
    invite = client.post(f"{API}/projects/{ann.project_id}/members", headers=ann.headers,
                         json={"email": "bob@acme.io", "role": "member"}).json()
    bob = register(client, "bob@acme.io", invite_token=invite["invite_token"])
    body = {"title": "Disk full", "service_name": "db", "severity": "low"}
    other = build_container(settings, run_projections=False, apply_migrations=False)
    try:
        with TestClient(create_api_app(other)) as elsewhere:
            assert client.post(f"{API}/incidents", json=body, headers=bob.headers).status_code == 200
            assert elsewhere.post(f"{API}/incidents", json=body, headers=bob.headers).status_code == 200

            demoted = client.patch(f"{API}/projects/{ann.project_id}/members/{bob.user_id}", headers=ann.headers,
                                   json={"role": "viewer"})
            assert demoted.status_code == 200, demoted.text
            changed_at = time.monotonic()
            assert client.post(f"{API}/incidents", json=body, headers=bob.headers).status_code == 403
            while (answer := elsewhere.post(f"{API}/incidents", json=body, headers=bob.headers)).status_code == 200:
                assert time.monotonic() - changed_at < 2.0, "the old role is still trusted after a second and more"
                time.sleep(0.05)
            assert answer.status_code == 403

            assert client.delete(f"{API}/projects/{ann.project_id}/members/{bob.user_id}",
                                 headers=ann.headers).is_success
            assert client.post(f"{API}/incidents", json=body, headers=bob.headers).status_code == 404
            time.sleep(1.0)
            assert elsewhere.post(f"{API}/incidents", json=body, headers=bob.headers).status_code == 404

            assert client.post(f"{API}/incidents", json=body, headers=ann.headers).status_code == 200
            assert client.delete(f"{API}/projects/{ann.project_id}", headers=ann.headers).is_success
            assert client.post(f"{API}/incidents", json=body, headers=ann.headers).status_code == 404
    finally:
        other.close()


def race(container: Container, actor: UUID, incident_id: UUID, states: tuple[str, ...]) -> list[str]:
    """Issue the moves from parallel threads released at once; return the states that were applied."""
    outcomes: list[str] = []
    barrier = threading.Barrier(len(states))

    def attempt(state: str) -> None:
        barrier.wait()
        try:
            container.incident_commands.change_state(
                ChangeIncidentState(actor=actor, incident_id=incident_id, state=state))
            outcomes.append(state)
        except ConflictError:
            outcomes.append("409")

    threads = [threading.Thread(target=attempt, args=(state,)) for state in states]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == len(states)
    return [o for o in outcomes if o != "409"]


def test_two_conflicting_moves_at_once_never_lose_or_double_an_event(container: Container,
                                                                     client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    for _ in range(5):
        incident_id = UUID(create(client, ann)["id"])
        applied = race(container, UUID(ann.user_id), incident_id, ("resolved", "acknowledged"))
        assert 1 <= len(applied) <= 2
        assert asyncio.run(container.waiter.wait_for(container.store.head()))
        trail = client.get(f"{API}/incidents/{incident_id}/events", headers=ann.headers).json()
        # Exactly the applied moves are in the log, each once, in a legal order.
        assert sorted(e["change"]["to"] for e in trail[1:]) == sorted(applied)
        assert len({e["position"] for e in trail}) == len(trail)
        if len(applied) == 2:
            assert [e["change"]["to"] for e in trail[1:]] == ["acknowledged", "resolved"]


def test_an_incident_with_a_long_history_loads_from_a_snapshot(container: Container, client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io")
    incident_id = UUID(create(client, ann)["id"])
    actor = UUID(ann.user_id)
    for n in range(120):
        container.incident_commands.change_state(
            ChangeIncidentState(actor=actor, incident_id=incident_id, state=("mitigated", "investigating")[n % 2]))
    snapshots = list(container.store.app.snapshots.get(incident_id))
    assert [s.originator_version for s in snapshots] == [100]
    loaded = container.store.get(Incident, incident_id)
    assert loaded.version == 121 and loaded.state == "investigating" and loaded.reopen_count == 0


def test_with_the_projector_stopped_a_write_is_answered_from_the_log(
    client: TestClient[Any], container: Container
) -> None:
    ann = register(client, "ann@acme.io")
    assert container.runner is not None
    container.runner.stop()  # the read models fall behind the log
    incident = create(client, ann, title="Checkout down")  # after the 5 s read-your-writes bound
    assert incident["title"] == "Checkout down" and incident["state"] == "detected"
    moved = move(client, ann, incident["id"], "acknowledged")
    assert moved.status_code == 200 and moved.json()["state"] == "acknowledged"
    assert moved.json()["acknowledged_at"] is not None
    assert client.get(f"{API}/incidents/{incident['id']}", headers=ann.headers).status_code == 404  # not projected yet
    container.runner.start()
    assert container.runner.catch_up() >= 0
    shown = client.get(f"{API}/incidents/{incident['id']}", headers=ann.headers).json()
    assert shown["state"] == "acknowledged" and shown["acknowledged_at"] == moved.json()["acknowledged_at"]
    assert shown["created_at"] == incident["created_at"]


def test_before_the_investigator_opens_it_the_workflow_shows_every_step_pending(client: TestClient[Any]) -> None:
    # This client runs no investigator, so the incident stays uninvestigated: the workflow is
    # there, waiting, rather than a 404 for an incident the user can see.
    ann = register(client, "ann@example.com")
    created = create(client, ann)
    response = client.get(f"{API}/incidents/{created['id']}/workflow", headers=ann.headers)
    assert response.status_code == 200, response.text
    workflow = response.json()
    assert (workflow["run"], workflow["status"]) == (0, "pending")
    assert [s["status"] for s in workflow["steps"]] == ["pending"] * 6
    assert client.get(f"{API}/incidents/{created['id']}/hypotheses", headers=ann.headers).json() == []
    missing = client.get(f"{API}/incidents/{uuid4()}/workflow", headers=ann.headers)
    assert missing.status_code == 404 and "detail" in missing.json()
