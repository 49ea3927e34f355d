"""Commands around investigations: record a change event, ask for an investigation, give feedback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec

from copilot.commands.access import RoleLookup, require_role
from copilot.commands.store import EventStore, with_retries
from copilot.domain import Incident, InvalidInputError, NotFoundError, Role
from copilot.domain.change import CHANGE_TYPES, Change
from copilot.domain.investigation import Investigation

__all__ = ["GiveFeedback", "InvestigationHandlers", "RecordChange", "RequestInvestigation", "open_investigation"]


class RecordChange(msgspec.Struct, frozen=True):
    tenant_id: UUID
    project_id: UUID
    service_name: str
    kind: str
    description: str
    version: str | None
    occurred_at: datetime | None
    actor: UUID | None  # a member, or None when an integration's webhook token recorded it
    integration_id: UUID | None = None


class RequestInvestigation(msgspec.Struct, frozen=True):
    actor: UUID
    incident_id: UUID


class GiveFeedback(msgspec.Struct, frozen=True):
    actor: UUID
    incident_id: UUID
    hypothesis_id: UUID
    feedback: str
    comment: str | None


def open_investigation(store: EventStore, incident: Incident) -> Investigation:
    existing = store.find(Investigation, Investigation.create_id(incident.id))
    return existing or Investigation(incident_id=incident.id, tenant_id=incident.tenant_id,
                                     project_id=incident.project_id)


class InvestigationHandlers:
    def __init__(self, store: EventStore, role_of: RoleLookup,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.role_of = role_of
        self.clock = clock

    def _require(self, project_id: UUID, actor: UUID, minimum: Role, what: str) -> None:
        require_role(self.role_of, project_id, actor, minimum, what)

    def record_change(self, cmd: RecordChange) -> tuple[UUID, int]:
        if cmd.actor is not None:
            self._require(cmd.project_id, cmd.actor, Role.MEMBER, "project")
        if cmd.kind not in CHANGE_TYPES:
            raise InvalidInputError(f"type must be one of {', '.join(CHANGE_TYPES)}")
        now = self.clock()
        occurred_at = cmd.occurred_at or now
        if occurred_at.tzinfo is None:
            raise InvalidInputError("occurred_at must include a timezone, e.g. 2026-01-24T12:00:00Z")
        if occurred_at > now + timedelta(minutes=5):
            raise InvalidInputError("occurred_at is in the future")
        change = Change(
            tenant_id=cmd.tenant_id, project_id=cmd.project_id, service_name=cmd.service_name, kind=cmd.kind,
            description=cmd.description, release=cmd.version, occurred_at=occurred_at.astimezone(UTC),
            recorded_by=cmd.actor, integration_id=cmd.integration_id,
        )
        return change.id, self.store.append(change)

    def request(self, cmd: RequestInvestigation) -> int:
        def attempt() -> int:
            incident = self.store.get(Incident, cmd.incident_id)
            self._require(incident.project_id, cmd.actor, Role.MEMBER, "incident")
            investigation = open_investigation(self.store, incident)
            investigation.start_run("manual", cmd.actor)
            return self.store.append(investigation)

        return with_retries(attempt)

    def give_feedback(self, cmd: GiveFeedback) -> int:
        def attempt() -> int:
            incident = self.store.get(Incident, cmd.incident_id)
            self._require(incident.project_id, cmd.actor, Role.MEMBER, "incident")
            investigation = self.store.find(Investigation, Investigation.create_id(incident.id))
            if investigation is None:
                raise NotFoundError("hypothesis not found")
            investigation.give_feedback(cmd.hypothesis_id, cmd.feedback, cmd.comment, cmd.actor)
            return self.store.append(investigation)

        return with_retries(attempt)
