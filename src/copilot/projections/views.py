"""Queries over the read models: the only way the API reads state."""

from __future__ import annotations

from uuid import UUID

from copilot.domain.roles import Role
from copilot.projections.db import ReadDatabase, Row

__all__ = ["AccountsView", "ProjectsView"]

_PROJECT_COLUMNS = (
    "p.id, p.tenant_id, p.name, p.description, p.created_by, p.created_at, p.updated_at, m.role"
)

_MEMBER_QUERY = (
    "SELECT u.id AS user_id, u.email, u.full_name, u.status, m.role, m.added_at "
    "FROM project_members m JOIN users u ON u.id = m.user_id"
)


class AccountsView:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def user(self, user_id: UUID) -> Row | None:
        return self.db.fetch_one(
            "SELECT id, tenant_id, email, full_name, status, created_at FROM users WHERE id = :id",
            {"id": user_id},
        )

    def tenant(self, tenant_id: UUID) -> Row | None:
        return self.db.fetch_one(
            "SELECT id, name, slug, created_at FROM tenants WHERE id = :id", {"id": tenant_id}
        )

    def session_is_active(self, session_id: UUID) -> bool:
        row = self.db.fetch_one(
            "SELECT revoked_at FROM sessions WHERE id = :id", {"id": session_id}
        )
        return row is not None and row["revoked_at"] is None


class ProjectsView:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def for_user(self, user_id: UUID) -> list[Row]:
        """The user's live projects with their role, oldest first."""
        return self.db.fetch_all(
            f"SELECT {_PROJECT_COLUMNS} FROM project_members m JOIN projects p ON p.id = m.project_id "
            "WHERE m.user_id = :user_id AND p.deleted_at IS NULL ORDER BY p.created_at, p.id",
            {"user_id": user_id},
        )

    def first_for_user(self, user_id: UUID) -> UUID | None:
        rows = self.for_user(user_id)
        return rows[0]["id"] if rows else None

    def visible(self, project_id: UUID, user_id: UUID) -> Row | None:
        """The project with the user's role, or None if it is deleted or they are not a member."""
        return self.db.fetch_one(
            f"SELECT {_PROJECT_COLUMNS} FROM project_members m JOIN projects p ON p.id = m.project_id "
            "WHERE m.project_id = :project_id AND m.user_id = :user_id AND p.deleted_at IS NULL",
            {"project_id": project_id, "user_id": user_id},
        )

    def role(self, project_id: UUID, user_id: UUID) -> str | None:
        row = self.visible(project_id, user_id)
        return None if row is None else str(row["role"])

    def role_enum(self, project_id: UUID, user_id: UUID) -> Role | None:
        role = self.role(project_id, user_id)
        return None if role is None else Role(role)

    def members(self, project_id: UUID) -> list[Row]:
        return self.db.fetch_all(
            f"{_MEMBER_QUERY} WHERE m.project_id = :project_id ORDER BY m.added_at, u.email",
            {"project_id": project_id},
        )

    def member(self, project_id: UUID, user_id: UUID) -> Row | None:
        return self.db.fetch_one(
            f"{_MEMBER_QUERY} WHERE m.project_id = :project_id AND m.user_id = :user_id",
            {"project_id": project_id, "user_id": user_id},
        )


_INTEGRATION_COLUMNS = (
    "id, project_id, name, type, config, has_credentials, enabled, last_test_at, last_test_success,"
    " last_test_detail, created_at, updated_at"
)
_ALERT_COLUMNS = (
    "id, integration_id, fingerprint, name, severity, service, description, labels, annotations, status,"
    " starts_at, ends_at, incident_id, fired_count, created_at, updated_at"
)


class MonitoringView:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def integrations(self, project_id: UUID) -> list[Row]:
        return self.db.fetch_all(
            f"SELECT {_INTEGRATION_COLUMNS} FROM integrations WHERE project_id = :project_id"
            " AND deleted_at IS NULL ORDER BY created_at, id",
            {"project_id": project_id},
        )

    def integration(self, project_id: UUID, integration_id: UUID) -> Row | None:
        return self.db.fetch_one(
            f"SELECT {_INTEGRATION_COLUMNS} FROM integrations WHERE id = :id AND project_id = :project_id"
            " AND deleted_at IS NULL",
            {"id": integration_id, "project_id": project_id},
        )

    def alerts(self, project_id: UUID, *, skip: int, limit: int, status: str | None = None,
               severity: str | None = None, service: str | None = None) -> list[Row]:
        where = ["project_id = :project_id"]
        params: dict[str, object] = {"project_id": project_id, "skip": skip, "limit": limit}
        for column, value in (("status", status), ("severity", severity), ("service", service)):
            if value is not None:
                where.append(f"{column} = :{column}")
                params[column] = value
        return self.db.fetch_all(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(where)}"
            " ORDER BY starts_at DESC, id DESC LIMIT :limit OFFSET :skip",
            params,
        )

    def correlation_rule(self, project_id: UUID) -> Row | None:
        return self.db.fetch_one(
            "SELECT alert_min_severity, alert_window_minutes FROM projects WHERE id = :id", {"id": project_id}
        )
