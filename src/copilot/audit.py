"""Audit replay: an incident's history and its state at any moment, from the log alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEvent

from copilot.commands.store import EventStore, mutate_all
from copilot.domain import NotFoundError, User
from copilot.domain.incident import Incident

__all__ = ["AuditEntry", "AuditReplay", "replay_incident"]

_SNAPSHOT_FIELDS = (
    "title", "service_name", "severity", "state", "detected_at", "acknowledged_at", "investigating_started_at",
    "mitigated_at", "resolved_at", "learned_at", "reopen_count",
)
_BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


@dataclass(frozen=True)
class AuditEntry:
    position: int
    version: int
    occurred_at: datetime
    type: str
    actor_id: UUID | None
    actor_email: str | None
    change: dict[str, Any]


@dataclass(frozen=True)
class AuditReplay:
    incident_id: UUID
    as_of: datetime | None
    entries: list[AuditEntry]
    state: dict[str, Any] | None  # None: the incident did not exist yet at `as_of`


def _change(event: DomainEvent) -> dict[str, Any]:
    values = {k: v for k, v in vars(event).items() if k not in _BASE_FIELDS}
    values.pop("by", None)
    values.pop("detected_by", None)
    return values


def _actor(event: DomainEvent) -> UUID | None:
    actor = getattr(event, "by", None) or getattr(event, "detected_by", None)
    return actor if isinstance(actor, UUID) else None


def replay_incident(store: EventStore, incident_id: UUID, at: datetime | None = None) -> AuditReplay:
    """Every event of the incident in order (up to `at`, if given) and its state as of then."""
    if store.find(Incident, incident_id) is None:
        raise NotFoundError("incident not found")
    positions = store.positions_of(incident_id)
    emails: dict[UUID, str | None] = {}

    def email_of(user_id: UUID | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in emails:
            user = store.find(User, user_id)
            emails[user_id] = user.email if user else None
        return emails[user_id]

    entries = []
    events: list[Any] = list(store.app.events.get(incident_id))
    for event in events:
        if at is not None and event.timestamp > at:
            break
        actor = _actor(event)
        entries.append(AuditEntry(
            position=positions.get(event.originator_version, 0), version=event.originator_version,
            occurred_at=event.timestamp, type=f"Incident.{type(event).__name__}", actor_id=actor,
            actor_email=email_of(actor), change=_change(event),
        ))
    state: dict[str, Any] | None = None
    if entries:
        incident: Incident = store.app.repository.get(incident_id, version=entries[-1].version,
                                                           projector_func=mutate_all)
        state = {name: getattr(incident, name) for name in _SNAPSHOT_FIELDS}
    return AuditReplay(incident_id=incident_id, as_of=at, entries=entries, state=state)
