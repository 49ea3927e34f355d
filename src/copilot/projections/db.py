"""The read-model database: one small interface over SQLite and PostgreSQL.

SQL is written once with `:name` placeholders and the portable subset both engines share
(`INSERT … ON CONFLICT … DO UPDATE`, `LIMIT/OFFSET`); the PostgreSQL adapter rewrites the
placeholders for psycopg. UUIDs and timestamps come back as `UUID` and aware `datetime`
from both engines.
"""

from __future__ import annotations

import asyncio
import math
import operator
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from uuid import UUID

import msgspec

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

    # plan_now: PostgreSQL plans the statement at each execution, for the tables as they are
    # now. Otherwise psycopg prepares a statement on its fifth run on a connection, and
    # PostgreSQL may keep the generic plan it made then until the table is next analyzed: made
    # while a new table was small, it can scan and sort what an index would have found (the
    # reuse lookup of hypotheses behind a burst on a new database: ~2 ms a call instead of
    # 0.06). For the few lookups whose best plan turns with a table's size; planning costs
    # PostgreSQL ~0.1 ms a call.
    def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]: ...
    def fetch_one(self, sql: str, params: Params | None = None, *, plan_now: bool = False) -> Row | None: ...
    # Rows as tuples, columns in the SELECT's order: for reads of hundreds of rows, where
    # building a dict per row is most of the cost.
    def fetch_tuples(self, sql: str, params: Params | None = None, *,
                     plan_now: bool = False) -> list[tuple[Any, ...]]: ...
    # The same reads from a coroutine: what a request needs on its way, without a thread hop
    # where the driver can do without one.
    async def afetch_all(self, sql: str, params: Params | None = None) -> list[Row]: ...
    async def afetch_one(self, sql: str, params: Params | None = None) -> Row | None: ...
    async def afetch_tuples(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]: ...
    async def aclose(self) -> None: ...  # the running event loop's connections, if any
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

    def fetch_one(self, sql: str, params: Params | None = None, *, plan_now: bool = False) -> Row | None:
        return _SQLiteTransaction(self._connection()).fetch_one(sql, params)  # SQLite plans each time anyway

    def fetch_tuples(self, sql: str, params: Params | None = None, *,
                     plan_now: bool = False) -> list[tuple[Any, ...]]:
        cursor = self._connection().cursor()
        cursor.row_factory = None
        return cursor.execute(sql, params or {}).fetchall()

    async def afetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        return await asyncio.to_thread(self.fetch_all, sql, params)  # sqlite3 has no async interface

    async def afetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        return await asyncio.to_thread(self.fetch_one, sql, params)

    async def afetch_tuples(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.fetch_tuples, sql, params)

    async def aclose(self) -> None:
        return None

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


_positional: dict[str, tuple[str, Callable[[Params], tuple[Any, ...]]]] = {}


def to_positional(sql: str) -> tuple[str, Callable[[Params], tuple[Any, ...]]]:
    """`:name` placeholders as `%s`, and a function from a row's mapping to its values in that
    order (memoized). For many rows of one statement: psycopg would otherwise reorder each
    row's mapping in Python; `itemgetter` does it in C."""
    out = _positional.get(sql)
    if out is None:
        names = _PLACEHOLDER.findall(sql)
        # itemgetter of one name gives the value itself, and of none is not allowed
        values: Callable[[Params], tuple[Any, ...]] = (
            operator.itemgetter(*names) if len(names) > 1 else lambda row: tuple(row[name] for name in names))
        out = _positional[sql] = (_PLACEHOLDER.sub("%s", sql.replace("%", "%%")), values)
    return out


_ROWS = msgspec.json.Encoder()
_INSERT_INTO = re.compile(r"^\s*INSERT\s+INTO\s+([\w.]+)", re.IGNORECASE)
_insert_tables: dict[str, str | None] = {}


def _insert_table(sql: str) -> str | None:
    """The table an INSERT writes to (None for any other statement), memoized."""
    if sql not in _insert_tables:
        match = _INSERT_INTO.match(sql)
        _insert_tables[sql] = match.group(1).lower() if match else None
    return _insert_tables[sql]


_VALUES_INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+([\w.]+)\s*\(([^)]*)\)\s*VALUES\s*\((.*)\)\s*(ON\s+CONFLICT\b.*\bDO\s+NOTHING)?\s*$",
    re.IGNORECASE | re.DOTALL)
_DO_UPDATE = re.compile(r"\bDO\s+UPDATE\b", re.IGNORECASE)
# Column types a value of the column's own Python type (as psycopg would adapt it) reaches
# intact as JSON through json_to_recordset's text input. Not bytea, json or arrays (base64, a
# JSON string instead of its document, a JSON list). A value of another type may be stored
# differently than by executemany (a datetime into a text column in ISO 8601 with a "T").
_VIA_JSON = frozenset({"uuid", "text", "character varying", "integer", "bigint", "smallint", "boolean",
                       "timestamp with time zone", "timestamp without time zone", "date", "real",
                       "double precision", "numeric"})
