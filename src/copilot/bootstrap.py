"""The composition root: builds every component of a copilot process from its settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from copilot.commands.alerts import AlertHandlers
from copilot.commands.auth import AuthHandlers
from copilot.commands.incidents import IncidentHandlers
from copilot.commands.integrations import IntegrationHandlers
from copilot.commands.investigations import InvestigationHandlers
from copilot.commands.projects import ProjectHandlers
from copilot.commands.store import EventStore, build_event_store
from copilot.migrations import migrate
from copilot.projections import all_projections
from copilot.projections.analytics_views import AnalyticsView
from copilot.projections.db import PostgresReadDatabase, ReadDatabase, SQLiteReadDatabase
from copilot.projections.incident_views import IncidentsView
from copilot.projections.runner import ProjectionRunner, TrackingWaiter
from copilot.projections.views import AccountsView, InvestigationsView, MonitoringView, ProjectsView
from copilot.security import PasswordHasher, TokenIssuer
from copilot.security.credentials import CredentialCipher
from copilot.settings import Settings

__all__ = ["Container", "PositionWaiter", "build_container", "build_read_database"]

log = logging.getLogger(__name__)


class PositionWaiter(Protocol):
    async def wait_for(self, position: int, timeout: float = 5.0) -> bool: ...


def build_read_database(settings: Settings) -> ReadDatabase:
    if settings.embedded:
        return SQLiteReadDatabase(settings.sqlite_path)
    return PostgresReadDatabase(settings.postgres.conninfo)


@dataclass
class Container:
    """Everything a role needs, built once; `close()` releases it in reverse order."""

    settings: Settings
    store: EventStore
    db: ReadDatabase
    runner: ProjectionRunner | None
    waiter: PositionWaiter
    tokens: TokenIssuer
    hasher: PasswordHasher
    accounts: AccountsView
    projects: ProjectsView
    incidents: IncidentsView
    monitoring: MonitoringView
    investigations: InvestigationsView
    analytics: AnalyticsView
    auth: AuthHandlers
    project_commands: ProjectHandlers
    incident_commands: IncidentHandlers
    integration_commands: IntegrationHandlers
    alert_commands: AlertHandlers
    investigation_commands: InvestigationHandlers
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.runner is not None:
            self.runner.stop()
        self.db.close()
        self.store.close()


def build_container(settings: Settings, *, run_projections: bool = True, apply_migrations: bool = True) -> Container:
    """Connect to the configured backend and wire the pieces together.

    `run_projections` starts this process's own projection runner (the all-in-one server,
    the projector role); without it, read-your-writes polls the tracking table instead.
    """
    if apply_migrations:
        applied = migrate(settings)
        if applied:
            log.info("database migrated to version %d", applied[-1].version)
    store = build_event_store(settings)
    db = build_read_database(settings)
    projections = all_projections()
    runner: ProjectionRunner | None = None
    waiter: PositionWaiter
    if run_projections:
        runner = ProjectionRunner(
            store,
            db,
            projections,
            listen_conninfo=None if settings.embedded else settings.postgres.conninfo,
        )
        store.on_append(runner.wake)
        waiter = runner
    else:
        waiter = TrackingWaiter(db, [p.name for p in projections])
    projects = ProjectsView(db)
    return Container(
        settings=settings,
        store=store,
        db=db,
        runner=runner,
        waiter=waiter,
        tokens=TokenIssuer(settings.secret_key),
        hasher=(hasher := PasswordHasher()),
        accounts=AccountsView(db),
        projects=projects,
        incidents=IncidentsView(db),
        monitoring=MonitoringView(db),
        investigations=InvestigationsView(db),
        analytics=AnalyticsView(db),
        auth=AuthHandlers(store, hasher, projects.first_for_user),
        project_commands=ProjectHandlers(store),
        incident_commands=IncidentHandlers(store, projects.role_enum, projects.arole_enum),
        integration_commands=IntegrationHandlers(store, projects.role_enum, CredentialCipher(settings.encryption_key)),
        alert_commands=AlertHandlers(store),
        investigation_commands=InvestigationHandlers(store, projects.role_enum),
    )
