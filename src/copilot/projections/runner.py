"""Follows the log and feeds projections; each batch and its tracking commit together."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification

from copilot.commands.store import EventStore
from copilot.listen import LogListener
from copilot.projections.base import Projection
from copilot.projections.db import ReadDatabase, Transaction

__all__ = ["ProjectionRunner", "TrackingWaiter", "lock_positions", "read_positions", "track"]

log = logging.getLogger(__name__)

_UPSERT_TRACKING = (
    "INSERT INTO projection_tracking (name, position) VALUES (:name, :position) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
)


def track(db: ReadDatabase, names: Sequence[str]) -> dict[str, int]:
    """Give each projection its tracking row (at position 0 until it has done something); return
    the stored positions, as `read_positions` does.
    `lock_positions` locks rows, and a row not there yet locks nothing: on an empty database a
    rebuild and a starting projector would not wait for each other. Rows already there are not
    written (a write would wait for a rebuild holding SQLite's lock), and missing ones are
    inserted in name order, as `lock_positions` locks them, so two inserting never deadlock."""
    stored = read_positions(db)
    missing = sorted(set(names) - set(stored))
    if not missing:
        return stored
    with db.transaction() as tx:
        for name in missing:
            tx.execute("INSERT INTO projection_tracking (name, position) VALUES (:name, 0)"
                       " ON CONFLICT (name) DO NOTHING", {"name": name})
    return read_positions(db)  # another process may have inserted one meanwhile, and moved on


def read_positions(db: ReadDatabase) -> dict[str, int]:
    return {row["name"]: int(row["position"]) for row in db.fetch_all("SELECT name, position FROM projection_tracking")}


class ProjectionRunner:
    """One thread that reads the log in batches and hands each batch to every projection.

    Woken at once by appends made in this process, by PostgreSQL NOTIFY for appends made
    elsewhere, and otherwise polls (the SQLite recorder cannot subscribe).
    """

    def __init__(
        self,
        store: EventStore,
        db: ReadDatabase,
        projections: Sequence[Projection],
        *,
        batch_size: int = 500,
        poll_interval: float = 0.25,
        listen_conninfo: str | None = None,
    ) -> None:
        self.store = store
        self.db = db
        self.projections = list(projections)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.listen_conninfo = listen_conninfo
        self._positions: dict[str, int] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._threads: list[threading.Thread] = []
        self._handled = frozenset().union(*(p.topics for p in self.projections))
        self.last_error: str | None = None
        self._listener: LogListener | None = None

    # -- positions ------------------------------------------------------------------------

    def load_positions(self) -> None:
        stored = track(self.db, [p.name for p in self.projections])
        self._positions = {p.name: stored.get(p.name, 0) for p in self.projections}

    @property
    def position(self) -> int:
        """The position every projection has reached."""
        return min(self._positions.values(), default=0)

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        self.load_positions()
        worker = threading.Thread(target=self._run, name="projection-runner", daemon=True)
        self._threads.append(worker)
        worker.start()
        if self.listen_conninfo:
            channel = getattr(self.store.recorder, "channel_name", "copilot_events")
            self._listener = LogListener(self.listen_conninfo, channel, self._wake.set)
            self._listener.start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def wake(self, _position: int | None = None) -> None:
        self._wake.set()

    def catch_up(self) -> int:
        """Process everything appended so far, in this thread; return events processed."""
        if not self._positions:
            self.load_positions()
        total = 0
        while True:
            done = self._step()
            total += done
            if done == 0:
                return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._step():
                    continue
                self.last_error = None
            except Exception as error:  # logged and retried: the projection stays behind, visibly
                self.last_error = repr(error)
                log.exception("projection batch failed; retrying")
                self._stop.wait(1.0)
                continue
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _step(self) -> int:
        start = self.position
        notifications = self.store.recorder.select_notifications(
            start=start, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        decoded = self._decode(notifications)
        last = notifications[-1].id
        behind = [p for p in self.projections if self._positions[p.name] < last]
        # One transaction for the whole batch: every projection's rows and tracking commit together,
        # one commit instead of one per projection.
        with self.db.transaction() as tx:
            done = lock_positions(tx, self.db.dialect, [p.name for p in behind])
            reached = {p.name: self._apply(tx, p, notifications, decoded, last, done.get(p.name, 0))
                       for p in behind}
        self._positions.update(reached)
        self._release_waiters()
        return len(notifications)

    def _decode(self, notifications: Sequence[Notification]) -> dict[int, Any]:
        mapper = self.store.app.mapper
        return {n.id: mapper.to_domain_event(n) for n in notifications if n.topic in self._handled}

    def _apply(
        self, tx: Transaction, projection: Projection, notifications: Sequence[Notification],
        decoded: dict[int, Any], last: int, done: int,
    ) -> int:
        for notification in notifications:
            if notification.id > done and notification.topic in projection.topics:
                projection.apply(tx, notification.topic, decoded[notification.id], notification.id)
        if last > done:
            tx.execute(_UPSERT_TRACKING, {"name": projection.name, "position": last})
        return max(last, done)

    # -- read-your-writes -------------------------------------------------------------------

    async def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        """Wait until every projection has processed `position`; False on timeout."""
        if self.position >= position:
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._waiters.append((position, loop, future))
        self._release_waiters()  # the runner may have passed it just now
        self._wake.set()
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False

    def _release_waiters(self) -> None:
        reached = self.position
        with self._lock:
            ready = [w for w in self._waiters if w[0] <= reached]
            self._waiters = [w for w in self._waiters if w[0] > reached]
        for _, loop, future in ready:
            loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def lock_positions(tx: Transaction, dialect: str, names: Sequence[str]) -> dict[str, int]:
    """The projections' tracking positions, read under the write lock in one query. Rows are
    locked in name order, whoever takes them (projector or rebuild), so two never deadlock."""
    marks = {f"n{i}": name for i, name in enumerate(names)}
    rows = tx.fetch_all(
        f"SELECT name, position FROM projection_tracking WHERE name IN ({', '.join(':' + k for k in marks)})"
        " ORDER BY name" + (" FOR UPDATE" if dialect == "postgres" else ""),
        marks,
    )
    return {row["name"]: int(row["position"]) for row in rows}


class TrackingWaiter:
    """Read-your-writes for a process without its own projector: poll the tracking table.

    However many requests wait, one task per event loop polls (one query per `interval`) and
    releases every waiter whose position was reached; a poll per waiter would cost each of 32
    concurrent requests a query every 10 ms.
    """

    def __init__(self, db: ReadDatabase, names: Sequence[str], interval: float = 0.005) -> None:
        self.db = db
        self.names = list(names)
        self.interval = interval
        self.reached = 0  # the highest position seen in the tracking table
        self._waiters: dict[asyncio.AbstractEventLoop, list[tuple[int, asyncio.Future[None]]]] = {}
        self._pollers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def _position(self) -> int:
        positions = read_positions(self.db)
        return min((positions.get(name, 0) for name in self.names), default=0)

    async def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        if self.reached >= position:
            return True
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.setdefault(loop, []).append((position, future))
        poller = self._pollers.get(loop)
        if poller is None or poller.done():
            self._pollers[loop] = loop.create_task(self._poll(loop))
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False

    async def _poll(self, loop: asyncio.AbstractEventLoop) -> None:
        waiters = self._waiters[loop]
        while waiters:
            try:
                self.reached = max(self.reached, await asyncio.to_thread(self._position))
            except Exception:  # the database is away: waiters time out, the next request polls again
                log.debug("tracking poll failed", exc_info=True)
            still = [(p, f) for p, f in waiters if not f.done() and p > self.reached]
            for p, future in waiters:
                if p <= self.reached:
                    _resolve(future)
            waiters[:] = still
            if waiters:
                await asyncio.sleep(self.interval)
        del self._waiters[loop], self._pollers[loop]  # nothing kept for a loop that is gone
