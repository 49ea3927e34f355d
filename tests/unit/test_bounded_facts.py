"""What the projector and relay remember of earlier events is bounded, and keeps the newest.

A long-running process learns a few facts per incident (its tenant and project, its investigation's
ids). Kept without bound they would grow with the log; emptied all at once when full, every
in-flight investigation would have to read its facts back at once. When full, the oldest quarter
is forgotten and the newest stay.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic

from copilot.domain.incident import Incident
from copilot.projections.base import Facts
from copilot.stream.events import PublicEventEncoder


def test_a_full_map_forgets_its_oldest_quarter_and_keeps_the_newest() -> None:
    facts: Facts[int, str] = Facts(limit=100)
    for n in range(100):
        facts.put(n, f"fact {n}")
    facts.put(100, "fact 100")
    assert len(facts) == 76
    assert [facts.get(n) for n in (0, 24)] == [None, None]
    assert [facts.get(n) for n in (25, 99, 100)] == ["fact 25", "fact 99", "fact 100"]
    facts.put(50, "fact 50 again")  # a key already there takes no room
    assert len(facts) == 76 and facts.get(50) == "fact 50 again"


def _detected_then_moved(tenant: UUID, project: UUID) -> tuple[list[object], UUID]:
    incident = Incident(tenant_id=tenant, project_id=project, title="Checkout 5xx", description="",
                        service_name="checkout", severity="high", detected_at=datetime.now(UTC), detected_by=uuid4())
    incident.change_state("acknowledged", by=None)
    return list(incident.collect_events()), incident.id


def test_the_relay_still_knows_the_newest_incidents_scope_after_more_incidents_than_it_keeps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Facts, "LIMIT", 40)
    asked: list[UUID] = []
    encoder = PublicEventEncoder(lambda incident_id: asked.append(incident_id) or None)
    tenant, project = uuid4(), uuid4()
    later = []
    for position in range(100):
        (detected, moved), incident_id = _detected_then_moved(tenant, project)
        assert encoder.encode(get_topic(type(detected)), detected, position) is not None
        later.append((incident_id, moved))
    _, newest_move = later[-1]
    public = encoder.encode(get_topic(type(newest_move)), newest_move, 200)
    assert public is not None and (public.tenant_id, public.project_id) == (tenant, project) and asked == []
    oldest_id, oldest_move = later[0]
    assert encoder.encode(get_topic(type(oldest_move)), oldest_move, 201) is None  # the event store knows no such
    assert asked == [oldest_id]
