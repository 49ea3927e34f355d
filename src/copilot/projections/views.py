"""Queries over the read models: the only way the API reads state."""

from __future__ import annotations

import asyncio
import time
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

_VISIBLE_PROJECT = (
    f"SELECT {_PROJECT_COLUMNS} FROM project_members m JOIN projects p ON p.id = m.project_id "
    "WHERE m.project_id = :project_id AND m.user_id = :user_id AND p.deleted_at IS NULL"
)


class AccountsView:
    # A session seen live is trusted for this long without asking the database again. Every
    # request checks its session; the query was a fifth of a list's CPU and two fifths of a
    # get's. A session ended through this process is forgotten at once (`forget_session`);
    # one ended through another API process stops working here within LIVE_FOR seconds.
    LIVE_FOR = 1.0
    MAX_REMEMBERED = 10_000

    def __init__(self, db: ReadDatabase) -> None:
        self.db = db
        self._live_until: dict[UUID, float] = {}  # session id -> monotonic time it is trusted until
        self._asking: dict[UUID, asyncio.Future[bool]] = {}  # session id -> the query under way

    def user(self, user_id: UUID) -> Row | None:
        return self.db.fetch_one(
            "SELECT id, tenant_id, email, full_name, status, created_at FROM users WHERE id = :id",
            {"id": user_id},
        )

    def tenant(self, tenant_id: UUID) -> Row | None:
        return self.db.fetch_one(
            "SELECT id, name, slug, created_at FROM tenants WHERE id = :id", {"id": tenant_id}
        )

    async def session_is_active(self, session_id: UUID) -> bool:
        if self._live_until.get(session_id, 0.0) > time.monotonic():
            return True
        # One question per session at a time. Without it, every request that found the window
        # lapsed asked too, until the first answer came back: up to one query per connection
        # each second, for one caller holding many connections.
        asking = self._asking.get(session_id)
        if asking is None or asking.get_loop() is not asyncio.get_running_loop():
            asking = self._asking[session_id] = asyncio.ensure_future(self._ask(session_id))
            asking.add_done_callback(lambda done: self._asked(session_id, done))
        return await asyncio.shield(asking)  # a caller that goes away does not cancel the others' answer

    async def _ask(self, session_id: UUID) -> bool:
        asked_at = time.monotonic()  # trusted from when it was asked, not from when it was answered
        row = await self.db.afetch_one(
            "SELECT revoked_at FROM sessions WHERE id = :id", {"id": session_id}
        )
        live = row is not None and row["revoked_at"] is None
        if not live:
            self._live_until.pop(session_id, None)
        elif self._asking.get(session_id) is asyncio.current_task():  # not forgotten meanwhile
            if len(self._live_until) >= self.MAX_REMEMBERED:
                self._live_until.clear()  # bounded; those still in use come back on their next request
            self._live_until[session_id] = asked_at + self.LIVE_FOR
        return live

    def _asked(self, session_id: UUID, done: asyncio.Future[bool]) -> None:
        if self._asking.get(session_id) is done:
            del self._asking[session_id]
        if not done.cancelled():
            done.exception()  # retrieved: its callers (if any are left) got it

    def forget_session(self, session_id: UUID) -> None:
        """The session has ended: ask the database on its next request (a question under way may
        have been asked before the end: its answer is neither shared any more nor remembered)."""
        self._live_until.pop(session_id, None)
        self._asking.pop(session_id, None)