_FLOAT_TYPES = frozenset({"real", "double precision", "numeric"})


def _top_level(items: str) -> list[str] | None:
    """Split on the commas outside parentheses and quotes; None if they are not balanced (as
    when more than one VALUES list, or more than VALUES, was taken for one)."""
    out, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(items):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth < 0:
                return None
        elif not quoted and depth == 0 and char == ",":
            out.append(items[start:i].strip())
            start = i + 1
    out.append(items[start:].strip())
    return out if depth == 0 and not quoted else None


@dataclass(frozen=True)
class _SetInsert:
    """An `INSERT … VALUES (…)` of many rows as one statement over a JSON array of them."""

    sql: str
    floats: tuple[str, ...]  # placeholders of float columns: NaN and infinity have no JSON


_set_inserts: dict[str, _SetInsert | None] = {}
_column_types: dict[str, dict[str, str]] = {}  # by table name: every database has the same migrations


def _set_insert(read: Callable[[str, Any], Any], sql: str) -> _SetInsert | None:
    """`INSERT INTO t (c, …) SELECT e, … FROM json_to_recordset(%s) AS r(name type, …)` for an
    INSERT whose every placeholder stands alone for a column (memoized); None for any other
    statement, and for `ON CONFLICT … DO UPDATE`, which may not touch one row twice in one
    statement as it may in consecutive ones."""
    if sql in _set_inserts:
        return _set_inserts[sql]
    found, out = _VALUES_INSERT.match(sql), None
    columns = [c.strip().lower() for c in found.group(2).split(",")] if found else []
    values = _top_level(found.group(3)) if found else None
    if (found and values is not None and len(values) == len(columns) and not _DO_UPDATE.search(sql)
            and not any(value.upper() == "DEFAULT" for value in values)):
        table, conflict = found.group(1).lower(), found.group(4) or ""
        if table not in _column_types:
            found_types = read("SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
                               " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped", (table,))
            _column_types[table] = {row["attname"]: row["type"] for row in found_types.fetchall()}
        types = _column_types[table]
        typed = {value[1:]: types.get(column, "") for column, value in zip(columns, values, strict=True)
                 if _PLACEHOLDER.fullmatch(value)}
        base = {name: type_.split("(")[0] for name, type_ in typed.items()}  # numeric(20,12) is numeric
        named = set(_PLACEHOLDER.findall(found.group(3)))
        if named and named <= typed.keys() and all(t in _VIA_JSON for t in base.values()):
            record = ", ".join(f'"{name}" {typed[name]}' for name in sorted(named))
            select = ", ".join(_PLACEHOLDER.sub(lambda m: f'r."{m.group(1)}"', value) for value in values)
            out = _SetInsert(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select}"
                f" FROM json_to_recordset(%s::json) AS r({record}) {conflict}".rstrip(),
                tuple(name for name in sorted(named) if base[name] in _FLOAT_TYPES))
    _set_inserts[sql] = out
    return out


class _PostgresTransaction:
    """Runs statements as if one by one, but sends the rows of consecutive INSERTs together.

    A projection batch writes mostly rows (an incident, its audit entry, an analytics row, …
    for each event). Rows are held per table, in order, and sent together per statement: as
    one `INSERT … SELECT` over a JSON array of them where every placeholder stands alone for a
    column and there is no `DO UPDATE` (see `_set_insert`), otherwise with one `executemany`
    (psycopg converts the statement once and pipelines the rows, PostgreSQL runs a prepared
    statement per row). Before any other statement or read, and before a different
    INSERT into a table that has rows held, every held row is sent, tables in the order they
    were first written. So each statement sees everything written before it; only writes to
    different tables (no foreign keys or triggers join read-model tables) may reach
    PostgreSQL in another order.
    """

    MAX_ROWS = 1000  # held per table before they are sent

    def __init__(self, cursor: Any) -> None:
        self._cur = cursor
        self._reader: Any = None
        self._held: dict[str, tuple[str, list[Params]]] = {}  # table -> (statement, rows), first-written order

    def _read(self, sql: str, params: Any) -> Any:
        """A cursor that has run the read. Reads get a cursor of their own: in pipeline mode a
        cursor takes the results of its every statement as they arrive, and a write's late
        result could otherwise be taken for the read's (psycopg then doesn't wait for it)."""
        if self._reader is None:
            self._reader = self._cur.connection.cursor()
        self._reader.execute(sql, params)
        return self._reader

    def execute(self, sql: str, params: Params | None = None) -> None:
        table = _insert_table(sql)
        if table is None:
            self.flush()
            self._cur.execute(to_psycopg(sql), params or {})
            return
        held = self._held.get(table)
        if held is not None and held[0] != sql:
            self.flush()
            held = None
        if held is None:
            held = self._held[table] = (sql, [])
        held[1].append(params or {})
        if len(held[1]) >= self.MAX_ROWS:
            self.flush()

    def flush(self) -> None:
        held, self._held = self._held, {}
        for sql, rows in held.values():
            if len(rows) == 1:
                self._cur.execute(to_psycopg(sql), rows[0])
            else:
                self._many(sql, rows)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self.flush()
        self._many(sql, rows)

    def _many(self, sql: str, rows: Sequence[Params]) -> None:
        bulk = _set_insert(self._read, sql)
        if bulk is not None and all(math.isfinite(row[name]) for name in bulk.floats for row in rows
                                    if type(row[name]) is float):
            # One statement for the rows: encoding them is C work (msgspec), where executemany
            # spends ~10 us of Python per row; PostgreSQL parses the JSON.
            self._cur.execute(bulk.sql, (_ROWS.encode(rows).decode(),))
            return
        positional, values = to_positional(sql)
        self._cur.executemany(positional, [values(row) for row in rows])

    def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        self.flush()
        return list(self._read(to_psycopg(sql), params or {}).fetchall())

    def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        self.flush()
        row: Row | None = self._read(to_psycopg(sql), params or {}).fetchone()
        return row


