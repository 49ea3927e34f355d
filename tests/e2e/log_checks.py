"""What a crash or a restore must leave behind, read straight from a PostgreSQL database: the read models
row for row, what `copilot projections rebuild` makes of the log, and a log made only of whole commands."""

from __future__ import annotations

import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import psycopg

from copilot.commands.store import build_event_store
from copilot.projections import all_projections
from copilot.settings import load_settings
from tests.e2e.server import COPILOT, user_env

__all__ = [
    "READ_MODEL_TABLES", "assert_rebuild_changes_nothing", "dump_read_models", "log_events", "log_head",
    "rebuild_with_cli", "wait_for_projections", "whole_commands",
]

READ_MODEL_TABLES = [table for projection in all_projections() for table in projection.tables]
PROJECTIONS = [projection.name for projection in all_projections()]

Dump = dict[str, list[tuple[str, ...]]]


def dump_read_models(url: str) -> Dump:
    """Every row of every read-model table, as text, sorted: equal dumps mean equal read models."""
    with psycopg.connect(url) as conn:
        return {
            table: sorted(tuple(str(value) for value in row) for row in conn.execute(f"SELECT * FROM {table}"))
            for table in READ_MODEL_TABLES
        }


def log_head(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM copilot_events").fetchone()
    return int(row[0]) if row else 0


def wait_for_projections(url: str, timeout: float = 60.0) -> int:
    """Wait until every projection's tracking position is the log head; the head."""
    deadline = time.monotonic() + timeout
    while True:
        head = log_head(url)
        with psycopg.connect(url) as conn:
            positions = dict(conn.execute("SELECT name, position FROM projection_tracking").fetchall())
        behind = {name: positions.get(name, 0) for name in PROJECTIONS if positions.get(name, 0) != head}
        if not behind:
            return head
        assert time.monotonic() < deadline, f"projections did not reach the log head {head}: {behind}"
        time.sleep(0.2)


def rebuild_with_cli(env: dict[str, str]) -> None:
    """`copilot projections rebuild` as an operator runs it, on the database of `env`."""
    done = subprocess.run([str(COPILOT), "projections", "rebuild"], env=user_env(**env), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"copilot projections rebuild failed:\n{done.stdout}\n{done.stderr}"


def assert_rebuild_changes_nothing(url: str, env: dict[str, str]) -> Dump:
    """The live read models equal what a full rebuild from the log makes of them: no row lost or doubled."""
    live = dump_read_models(url)
    rebuild_with_cli(env)
    rebuilt = dump_read_models(url)
    for table in READ_MODEL_TABLES:
        missing = Counter(rebuilt[table]) - Counter(live[table])
        extra = Counter(live[table]) - Counter(rebuilt[table])
        assert not missing and not extra, f"{table}: live lacks {list(missing)[:3]}, has extra {list(extra)[:3]}"
    return live


def log_events(env: dict[str, str]) -> list[Any]:
    """Every event of the log, in log order, decoded by the copilot's own event store."""
    store = build_event_store(load_settings(env))
    try:
        events = []
        position = 0
        while True:
            batch = store.recorder.select_notifications(start=position, limit=1000, inclusive_of_start=False)
            if not batch:
                return events
            events.extend(store.app.mapper.to_domain_event(n) for n in batch)
            position = batch[-1].id
    finally:
        store.close()


def _kind(event: Any) -> str:
    return type(event).__qualname__  # "Tenant.Registered", "Incident.StateChanged", ...


def whole_commands(events: Iterable[Any]) -> dict[str, Any]:
    """Assert the log holds only whole commands; what it holds, for the caller's own checks.

    Every aggregate's versions run 1..n with no gap or repeat. A registration writes six aggregates
    in one append (email and slug claims, tenant, user, first project, session): each one present
    has all the others.
    """
    events = list(events)
    versions: dict[UUID, list[int]] = defaultdict(list)
    for event in events:
        versions[event.originator_id].append(event.originator_version)
    for aggregate, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"aggregate {aggregate} has versions {seen}"

    def of(kind: str) -> list[Any]:
        return [event for event in events if _kind(event) == kind]

    tenants = {e.originator_id: e.registered_by for e in of("Tenant.Registered")}
    users = {e.originator_id: e.tenant_id for e in of("User.Registered")}
    emails = {e.user_id for e in of("EmailIndex.Claimed")}
    slugs = {e.tenant_id for e in of("TenantSlugIndex.Claimed")}
    first_projects = {(e.tenant_id, e.created_by) for e in of("Project.Created")}
    sessions = {(e.user_id, e.tenant_id) for e in of("Session.Started")}
    for tenant, user in tenants.items():
        registration = {"user": users.get(user) == tenant, "email claim": user in emails, "slug claim": tenant in slugs,
                        "first project": (tenant, user) in first_projects, "session": (user, tenant) in sessions}
        assert all(registration.values()), f"registration of tenant {tenant} is partial: {registration}"
    for user, tenant in users.items():
        assert tenants.get(tenant) == user, f"user {user} registered without their tenant {tenant}"
    assert slugs <= set(tenants), "a slug was claimed for a tenant that is not in the log"
    assert {tenant for tenant, _ in first_projects} <= set(tenants), "a project of a tenant not in the log"

    moves: dict[UUID, list[str]] = defaultdict(list)
    for event in events:
        if _kind(event) == "Incident.StateChanged":
            moves[event.originator_id].append(event.to_state)
    return {
        "users": set(users),
        "incidents": {e.originator_id for e in of("Incident.Detected")},
        "moves": moves,
        "events": len(events),
    }
