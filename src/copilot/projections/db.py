"""The read-model database: one small interface over SQLite and PostgreSQL.

SQL is written once with `:name` placeholders and the portable subset both engines share
(`INSERT … ON CONFLICT … DO UPDATE`, `LIMIT/OFFSET`); the PostgreSQL adapter rewrites the
placeholders for psycopg. UUIDs and timestamps come back as `UUID` and aware `datetime`
from both engines.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from uuid import UUID

__all__ = ["PostgresReadDatabase", "ReadDatabase", "Row", "SQLiteReadDatabase", "Transaction"]

Row = dict[str, Any]
Params = Mapping[str, Any]


class Transaction(Protocol):
    def execute(self, sql: str, params: Params | None = None) -> None: ...
    def executemany(self, sql: str, rows: Sequence[Params]) -> None: ...
    def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]: ...
    def fetch_one(self, sql: str, params: Params | None = None) -> Row | None: ...


class ReadDatabase(Protocol):
    dialect: Literal["sqlite", "postgres"]

    def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]: ...
    def fetch_one(self, sql: str, params: Params | None = None) -> Row | None: ...
    def transaction(self) -> Any: ...  # context manager yielding a Transaction
    def close(self) -> None: ...


# -- SQLite ------------------------------------------------------------------------------

sqlite3.register_adapter(UUID, str)
sqlite3.register_adapter(datetime, lambda value: value.isoformat())
sqlite3.register_converter("UUID", lambda raw: UUID(raw.decode()))
sqlite3.register_converter("TIMESTAMP", lambda raw: datetime.fromisoformat(raw.decode()))


def _sqlite_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


class _SQLiteTransaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._conn.execute(sql, params or {})

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._conn.executemany(sql, rows)

    def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        return list(self._conn.execute(sql, params or {}).fetchall())

    def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        row: Row | None = self._conn.execute(sql, params or {}).fetchone()
        return row


class SQLiteReadDatabase:
    """One connection per thread to the embedded database file (WAL: readers never block)."""

    dialect: Literal["sqlite", "postgres"] = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                detect_types=sqlite3.PARSE_DECLTYPES,
                check_same_thread=False,
                timeout=30,
            )
            conn.row_factory = _sqlite_row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        return _SQLiteTransaction(self._connection()).fetch_all(sql, params)

    def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        return _SQLiteTransaction(self._connection()).fetch_one(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SQLiteTransaction(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def executescript(self, script: str) -> None:
        self._connection().executescript(script)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


# -- PostgreSQL --------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_translated: dict[str, str] = {}


def to_psycopg(sql: str) -> str:
    """Rewrite `:name` placeholders as `%(name)s` (and escape literal `%`), memoized."""
    out = _translated.get(sql)
    if out is None:
        out = _PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))
        _translated[sql] = out
    return out


class _PostgresTransaction:
    def __init__(self, cursor: Any) -> None:
        self._cur = cursor

    def execute(self, sql: str, params: Params | None = None) -> None:
        self._cur.execute(to_psycopg(sql), params or {})

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._cur.executemany(to_psycopg(sql), rows)

    def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        self._cur.execute(to_psycopg(sql), params or {})
        return list(self._cur.fetchall())

    def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        self._cur.execute(to_psycopg(sql), params or {})
        row: Row | None = self._cur.fetchone()
        return row


class PostgresReadDatabase:
    """A psycopg connection pool on the same database as the event store."""

    dialect: Literal["sqlite", "postgres"] = "postgres"

    def __init__(self, conninfo: str, min_size: int = 1, max_size: int = 10) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.pool = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=True,
            timeout=10,
        )

    def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        with self.pool.connection() as conn, conn.cursor() as cur:
            return _PostgresTransaction(cur).fetch_all(sql, params)

    def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        with self.pool.connection() as conn, conn.cursor() as cur:
            return _PostgresTransaction(cur).fetch_one(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _PostgresTransaction(cur)

    def close(self) -> None:
        self.pool.close()
