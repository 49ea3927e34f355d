"""Projects and their members as the API reads them."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEvent

from copilot.domain import Project
from copilot.projections.base import Handler, Projection, event_type
from copilot.projections.db import Transaction

__all__ = ["ProjectsProjection"]


class ProjectsProjection(Projection):
    name = "projects"
    tables = ("projects", "project_members")

    def handlers(self) -> dict[type[DomainEvent], Handler]:
        return {
            event_type(Project, "Created"): self._created,
            event_type(Project, "Updated"): self._updated,
            event_type(Project, "Deleted"): self._deleted,
            event_type(Project, "MemberAdded"): self._member_added,
            event_type(Project, "MemberRoleChanged"): self._member_role_changed,
            event_type(Project, "MemberRemoved"): self._member_removed,
            event_type(Project, "CorrelationRuleChanged"): self._rule_changed,
        }

    def _created(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "INSERT INTO projects (id, tenant_id, name, description, created_by, created_at, updated_at) "
            "VALUES (:id, :tenant_id, :name, :description, :by, :at, :at) ON CONFLICT (id) DO NOTHING",
            {"id": e.originator_id, "tenant_id": e.tenant_id, "name": e.name,
             "description": e.description, "by": e.created_by, "at": e.timestamp},
        )
        self._upsert_member(tx, e.originator_id, e.created_by, "owner", e.timestamp)

    def _updated(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "UPDATE projects SET name = :name, description = :description, updated_at = :at WHERE id = :id",
            {"id": e.originator_id, "name": e.name, "description": e.description, "at": e.timestamp},
        )

    def _deleted(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "UPDATE projects SET deleted_at = :at, updated_at = :at WHERE id = :id",
            {"id": e.originator_id, "at": e.timestamp},
        )

    def _upsert_member(self, tx: Transaction, project_id: Any, user_id: Any, role: str, at: Any) -> None:
        tx.execute(
            "INSERT INTO project_members (project_id, user_id, role, added_at) "
            "VALUES (:project_id, :user_id, :role, :at) "
            "ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
            {"project_id": project_id, "user_id": user_id, "role": role, "at": at},
        )

    def _member_added(self, tx: Transaction, e: Any) -> None:
        self._upsert_member(tx, e.originator_id, e.user_id, e.role, e.timestamp)

    def _member_role_changed(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "UPDATE project_members SET role = :role WHERE project_id = :project_id AND user_id = :user_id",
            {"project_id": e.originator_id, "user_id": e.user_id, "role": e.new_role},
        )

    def _member_removed(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "DELETE FROM project_members WHERE project_id = :project_id AND user_id = :user_id",
            {"project_id": e.originator_id, "user_id": e.user_id},
        )

    def _rule_changed(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "UPDATE projects SET alert_min_severity = :severity, alert_window_minutes = :window, updated_at = :at"
            " WHERE id = :id",
            {"id": e.originator_id, "severity": e.min_severity, "window": e.window_minutes, "at": e.timestamp},
        )
