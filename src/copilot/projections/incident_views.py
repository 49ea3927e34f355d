"""Queries over the incident read models."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from copilot.projections.db import ReadDatabase, Row

__all__ = ["IncidentsView"]

_COLUMNS = (
    "id, tenant_id, project_id, title, description, service_name, severity, state, detected_at, detected_by,"
    " acknowledged_at, investigating_started_at, mitigated_at, resolved_at, learned_at, state_since,"
    " state_changes, reopen_count, created_at, updated_at"
)

_QUALIFIED = ", ".join("i." + column.strip() for column in _COLUMNS.split(","))
# Incidents `i` of live projects the user `:user_id` is a member of (`m` is the membership).
_VISIBLE_TO_USER = (
    " FROM incidents i JOIN project_members m ON m.project_id = i.project_id AND m.user_id = :user_id"
    " JOIN projects p ON p.id = i.project_id AND p.deleted_at IS NULL"
)


class IncidentsView:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    async def page(
        self, project_id: UUID, user_id: UUID, columns: tuple[str, ...], *, skip: int, limit: int,
        severity: str | None = None, state: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """A page of the project's incidents, newest first, each a tuple of `columns` in that order
        (a caller building objects positionally makes no dict per row); empty unless the user is a
        member of the (live) project — the access check rides in the same query."""
        where = ["i.project_id = :project_id"]
        params: dict[str, object] = {"project_id": project_id, "user_id": user_id, "limit": limit, "skip": skip}
        if severity is not None:
            where.append("i.severity = :severity")
            params["severity"] = severity
        if state is not None:
            where.append("i.state = :state")
            params["state"] = state
        return await self.db.afetch_tuples(
            f"SELECT {', '.join('i.' + column for column in columns)}{_VISIBLE_TO_USER} WHERE {' AND '.join(where)}"
            " ORDER BY i.detected_at DESC, i.id DESC LIMIT :limit OFFSET :skip",
            params,
        )

    async def get_visible(self, incident_id: UUID, user_id: UUID) -> Row | None:
        """The incident, if the user is a member of its (live) project; else None."""
        return await self.db.afetch_one(
            f"SELECT {_QUALIFIED}, m.role{_VISIBLE_TO_USER} WHERE i.id = :id", {"id": incident_id, "user_id": user_id}
        )

    def seconds_in_states(self, incident_id: UUID) -> dict[str, float]:
        rows = self.db.fetch_all(
            "SELECT state, seconds FROM incident_state_time WHERE incident_id = :id", {"id": incident_id}
        )
        return {row["state"]: float(row["seconds"]) for row in rows}

    def events(self, incident_id: UUID) -> list[Row]:
        return self.db.fetch_all(
            "SELECT e.position, e.type, e.occurred_at, e.actor_id, u.email AS actor_email,"
            " u.full_name AS actor_name, e.change FROM incident_events e LEFT JOIN users u ON u.id = e.actor_id"
            " WHERE e.incident_id = :id ORDER BY e.position",
            {"id": incident_id},
        )