class ProjectsView:
    # A member's role, as commands check it (`role_enum`), is trusted for this long without asking
    # the database again. Every create, move and investigation checks it; the query was a sixth of
    # a create's CPU in the API process. Only roles found are remembered, so a member added is let
    # in at once. A role changed, a member removed or a project deleted through this process is
    # forgotten at once (`forget_roles`); through another API process it takes effect here within
    # ROLE_FOR seconds, as a logout does (AccountsView.LIVE_FOR). Reads (`visible`, `arole` and the
    # access check inside each list query) always ask the database.
    ROLE_FOR = 1.0
    MAX_REMEMBERED = 10_000

    def __init__(self, db: ReadDatabase) -> None:
        self.db = db
        self._roles: dict[tuple[UUID, UUID], tuple[Role, float]] = {}  # -> role, monotonic time trusted until
        self._forgotten = 0  # how many times roles were forgotten: an answer asked before is not kept

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
        return self.db.fetch_one(_VISIBLE_PROJECT, {"project_id": project_id, "user_id": user_id})

    def role(self, project_id: UUID, user_id: UUID) -> str | None:
        row = self.visible(project_id, user_id)
        return None if row is None else str(row["role"])

    async def arole(self, project_id: UUID, user_id: UUID) -> str | None:
        """`role`, from a coroutine (a request checking its caller's access on its way)."""
        row = await self.db.afetch_one(_VISIBLE_PROJECT, {"project_id": project_id, "user_id": user_id})
        return None if row is None else str(row["role"])

    def role_enum(self, project_id: UUID, user_id: UUID) -> Role | None:
        """The user's role in the live project, None for a non-member (commands run this in worker
        threads: dict reads and writes are atomic, and a clear races with nothing but a store)."""
        key, asked_at, forgotten = (project_id, user_id), time.monotonic(), self._forgotten
        known = self._known(key, asked_at)
        if known is not None:
            return known
        return self._remember(key, self.role(project_id, user_id), asked_at, forgotten)

    async def arole_enum(self, project_id: UUID, user_id: UUID) -> Role | None:
        """`role_enum` from a coroutine (a command that runs on the event loop), sharing its memory."""
        key, asked_at, forgotten = (project_id, user_id), time.monotonic(), self._forgotten
        known = self._known(key, asked_at)
        if known is not None:
            return known
        return self._remember(key, await self.arole(project_id, user_id), asked_at, forgotten)

    def _known(self, key: tuple[UUID, UUID], asked_at: float) -> Role | None:
        known = self._roles.get(key)  # trusted from when it was asked, not from when it was answered
        return known[0] if known is not None and known[1] > asked_at else None

    def _remember(self, key: tuple[UUID, UUID], role: str | None, asked_at: float, forgotten: int) -> Role | None:
        if role is None:
            self._roles.pop(key, None)
            return None
        found = Role(role)
        if len(self._roles) >= self.MAX_REMEMBERED:
            self._roles.clear()  # bounded; those still in use come back on their next command
        self._roles[key] = (found, asked_at + self.ROLE_FOR)
        if forgotten != self._forgotten:  # forgotten while it was asked (or stored): it may be stale
            self._roles.pop(key, None)
        return found

    def forget_roles(self) -> None:
        """A membership changed through this process (a role, a removal, a deleted project): every
        remembered role is asked again (such changes are rare; forgetting all keeps it simple)."""
        self._forgotten += 1
        self._roles.clear()

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


class InvestigationsView:
    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def changes(self, project_id: UUID, *, skip: int, limit: int, service: str | None = None,
                kind: str | None = None) -> list[Row]:
        where = ["project_id = :project_id"]
        params: dict[str, object] = {"project_id": project_id, "skip": skip, "limit": limit}
        if service is not None:
            where.append("service_name = :service")
            params["service"] = service
        if kind is not None:
            where.append("kind = :kind")
            params["kind"] = kind
        return self.db.fetch_all(
            "SELECT id, project_id, service_name, kind, description, version, occurred_at, recorded_by,"
            f" integration_id, created_at FROM changes WHERE {' AND '.join(where)}"
            " ORDER BY occurred_at DESC, id DESC LIMIT :limit OFFSET :skip",
            params,
        )

    def change(self, change_id: UUID) -> Row | None:
        return self.db.fetch_one(
            "SELECT id, project_id, service_name, kind, description, version, occurred_at, recorded_by,"
            " integration_id, created_at FROM changes WHERE id = :id", {"id": change_id})

    def investigation(self, incident_id: UUID) -> Row | None:
        return self.db.fetch_one(
            "SELECT incident_id, run, status, trigger, started_at, finished_at, engine, cached FROM investigations"
            " WHERE incident_id = :id", {"id": incident_id})

    def steps(self, incident_id: UUID, run: int) -> list[Row]:
        return self.db.fetch_all(
            "SELECT step, status, started_at, finished_at, summary, findings FROM investigation_steps"
            " WHERE incident_id = :id AND run = :run ORDER BY position", {"id": incident_id, "run": run})

    def hypotheses(self, incident_id: UUID) -> list[Row]:
        """The hypotheses of the latest run that produced any (a re-run keeps the last ones until it does)."""
        return self.db.fetch_all(
            "SELECT h.id, h.incident_id, h.claim, h.description, h.category, h.confidence_score,"
            " h.confidence_lower, h.confidence_upper, h.rank, h.supporting_evidence, h.contradicting_evidence,"
            " h.recommendation, h.user_feedback, h.created_at FROM hypotheses h WHERE h.incident_id = :id"
            " AND h.run = (SELECT MAX(run) FROM hypotheses WHERE incident_id = :id) ORDER BY h.rank",
            {"id": incident_id})
