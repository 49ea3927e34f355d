"""The event store: one ordered log for every aggregate, on the eventsourcing library."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from copilot.domain.errors import ConflictError, NotFoundError
from copilot.domain.incident import Incident
from copilot.settings import Settings

__all__ = ["ConcurrentWriteError", "CopilotLog", "EventStore", "build_event_store", "mutate_all", "with_retries"]

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")


class ConcurrentWriteError(Exception):
    """Another command appended to one of these aggregates first; reload and decide again."""


def mutate_all(aggregate: Any, events: Iterable[Any]) -> Any:
    """An aggregate from its snapshot (or nothing) and its later events, applied in order.

    The library's own projector asserts each event against a runtime-checkable Protocol: 12 us
    an event here, twenty times the event's own mutation, or 1.2 ms to load an incident 99
    events past its last snapshot."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class CopilotLog(Application[UUID]):
    """The eventsourcing application that owns the log (table `copilot_events` on PostgreSQL)."""

    name = "copilot"
    # Incidents can collect long histories (flapping alerts, reopenings); a snapshot every
    # 100 events keeps loading one to a snapshot plus at most 99 events.
    snapshotting_intervals = {Incident: 100}


class EventStore:
    """Loads aggregates and appends their pending events; reports each append's log position."""

    def __init__(self, app: Application[UUID]) -> None:
        self.app = app
        # Typed loosely: the SQLite and PostgreSQL recorders differ beyond the common protocol.
        self.recorder: Any = app.recorder
        self._listeners: list[Callable[[int], None]] = []
        self.timer: Callable[[float], None] = lambda _seconds: None  # observes each append's duration

    def on_append(self, listener: Callable[[int], None]) -> None:
        """Call `listener(position)` after every append made through this store."""
        self._listeners.append(listener)

    def get(self, cls: type[A], aggregate_id: UUID) -> A:
        found = self.find(cls, aggregate_id)
        if found is None:
            raise NotFoundError(f"{cls.__name__.lower()} not found")
        return found

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: Aggregate = self.app.repository.get(aggregate_id, projector_func=mutate_all)
        except AggregateNotFoundError:
            return None
        # An id of another kind (say, a project id passed as an incident id) is "not found".
        return aggregate if isinstance(aggregate, cls) else None

    def append(self, *aggregates: Aggregate) -> int:
        """Append every pending event of these aggregates atomically; return the last position.

        Returns the current head when there was nothing to append, so a no-op command
        still gives its caller a position to wait for.
        """
        started = time.perf_counter()
        try:
            recordings = self.app.save(*aggregates)
        except IntegrityError as error:
            raise ConcurrentWriteError(str(error)) from error
        finally:
            self.timer(time.perf_counter() - started)
        if not recordings:
            return self.head()
        position = max(r.notification.id for r in recordings)
        for listener in self._listeners:
            listener(position)
        return int(position)

    async def append_new(self, aggregate: Aggregate) -> int:
        """`append` for an aggregate made by this command (nothing loaded, so no snapshot falls
        due), from a coroutine. With group commit the events go from the event loop to the writer
        thread and the answer comes straight back; the SQLite recorder appends in a worker thread."""
        submit = getattr(self.recorder, "insert_events_async", None)
        if submit is None:
            return await asyncio.to_thread(self.append, aggregate)
        events = aggregate.collect_events()
        if not events or events[0].originator_version != 1:
            raise ValueError("append_new takes a new aggregate with its pending events")
        started = time.perf_counter()
        try:
            positions = await submit([self.app.mapper.to_stored_event(event) for event in events])
        except IntegrityError as error:
            raise ConcurrentWriteError(str(error)) from error
        finally:
            self.timer(time.perf_counter() - started)
        position = int(max(positions))
        for listener in self._listeners:
            listener(position)
        return position

    def positions_of(self, aggregate_id: UUID) -> dict[int, int]:
        """Each event's log position by aggregate version (what an audit shows beside it)."""
        if self.app.factory.__class__.__module__.endswith("sqlite"):
            sql = "SELECT originator_version, rowid FROM stored_events WHERE originator_id = ?"
            key: Any = aggregate_id.hex
        else:
            sql = "SELECT originator_version, notification_id FROM copilot_events WHERE originator_id = %s"
            key = aggregate_id
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, (key,))
            rows = cursor.fetchall()
        return {int(_column(row, 0)): int(_column(row, 1)) for row in rows}

    def head(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def close(self) -> None:
        stop = getattr(self.recorder, "stop", None)
        if stop is not None:
            stop()
        self.app.close()


def _column(row: Any, index: int) -> Any:
    """A column of a row from either recorder (SQLite rows index by position, psycopg's by name)."""
    if isinstance(row, dict):
        return list(row.values())[index]
    return row[index]


def with_retries(decide_and_append: Callable[[], R], attempts: int = 5) -> R:
    """Run load → decide → append again when another writer got in first.

    The command is re-decided on fresh state each time, so a move that is no longer
    legal fails with the domain's own error; one that still is gets applied.
    """
    for attempt in range(attempts):
        try:
            return decide_and_append()
        except ConcurrentWriteError:
            if attempt == attempts - 1:
                break
            time.sleep(0.002 * (attempt + 1))
    raise ConflictError("the resource was changed concurrently; try again")


def _eventsourcing_env(settings: Settings) -> dict[str, str]:
    if settings.embedded:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.sqlite_path),
            "SQLITE_LOCK_TIMEOUT": "30",
            "CREATE_TABLE": "false",
        }
    pg = settings.postgres
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": pg.dbname,
        "POSTGRES_HOST": pg.host,
        "POSTGRES_PORT": str(pg.port),
        "POSTGRES_USER": pg.user,
        "POSTGRES_PASSWORD": pg.password,
        # The pool opens POOL_SIZE connections at start and grows to POOL_SIZE + MAX_OVERFLOW under
        # load. Opening 10 in each of seven processes (a scale-out on one server) spent 70 of
        # PostgreSQL's 100 before any request; most roles need two or three.
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "18",
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_LOCK_TIMEOUT": "10",
        "CREATE_TABLE": "false",
        # Concurrent commands share one locked, committed transaction (see group_commit.py).
        "APPLICATION_RECORDER_TOPIC": "copilot.commands.group_commit:GroupCommitRecorder",
    }


def build_event_store(settings: Settings, **extra_env: Any) -> EventStore:
    env = _eventsourcing_env(settings)
    env.update({key: str(value) for key, value in extra_env.items()})
    return EventStore(CopilotLog(env=env))
