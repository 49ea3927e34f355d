"""Incident endpoints: create, list, get, change state, metrics and the audit trail."""

from __future__ import annotations

from typing import Annotated, Any, cast
from uuid import UUID

import msgspec
from litestar import Controller, get, patch, post
from litestar.params import Parameter, QueryParameter

from copilot.api.context import Principal, blocking, read_your_writes
from copilot.api.schemas import (
    Actor,
    IncidentCreate,
    IncidentEvent,
    IncidentMetrics,
    IncidentRead,
    IncidentState,
    IncidentStateUpdate,
    Severity,
)
from copilot.bootstrap import Container
from copilot.commands.incidents import ChangeIncidentState, CreateIncident
from copilot.domain import NotFoundError
from copilot.domain.incident import Incident

__all__ = ["IncidentsController", "lifecycle_metrics"]


_LISTED = IncidentRead.__struct_fields__


def _incident(row: dict[str, Any]) -> IncidentRead:
    return msgspec.convert(row, IncidentRead, from_attributes=False, strict=False)


def _from_log(incident: Incident) -> IncidentRead:
    return IncidentRead(
        id=incident.id, project_id=incident.project_id, title=incident.title, description=incident.description,
        service_name=incident.service_name, severity=cast(Severity, incident.severity),
        state=cast(IncidentState, incident.state), detected_at=incident.detected_at,
        acknowledged_at=incident.acknowledged_at, investigating_started_at=incident.investigating_started_at,
        mitigated_at=incident.mitigated_at, resolved_at=incident.resolved_at, learned_at=incident.learned_at,
        created_at=incident.created_on, updated_at=incident.modified_on,
    )


def _seconds_between(start: Any, end: Any) -> float | None:
    return None if end is None else round((end - start).total_seconds(), 3)


def lifecycle_metrics(row: dict[str, Any], in_states: dict[str, float]) -> IncidentMetrics:
    """Timings from the incident's read model: all derived from event times, none from the clock."""
    detected = row["detected_at"]
    return IncidentMetrics(
        incident_id=row["id"], state=row["state"], detected_at=detected,
        time_to_acknowledge_seconds=_seconds_between(detected, row["acknowledged_at"]),
        time_to_investigate_seconds=_seconds_between(detected, row["investigating_started_at"]),
        time_to_mitigate_seconds=_seconds_between(detected, row["mitigated_at"]),
        time_to_resolve_seconds=_seconds_between(detected, row["resolved_at"]),
        seconds_in_state={state: round(seconds, 3) for state, seconds in in_states.items()},
        current_state_since=row["state_since"], state_changes=row["state_changes"],
        reopen_count=row["reopen_count"],
    )


class IncidentsController(Controller):
    path = "/incidents"
    tags = ["Incidents"]

    @staticmethod
    def _chosen_project(principal: Principal) -> UUID:
        if principal.project_id is None:
            raise NotFoundError("no active project; choose one with POST /auth/switch-project")
        return principal.project_id

    @classmethod
    async def _active_project(cls, container: Container, principal: Principal) -> UUID:
        project_id = cls._chosen_project(principal)
        if await container.projects.arole(project_id, principal.user_id) is None:
            raise NotFoundError("project not found")
        return project_id

    @staticmethod
    async def _visible(container: Container, incident_id: UUID, principal: Principal) -> dict[str, Any]:
        row = await container.incidents.get_visible(incident_id, principal.user_id)
        if row is None:
            raise NotFoundError("incident not found")
        return row

    async def _after_write(self, container: Container, incident_id: UUID, position: int,
                           principal: Principal) -> IncidentRead:
        """The incident as the read models show it once they include the write; if they are late
        (a projector down or far behind), as the log has it, rather than a 404 for a write that
        happened."""
        if await read_your_writes(container, position):
            return _incident(await self._visible(container, incident_id, principal))
        return _from_log(await blocking(container.store.get, Incident, incident_id))

    @get("/", operation_id="listIncidents", summary="Incidents of the active project, newest first")
    async def list_incidents(
        self,
        principal: Principal,
        container: Container,
        skip: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 10,
        severity: Severity | None = None,
        state_filter: Annotated[IncidentState | None, QueryParameter(name="state")] = None,
    ) -> list[IncidentRead]:
        project_id = self._chosen_project(principal)
        rows = await container.incidents.page(project_id, principal.user_id, _LISTED, skip=skip, limit=limit,
                                              severity=severity, state=state_filter)
        if not rows:  # an empty page, or no access to the project: tell which
            await self._active_project(container, principal)
        # The columns are the schema's fields in order, and the read model's column types are
        # the fields' types: each row is the struct's arguments as they stand.
        return [IncidentRead(*row) for row in rows]

    @post("/", operation_id="createIncident", status_code=200, summary="Declare an incident")
    async def create_incident(self, data: IncidentCreate, principal: Principal, container: Container) -> IncidentRead:
        project_id = self._chosen_project(principal)
        cmd = CreateIncident(
            actor=principal.user_id, tenant_id=principal.tenant_id, project_id=project_id, title=data.title,
            description=data.description, service_name=data.service_name, severity=data.severity,
            detected_at=data.detected_at,
        )
        incident, position = await container.incident_commands.create(cmd)
        # A new incident is exactly its one event, which is also all its read model holds: answer
        # from it, once the read models include it (so the next read sees it), without reading back.
        await read_your_writes(container, position)
        return _from_log(incident)

    @get("/{incident_id:uuid}", operation_id="getIncident", summary="An incident with every timestamp")
    async def get_incident(self, incident_id: UUID, principal: Principal, container: Container) -> IncidentRead:
        return _incident(await self._visible(container, incident_id, principal))

    @patch("/{incident_id:uuid}/state", operation_id="changeIncidentState", summary="Move an incident")
    async def change_state(
        self, incident_id: UUID, data: IncidentStateUpdate, principal: Principal, container: Container
    ) -> IncidentRead:
        cmd = ChangeIncidentState(actor=principal.user_id, incident_id=incident_id, state=data.state)
        result = await blocking(container.incident_commands.change_state, cmd)
        return await self._after_write(container, incident_id, result.position, principal)

    @get("/{incident_id:uuid}/metrics", operation_id="getIncidentMetrics", summary="Lifecycle timings")
    async def metrics(self, incident_id: UUID, principal: Principal, container: Container) -> IncidentMetrics:
        row = await self._visible(container, incident_id, principal)
        in_states = await blocking(container.incidents.seconds_in_states, incident_id)
        return lifecycle_metrics(row, in_states)

    @get("/{incident_id:uuid}/events", operation_id="getIncidentEvents", summary="The audit trail")
    async def events(self, incident_id: UUID, principal: Principal, container: Container) -> list[IncidentEvent]:
        await self._visible(container, incident_id, principal)
        rows = await blocking(container.incidents.events, incident_id)
        return [
            IncidentEvent(
                position=row["position"], type=row["type"], occurred_at=row["occurred_at"],
                actor=None if row["actor_id"] is None else Actor(
                    id=row["actor_id"], email=row["actor_email"], full_name=row["actor_name"]),
                change=msgspec.json.decode(row["change"]),
            )
            for row in rows
        ]
