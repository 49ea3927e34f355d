"""Group commit: concurrent commands' events appended to PostgreSQL in one transaction.

eventsourcing's PostgreSQL recorder takes `LOCK TABLE … IN EXCLUSIVE MODE` for every append,
so that notification ids are committed in the order they are issued (a reader tailing the log
never passes over a gap that fills in later). The price is one commit at a time: about 650
appends/s here however many threads call it, while PostgreSQL itself commits several thousand
small transactions a second when they share fsyncs.

`GroupCommitRecorder` keeps the lock and its guarantee, and amortises it: callers hand their
events to one writer thread and wait; the writer takes everything queued, appends it under one
lock in one transaction, commits once, and answers every caller. A caller is answered only after
the commit that holds its events, so an acknowledged command is durable. Optimistic concurrency
stays per aggregate: when the batch's single INSERT hits the (originator_id, originator_version)
unique key, the batch is replayed with a savepoint per caller, so only the callers that lost the
race get `IntegrityError` and reload, and the others still commit.

A connection lost while committing leaves the outcome unknown: PostgreSQL may have committed the
batch before the connection went. So a batch retried after a connection error first looks for
its own rows (same aggregate, version, topic and state): a caller whose events are all there was
committed, and is answered with their positions instead of being told it lost a race to itself.

The recorder also renders the statements it runs most once, at start: the library builds them as
`psycopg.sql.Composed` objects (schema and table as identifiers) and psycopg renders a Composed
again on every execute, quoting each identifier (15-40 µs of CPU per statement here). Reading the
log (`select_notifications`, what every projector, the relay, the investigator and a rebuild do
all day) fetches tuples instead of a dict per row.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, Notification, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composable, Identifier

__all__ = ["GroupCommitRecorder"]

log = logging.getLogger(__name__)

MAX_BATCH = 256  # callers per transaction; bounds one transaction's size and the lock's hold time
RETRIES = 10  # like the library's own insert_events: connection errors are retried ...
RETRY_WAIT = 0.2  # ... every 0.2 s, so a short outage is ridden out and a long one reported


_Result = Sequence[int] | BaseException  # a caller's positions, or why its events were not appended


class _Append:
    """A caller's events and how to answer it: `answer` is called once, from the writer thread."""

    __slots__ = ("answer", "events")

    def __init__(self, events: Sequence[StoredEvent], answer: Callable[[_Result], None]) -> None:
        self.events = events
        self.answer = answer


def _settle(future: Future[Sequence[int]] | asyncio.Future[Sequence[int]], result: _Result) -> None:
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _settle_awaited(future: asyncio.Future[Sequence[int]], result: _Result) -> None:
    if not future.done():  # done: the caller was cancelled while waiting; its events stand all the same
        _settle(future, result)


def _answer_on(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Sequence[int]]) -> Callable[[_Result], None]:
    def answer(result: _Result) -> None:
        try:
            loop.call_soon_threadsafe(_settle_awaited, future, result)
        except RuntimeError:  # the loop was closed meanwhile (shutdown): nobody is left to answer
            log.debug("an append's caller's event loop closed before its answer")
    return answer


