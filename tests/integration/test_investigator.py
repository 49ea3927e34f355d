"""The investigator following the log in-process: a burst of incidents is investigated together,
and a stretch of the log handled again (after a crash, before the position was saved) neither
starts a second run nor records anything twice."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from litestar.testing import TestClient

from copilot.bootstrap import Container
from copilot.domain.investigation import Investigation
from copilot.investigation import workflow
from copilot.investigation.llm import LLMEngine
from copilot.investigation.workflow import CONCURRENCY, YIELDING, Investigator
from copilot.ops.metrics import Metrics
from tests.e2e.openai_server import openai_server
from tests.e2e.test_llm_engine import ANSWER, EXPECTED_COST
from tests.integration.conftest import Account, register


def _follow(investigator: Investigator) -> None:
    """Run the investigator until it has nothing left, then let the read models include what it
    wrote (the API's reads, like a user's, see the projections, not the log)."""
    async def until_idle() -> None:
        while await investigator.step():
            pass
        assert investigator.read_models is not None
        assert await investigator.read_models.wait_for(investigator.store.head(), timeout=10)

    asyncio.run(until_idle())


def _follow_counting_failures(investigator: Investigator) -> int:
    """Run the investigator until it has nothing left, retrying each failed stretch as the
    follower does; how many stretches failed."""
    failures = 0

    async def follow() -> None:
        nonlocal failures
        for _ in range(10):
            try:
                if not await investigator.step():
                    return
            except RuntimeError:  # the follower logs it and retries the stretch
                failures += 1

    asyncio.run(follow())
    return failures


def _declare(client: TestClient[Any], account: Account, title: str, service: str = "checkout",
             **fields: Any) -> str:
    response = client.post("/api/v1/incidents", headers=account.headers,
                           json={"title": title, "service_name": service, "severity": "high", **fields})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _investigator(container: Container, **options: Any) -> Investigator:
    return Investigator(container.store, container.db, read_models=container.waiter, **options)


def _investigation(container: Container, incident_id: str) -> tuple[Investigation, int]:
    investigation_id = Investigation.create_id(UUID(incident_id))
    investigation = container.store.get(Investigation, investigation_id)
    return investigation, len(list(container.store.recorder.select_events(investigation_id)))


def test_a_burst_is_investigated_once_each_and_a_replayed_stretch_changes_nothing(
    client: TestClient[Any], container: Container
) -> None:
    ann = register(client, "ann@example.com")
    incidents = [_declare(client, ann, f"Errors on checkout {n}") for n in range(CONCURRENCY + 5)]
    investigator = _investigator(container)
    _follow(investigator)
    first = {i: _investigation(container, i) for i in incidents}
    for investigation, events in first.values():
        assert (investigation.run, investigation.running) == (1, False)
        assert investigation.hypotheses and events > 0
        assert set(investigation.steps.values()) <= {"completed", "skipped"}

    investigator.position = 0  # as if it crashed before saving: every trigger comes again
    _follow(investigator)
    again = {i: _investigation(container, i) for i in incidents}
    assert {i: (inv.run, events) for i, (inv, events) in again.items()} == {
        i: (inv.run, events) for i, (inv, events) in first.items()}


def test_an_investigation_that_keeps_failing_is_ended_as_failed_and_holds_up_no_other(
    client: TestClient[Any], container: Container
) -> None:
    ann = register(client, "ann@example.com")
    incidents = [_declare(client, ann, f"Errors on checkout {n}") for n in range(3)]
    investigator = _investigator(container)
    broken = Investigation.create_id(UUID(incidents[0]))
    append = investigator._append

    async def failing_append(investigation: Investigation) -> None:  # all but the give-up's append, which has no steps
        if investigation.id == broken and investigation.steps:
            raise OSError("the disk under this one is on fire")
        await append(investigation)

    investigator._append = failing_append  # type: ignore[method-assign]
    assert _follow_counting_failures(investigator) == 2  # the third attempt gives up on it
    ended, _ = _investigation(container, incidents[0])
    assert (ended.run, ended.running, ended.hypotheses) == (1, False, [])
    for incident_id in incidents[1:]:
        investigation, _ = _investigation(container, incident_id)
        assert (investigation.run, investigation.running) == (1, False) and investigation.hypotheses
    assert investigator.position == container.store.head()


def test_an_investigation_whose_database_reads_hang_is_ended_as_failed_and_holds_up_no_other(
    client: TestClient[Any], container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = register(client, "ann@example.com")
    stuck, fine = (_declare(client, ann, title) for title in ("Checkout hangs", "Search is slow"))
    investigator = _investigator(container)
    monkeypatch.setattr(workflow, "LOCAL_STEPS_TIMEOUT_SECONDS", 0.2)
    alerts = investigator.gather.alerts

    def hanging_alerts(incident: Any, project_id: UUID) -> Any:
        if str(incident.id) == stuck:
            time.sleep(0.6)  # a read the database does not answer in time
        return alerts(incident, project_id)

    investigator.gather.alerts = hanging_alerts  # type: ignore[method-assign]
    assert _follow_counting_failures(investigator) == 2  # the third attempt gives up on it
    ended, _ = _investigation(container, stuck)
    assert (ended.run, ended.running, ended.hypotheses) == (1, False, [])
    finished, _ = _investigation(container, fine)
    assert (finished.run, finished.running) == (1, False) and finished.hypotheses


def test_when_generation_fails_the_run_still_finishes_with_the_failure_recorded(
    client: TestClient[Any], container: Container
) -> None:
    ann = register(client, "ann@example.com")
    incident = _declare(client, ann, "Errors on checkout")
    investigator = _investigator(container)

    def broken_engine(*_: Any) -> Any:
        raise ValueError("the engine broke")

    investigator._generate = broken_engine  # type: ignore[method-assign]
    _follow(investigator)
    investigation, _ = _investigation(container, incident)
    assert (investigation.run, investigation.running, investigation.hypotheses) == (1, False, [])
    assert investigation.steps["generate"] == "failed" and investigation.steps["rank"] == "completed"


def test_similar_past_incidents_are_ranked_with_their_confirmed_cause_and_novelty_is_labelled(
    client: TestClient[Any], container: Container
) -> None:
    ann = register(client, "ann@example.com")
    now = datetime.now(UTC)

    def declare(title: str, service: str, hours_ago: float) -> str:
        return _declare(client, ann, title, service, detected_at=(now - timedelta(hours=hours_ago)).isoformat())

    past = [declare("Checkout 5xx after payment timeout", "checkout", hours) for hours in (50, 30, 10)]
    declare("Search index rebuild slow", "search", 20)
    investigator = _investigator(container)
    _follow(investigator)
    hypotheses = client.get(f"/api/v1/incidents/{past[1]}/hypotheses", headers=ann.headers).json()
    for hypothesis in reversed(hypotheses[:2]):  # two confirmed causes: the better ranked is the one shown
        confirmed = client.post(f"/api/v1/incidents/{past[1]}/hypotheses/{hypothesis['id']}/feedback",
                                headers=ann.headers, json={"feedback": "confirmed"})
        assert confirmed.status_code == 200, confirmed.text

    def similar(incident_id: str) -> dict[str, Any]:
        steps = client.get(f"/api/v1/incidents/{incident_id}/workflow", headers=ann.headers).json()["steps"]
        return dict(next(s for s in steps if s["step"] == "similar_incidents")["findings"])

    again = declare("Checkout 5xx, payment timeouts", "checkout", 0)
    unrelated = declare("Thumbnail worker disk full", "thumbnails", 0)
    _follow(investigator)
    found = similar(again)
    assert [i["incident_id"] for i in found["incidents"]] == [past[2], past[1], past[0]]  # alike, then newest
    assert found["novelty"] == "frequent"
    by_id = {i["incident_id"]: i for i in found["incidents"]}
    assert (by_id[past[1]]["confirmed_category"], by_id[past[1]]["confirmed_claim"]) == (
        hypotheses[0]["category"], hypotheses[0]["claim"])
    assert by_id[past[0]]["confirmed_category"] is None
    assert similar(unrelated) == {"incidents": [], "novelty": "new"}


def test_while_requests_are_answered_in_its_process_only_a_few_investigations_run_at_once(
    client: TestClient[Any], container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    # All roles in one process: a burst's creates are answered first, its investigations go on
    # at YIELDING at once and catch up at CONCURRENCY once no request is being answered.
    scrape = client.get("/metrics").text  # the API counts the requests it is answering: here, this one
    assert "copilot_http_requests_in_flight 1.0" in scrape
    ann = register(client, "ann@example.com")
    investigator = _investigator(container)
    investigator.metrics = Metrics()
    drive, running, seen = investigator._drive, 0, []

    async def counting(work: Any) -> Any:
        nonlocal running
        running += 1
        seen.append(running)
        try:
            await asyncio.sleep(0.02)  # long enough for every driver allowed to start one
            return await drive(work)
        finally:
            running -= 1

    monkeypatch.setattr(investigator, "_drive", counting)
    for in_flight, most in ((1, YIELDING), (0, CONCURRENCY)):
        investigator.metrics.requests_in_flight = in_flight
        incidents = [_declare(client, ann, f"Errors on checkout {n}") for n in range(CONCURRENCY + 5)]
        seen.clear()
        _follow(investigator)
        assert max(seen) == most
        assert all(_investigation(container, i)[0].hypotheses for i in incidents)


def test_a_burst_with_identical_evidence_pays_for_one_llm_call(client: TestClient[Any], container: Container) -> None:
    # Incidents of one service arriving together are investigated at once, before any of their
    # runs has ended: the first asks the LLM, the others wait for it and reuse its answer.
    ann = register(client, "ann@example.com")
    burst = [_declare(client, ann, f"Checkout is slow ({n})", "payment-api") for n in range(6)]
    with openai_server(ANSWER) as llm:
        llm.delay = 1.0
        investigator = _investigator(container, llm=LLMEngine("openai/gpt-4o-mini", llm.url, "sk-local"))
        _follow(investigator)
    assert len(llm.requests) == 1
    calls = [call for incident_id in burst
             for call in _investigation(container, incident_id)[0].findings["generate"]["llm_calls"]]
    assert sorted(c["cached"] for c in calls) == [False] + [True] * 5
    assert all(Decimal(c["saved_usd"]) == EXPECTED_COST for c in calls if c["cached"])