class PostgresReadDatabase:
    """A psycopg connection pool on the same database as the event store."""

    dialect: Literal["sqlite", "postgres"] = "postgres"
    # One event loop runs one request's Python at a time: list requests at 32 connections went as
    # fast with 3 async connections as with 10, and PostgreSQL's connections are counted (a
    # scale-out on one server ran out of its 100 with 10).
    ASYNC_MAX = 4

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
        self._conninfo = conninfo
        self._async_pools: dict[asyncio.AbstractEventLoop, asyncio.Future[Any]] = {}

    def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        with self.pool.connection() as conn:  # one cursor: the pool's connections make dict rows
            cursor: Any = conn.execute(to_psycopg(sql), params or {})
            rows: list[Row] = cursor.fetchall()
            return rows

    def fetch_one(self, sql: str, params: Params | None = None, *, plan_now: bool = False) -> Row | None:
        with self.pool.connection() as conn:
            cursor: Any = conn.execute(to_psycopg(sql), params or {}, prepare=False if plan_now else None)
            row: Row | None = cursor.fetchone()
            return row

    def fetch_tuples(self, sql: str, params: Params | None = None, *,
                     plan_now: bool = False) -> list[tuple[Any, ...]]:
        from psycopg.rows import tuple_row

        with self.pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(to_psycopg(sql), params or {}, prepare=False if plan_now else None)
            return cur.fetchall()

    async def _async_pool(self) -> Any:
        """This event loop's pool of async connections, opened on first use (a pool belongs to
        one loop; the all-in-one server runs its HTTP and WebSocket servers on one)."""
        loop = asyncio.get_running_loop()
        opening = self._async_pools.get(loop)
        if opening is None:
            from psycopg.rows import dict_row
            from psycopg_pool import AsyncConnectionPool

            pool = AsyncConnectionPool(self._conninfo, min_size=1, max_size=self.ASYNC_MAX, open=False,
                                       kwargs={"row_factory": dict_row, "autocommit": True}, timeout=10)
            opening = self._async_pools[loop] = loop.create_future()
            try:
                await pool.open()
            except BaseException as error:
                del self._async_pools[loop]
                opening.set_exception(error)
                opening.exception()  # retrieved: the next call tries again
                raise
            opening.set_result(pool)
        return await opening

    async def afetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        rows: list[Row] = await self._afetch_all(sql, params, None)
        return rows

    async def _afetch_all(self, sql: str, params: Params | None, row_factory: Any) -> Any:
        pool = await self._async_pool()
        async with pool.connection() as conn:
            if row_factory is None:  # the pool's dict rows, on the connection's own cursor
                cursor = await conn.execute(to_psycopg(sql), params or {})
                return await cursor.fetchall()
            async with conn.cursor(row_factory=row_factory) as cursor:
                await cursor.execute(to_psycopg(sql), params or {})
                return await cursor.fetchall()

    async def afetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        pool = await self._async_pool()
        async with pool.connection() as conn:
            cursor = await conn.execute(to_psycopg(sql), params or {})
            row: Row | None = await cursor.fetchone()
            return row

    async def afetch_tuples(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        from psycopg.rows import tuple_row

        rows: list[tuple[Any, ...]] = await self._afetch_all(sql, params, tuple_row)
        return rows

    async def aclose(self) -> None:
        opening = self._async_pools.pop(asyncio.get_running_loop(), None)
        if opening is not None and opening.done() and not opening.exception():
            await opening.result().close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        # Pipeline mode: statements are sent without waiting for each answer, and a read
        # waits only for what precedes it; a projection batch of many small writes costs a
        # few round trips instead of one per statement.
        with self.pool.connection() as conn, conn.pipeline(), conn.transaction(), conn.cursor() as cur:
            tx = _PostgresTransaction(cur)
            yield tx
            tx.flush()

    def close(self) -> None:
        self.pool.close()
