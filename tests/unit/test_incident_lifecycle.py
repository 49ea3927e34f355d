"""The incident state machine exactly as DESIGN.md tabulates it."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.domain import ConflictError, InvalidInputError
from copilot.domain.incident import Incident

# Written out from DESIGN.md, independently of the code's own table.
ALLOWED = {
    "detected": {"acknowledged", "investigating", "mitigated", "resolved", "inconclusive"},
    "acknowledged": {"investigating", "mitigated", "resolved", "inconclusive"},
    "investigating": {"mitigated", "resolved", "inconclusive"},
    "mitigated": {"investigating", "resolved", "inconclusive"},
    "resolved": {"learned", "investigating"},
    "inconclusive": {"investigating", "learned"},
    "learned": set(),
}
STATES = list(ALLOWED)
# A shortest legal path from detected to each state.
PATH = {
    "detected": [], "acknowledged": ["acknowledged"], "investigating": ["investigating"],
    "mitigated": ["mitigated"], "resolved": ["resolved"], "inconclusive": ["inconclusive"],
    "learned": ["resolved", "learned"],
}


def new_incident(severity: str = "high") -> Incident:
    return Incident(tenant_id=uuid4(), project_id=uuid4(), title="High error rate", description="",
                    service_name="payment-api", severity=severity, detected_at=datetime.now(UTC), detected_by=uuid4())


def incident_in(state: str) -> Incident:
    incident = new_incident()
    for step in PATH[state]:
        incident.change_state(step, by=None)
    incident.collect_events()
    return incident


@pytest.mark.parametrize(("source", "target"), [(s, t) for s in STATES for t in STATES if s != t])
def test_each_move_is_allowed_exactly_when_the_design_table_says_so(source: str, target: str) -> None:
    incident = incident_in(source)
    if target in ALLOWED[source]:
        assert incident.change_state(target, by=None) is True
        assert incident.state == target
        [event] = incident.collect_events()
        assert (event.from_state, event.to_state) == (source, target)
    else:
        with pytest.raises(ConflictError, match=f"from {source} to {target}"):
            incident.change_state(target, by=None)
        assert incident.collect_events() == []


@pytest.mark.parametrize("state", STATES)
def test_a_move_to_the_current_state_records_nothing(state: str) -> None:
    incident = incident_in(state)
    assert incident.change_state(state, by=None) is False
    assert incident.collect_events() == []


def test_unknown_states_and_severities_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        new_incident(severity="urgent")
    with pytest.raises(InvalidInputError):
        new_incident().change_state("closed", by=None)


def test_every_event_records_the_acting_user() -> None:
    actor = uuid4()
    incident = new_incident()
    incident.change_state("acknowledged", by=actor)
    detected, changed = incident.collect_events()
    assert detected.detected_by == incident.detected_by
    assert changed.by == actor


@settings(max_examples=200)
@given(moves=st.lists(st.sampled_from(STATES), max_size=25))
def test_any_sequence_keeps_first_entry_timestamps_and_counts_reopens(moves: list[str]) -> None:
    incident = new_incident()
    first_entry: dict[str, datetime] = {}
    reopens = 0
    for target in moves:
        source = incident.state
        try:
            changed = incident.change_state(target, by=None)
        except ConflictError:
            assert target not in ALLOWED[source]
            continue
        if not changed:
            assert target == source
            continue
        assert target in ALLOWED[source]
        reopens += source in ("resolved", "inconclusive") and target == "investigating"
        first_entry.setdefault(target, incident.modified_on)
    assert incident.reopen_count == reopens
    for state, field in [("acknowledged", "acknowledged_at"), ("investigating", "investigating_started_at"),
                         ("mitigated", "mitigated_at"), ("resolved", "resolved_at"), ("learned", "learned_at")]:
        assert getattr(incident, field) == first_entry.get(state)
