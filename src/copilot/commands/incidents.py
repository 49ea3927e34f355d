"""Commands of incidents: declare one, move it through its lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec

from copilot.commands.access import AsyncRoleLookup, RoleLookup, check_role, require_role
from copilot.commands.store import EventStore, with_retries
from copilot.domain import InvalidInputError, Role
from copilot.domain.incident import Incident

__all__ = ["ChangeIncidentState", "CreateIncident", "IncidentHandlers", "RoleLookup", "StateChangeResult"]

# How far in the future a client clock may be before its detected_at is refused.
CLOCK_SKEW = timedelta(minutes=5)



class CreateIncident(msgspec.Struct, frozen=True):
    actor: UUID
    tenant_id: UUID
    project_id: UUID
    title: str
    description: str
    service_name: str
    severity: str
    detected_at: datetime | None = None


class ChangeIncidentState(msgspec.Struct, frozen=True):
    actor: UUID
    incident_id: UUID
    state: str


@dataclass(frozen=True)
class StateChangeResult:
    incident_id: UUID
    changed: bool
    position: int


class IncidentHandlers:
    """Load → decide → append for incidents; the caller's role comes from the read model."""

    def __init__(
        self, store: EventStore, role_of: RoleLookup, arole_of: AsyncRoleLookup,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.role_of = role_of
        self.arole_of = arole_of
        self.clock = clock

    def _require(self, project_id: UUID, actor: UUID, minimum: Role, what: str) -> None:
        require_role(self.role_of, project_id, actor, minimum, what)

    async def create(self, cmd: CreateIncident) -> tuple[Incident, int]:
        """Runs on the event loop (the API's busiest command): nothing is loaded, the role is
        usually remembered, and the append goes to group commit without a worker thread."""
        check_role(await self.arole_of(cmd.project_id, cmd.actor), Role.MEMBER, "project")
        now = self.clock()
        detected_at = cmd.detected_at or now
        if detected_at.tzinfo is None:
            raise InvalidInputError("detected_at must include a timezone, e.g. 2026-01-24T12:00:00Z")
        if detected_at > now + CLOCK_SKEW:
            raise InvalidInputError("detected_at is in the future")
        incident = Incident(
            tenant_id=cmd.tenant_id,
            project_id=cmd.project_id,
            title=cmd.title,
            description=cmd.description,
            service_name=cmd.service_name,
            severity=cmd.severity,
            detected_at=detected_at.astimezone(UTC),
            detected_by=cmd.actor,
        )
        return incident, await self.store.append_new(incident)

    def change_state(self, cmd: ChangeIncidentState) -> StateChangeResult:
        def attempt() -> StateChangeResult:
            incident = self.store.get(Incident, cmd.incident_id)
            self._require(incident.project_id, cmd.actor, Role.MEMBER, "incident")
            changed = incident.change_state(cmd.state, by=cmd.actor)
            return StateChangeResult(incident.id, changed, self.store.append(incident))

        return with_retries(attempt)