class GroupCommitRecorder(PostgresApplicationRecorder):
    """The library's application recorder whose appends share transactions (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue: queue.SimpleQueue[_Append | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0  # transactions committed, and ...
        self.appends = 0  # ... the callers they answered: appends / batches is the batching achieved
        self._sql_lock = [_rendered(statement) for statement in self.lock_table_statements]
        self._sql_notify = _rendered(SQL("NOTIFY {0}").format(Identifier(self.channel_name)))
        # The library sends a batch as one array of a composite type, which psycopg writes out as
        # text in Python (~30 us an event here); four arrays of plain types go in binary, which
        # psycopg writes in C (~9 us an event). Same rows, same order, same RETURNING.
        self._sql_insert = _rendered(SQL(
            "INSERT INTO {0}.{1} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{2}[], %b::int8[], %b::text[], %b::bytea[]) RETURNING notification_id"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name),
                 Identifier(self.datastore.originator_id_type)))
        self._sql_landed = _rendered(SQL(
            "SELECT originator_id, originator_version, topic, state, notification_id FROM {0}.{1}"
            " WHERE (originator_id, originator_version) IN (SELECT * FROM unnest(%b::{2}[], %b::int8[]))"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name),
                 Identifier(self.datastore.originator_id_type)))
        self._sql_head = _rendered(self.max_notification_id_statement)
        self._sql_log = _rendered(SQL("SELECT notification_id, originator_id, originator_version, topic, state"
                                      " FROM {0}.{1}").format(Identifier(self.datastore.schema),
                                                             Identifier(self.events_table_name)))
        self._sql_reads: dict[tuple[bool, bool, bool, bool], str] = {}

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if kwargs.get("tracking") is not None:  # a process recorder's tracked write: keep the library's path
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        if not stored_events:
            return []
        future: Future[Sequence[int]] = Future()
        self._submit(_Append(stored_events, lambda result: _settle(future, result)))
        return future.result()

    async def insert_events_async(self, stored_events: Sequence[StoredEvent]) -> Sequence[int]:
        """`insert_events` for a coroutine: the writer answers the event loop directly, with no
        worker thread waiting in between (a thread hop is ~60 us of CPU on uvloop, a tenth of a
        create's in the API)."""
        if not stored_events:
            return []
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Sequence[int]] = loop.create_future()
        self._submit(_Append(stored_events, _answer_on(loop, future)))
        return await future

    def _submit(self, request: _Append) -> None:
        self._ensure_writer()
        self._queue.put(request)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True) -> list[Notification]:
        """The library's read of the log (same arguments, same answer), from a statement rendered
        once per shape and rows read as tuples."""
        shape = (start is not None, inclusive_of_start, stop is not None, bool(topics))
        sql = self._sql_reads.get(shape)
        if sql is None:
            conditions = [f"notification_id {'>=' if inclusive_of_start else '>'} %s"] if start is not None else []
            conditions += ["notification_id <= %s"] if stop is not None else []
            conditions += ["topic = ANY(%s)"] if topics else []
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            sql = self._sql_reads[shape] = f"{self._sql_log}{where} ORDER BY notification_id LIMIT %s"
        params: list[Any] = [value for value in (start, stop) if value is not None]
        params += [list(topics)] if topics else []
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(sql, [*params, limit], prepare=True)
            return [Notification(id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3],
                                 state=bytes(row[4])) for row in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def max_notification_id(self) -> int | None:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            row = curs.execute(self._sql_head, prepare=True).fetchone()
            return None if row is None else row[0]

    def _lock_table(self, curs: psycopg.Cursor[DictRow]) -> None:
        for statement in self._sql_lock:
            curs.execute(statement, prepare=True)

    def _notify_channel(self, curs: psycopg.Cursor[DictRow]) -> None:
        curs.execute(self._sql_notify)

    def stop(self) -> None:
        """Finish what is queued, then stop the writer thread."""
        writer = self._writer
        if writer is not None and writer.is_alive():
            self._queue.put(None)
            writer.join(timeout=30)

    def _ensure_writer(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            return
        with self._start_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._writer.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._commit_with_retries(batch)
            if stopping:
                return

    def _commit_with_retries(self, batch: list[_Append]) -> None:
        for attempt in range(RETRIES):
            try:
                results = self._commit(batch, after_lost_connection=attempt > 0)
            except (InterfaceError, OperationalError) as error:
                if attempt == RETRIES - 1:
                    for request in batch:
                        request.answer(error)
                    return
                time.sleep(RETRY_WAIT)
            except Exception as error:  # every waiting caller must be answered
                log.exception("group commit failed")
                for request in batch:
                    request.answer(error)
                return
            else:
                self.batches += 1
                self.appends += len(batch)
                for request, result in zip(batch, results, strict=True):
                    request.answer(result)
                return

    def _commit(self, batch: list[_Append], after_lost_connection: bool) -> list[_Result]:
        """One transaction for the whole batch; a per-caller result (ids or the conflict)."""
        with self.datastore.get_connection() as conn:
            landed: dict[int, list[int]] = {}
            try:
                with conn.transaction(), conn.cursor() as curs:
                    self._lock_table(curs)
                    if after_lost_connection:  # committed rows stay: what is found here holds for the replay too
                        landed = self._landed(curs, batch)
                    self._notify_channel(curs)  # sent on commit, like the library's own appends
                    return self._insert_all(curs, batch, landed)
            except _Conflict:
                pass
            with conn.transaction(), conn.cursor() as curs:
                self._lock_table(curs)
                self._notify_channel(curs)
                return self._insert_each(conn, curs, batch, landed)

    def _landed(self, curs: psycopg.Cursor[DictRow], batch: list[_Append]) -> dict[int, list[int]]:
        """The callers (by index in the batch) whose events are already in the log, exactly as
        they were sent, with their positions: a commit whose answer the lost connection took."""
        events = [event for request in batch for event in request.events]
        curs.execute(self._sql_landed, ([e.originator_id for e in events], [e.originator_version for e in events]))
        found = {(row["originator_id"], row["originator_version"]): row for row in curs.fetchall()}
        landed: dict[int, list[int]] = {}
        for index, request in enumerate(batch):
            rows = [found.get((e.originator_id, e.originator_version)) for e in request.events]
            if all(row is not None and row["topic"] == e.topic and bytes(row["state"]) == e.state
                   for row, e in zip(rows, request.events, strict=True)):
                landed[index] = [int(row["notification_id"]) for row in rows if row is not None]
        if landed:
            log.warning("%d of %d appends were committed before the connection was lost", len(landed), len(batch))
        return landed

    def _insert_all(self, curs: psycopg.Cursor[DictRow], batch: list[_Append],
                    landed: dict[int, list[int]]) -> list[_Result]:
        events = [event for index, request in enumerate(batch) if index not in landed for event in request.events]
        try:
            ids = self._insert(curs, events) if events else []
        except psycopg.errors.UniqueViolation as error:
            raise _Conflict from error
        results: list[_Result] = []
        start = 0
        for index, request in enumerate(batch):
            if index in landed:
                results.append(landed[index])
            else:
                results.append(ids[start:start + len(request.events)])
                start += len(request.events)
        return results

    def _insert_each(self, conn: psycopg.Connection[DictRow], curs: psycopg.Cursor[DictRow],
                     batch: list[_Append], landed: dict[int, list[int]]) -> list[_Result]:
        results: list[_Result] = []
        for index, request in enumerate(batch):
            if index in landed:
                results.append(landed[index])
                continue
            try:
                with conn.transaction():  # a savepoint: a lost race undoes this caller's rows only
                    results.append(self._insert(curs, request.events))
            except psycopg.errors.UniqueViolation as error:
                results.append(IntegrityError(str(error)))
        return results

    def _insert(self, curs: psycopg.Cursor[DictRow], events: Sequence[StoredEvent]) -> list[int]:
        columns = ([e.originator_id for e in events], [e.originator_version for e in events],
                   [e.topic for e in events], [e.state for e in events])
        curs.execute(self._sql_insert, columns, prepare=True)
        ids = [int(row["notification_id"]) for row in curs.fetchall()]
        if len(ids) != len(events):
            raise IntegrityError(f"expected {len(events)} notification ids, got {len(ids)}")
        return ids


def _rendered(statement: Any) -> str:
    """A statement built from `psycopg.sql` parts, as the text psycopg would send."""
    if isinstance(statement, Composable):
        return statement.as_string()
    return statement.decode() if isinstance(statement, bytes) else str(statement)


class _Conflict(Exception):
    """The batch's single INSERT hit a unique key: replay it caller by caller."""
