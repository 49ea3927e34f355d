"""Applies the versioned SQL under `eventstore/` that a database has not seen yet."""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from copilot.settings import Settings

__all__ = ["Migration", "available_migrations", "migrate"]

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# An arbitrary constant: the advisory lock that keeps two starting processes from
# migrating the same PostgreSQL database at once.
_PG_LOCK_KEY = 0x5C0_91_07


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def _root() -> Path:
    return Path(__file__).resolve().parents[2] / "eventstore"


def available_migrations(engine: str, root: Path | None = None) -> list[Migration]:
    folder = (root or _root()) / engine
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), path))
    return found


_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)"
)


def migrate(settings: Settings) -> list[Migration]:
    """Apply what is missing; return what was applied (empty when up to date)."""
    if settings.embedded:
        return _migrate_sqlite(settings.sqlite_path)
    return _migrate_postgres(settings)


def _migrate_sqlite(path: Path) -> list[Migration]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute(_LEDGER)
        applied: list[Migration] = []
        for migration in available_migrations("sqlite"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                ).fetchone()
                if done:
                    conn.execute("ROLLBACK")
                    continue
                # executescript would commit our transaction; run statement by statement.
                for statement in _statements(migration.path.read_text()):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, datetime.now(UTC).isoformat()),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            applied.append(migration)
            log.info("applied migration %04d_%s", migration.version, migration.name)
        return applied
    finally:
        conn.close()


def _migrate_postgres(settings: Settings) -> list[Migration]:
    import psycopg

    applied: list[Migration] = []
    with psycopg.connect(settings.postgres.conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_PG_LOCK_KEY,))
        try:
            conn.execute(_LEDGER)
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in available_migrations("postgres"):
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.path.read_text().encode())
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                        (migration.version, migration.name, datetime.now(UTC).isoformat()),
                    )
                applied.append(migration)
                log.info("applied migration %04d_%s", migration.version, migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_PG_LOCK_KEY,))
    return applied


def _statements(script: str) -> list[str]:
    """Split a script on semicolons that end a line (our files keep one statement per `;`)."""
    without_comments = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", without_comments) if s.strip()]
