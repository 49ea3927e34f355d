"""An async follower of the log with its own tracking row: the relay and the investigator are two.

It wakes on appends in this process and on PostgreSQL NOTIFY (else it polls), and on
PostgreSQL it holds an advisory lock while it runs, so one follower of a kind is active and
standbys take over when it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from copilot.commands.store import EventStore
from copilot.leadership import Agreement, hold_advisory_lock
from copilot.listen import LogListener
from copilot.projections.db import ReadDatabase
from copilot.projections.runner import read_positions

__all__ = ["LogFollower"]

log = logging.getLogger(__name__)

# How often a leader makes sure the connection holding its lock is still there.
HOLD_CHECK_SECONDS = 2.0


class LogFollower:
    tracking_name: str
    lock_key: int

    def __init__(self, store: EventStore, db: ReadDatabase, *, poll_interval: float,
                 listen_conninfo: str | None) -> None:
        self.store = store
        self.db = db
        self.poll_interval = poll_interval
        self.listen_conninfo = listen_conninfo
        self.position = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    def wake(self, _position: int | None = None) -> None:
        """Thread-safe: called after appends in this process and on PostgreSQL NOTIFY."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def stop(self) -> None:
        self._stopping = True
        self.wake()

    async def step(self) -> bool:
        """Handle what follows `self.position`; False when there was nothing new (or it must wait)."""
        raise NotImplementedError

    async def on_start(self) -> None:
        """Runs once the follower leads, before its first step."""

    def lock_keys(self) -> list[int]:
        """The advisory locks it may lead under, tried in order (several: one per share of the work)."""
        return [self.lock_key]

    def agreement(self) -> Agreement | None:
        """A setting every follower of its kind must share before one leads (none by default)."""
        return None

    def lead(self, index: int) -> None:
        """It holds `lock_keys()[index]` (or runs where there are no locks: index 0)."""

    def start_position(self, positions: dict[str, int]) -> int:
        """Where it starts, given every tracking row."""
        return positions.get(self.tracking_name, 0)

    def save_position(self, position: int) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO projection_tracking (name, position) VALUES (:name, :position) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                {"name": self.tracking_name, "position": position},
            )

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                await self._lead()
            except Exception as error:  # PostgreSQL unreachable while it waits for a lock: wait and try again
                log.warning("%s could not take its lock (%s); trying again", self.tracking_name, error)
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
        """Lead until stopped, or until the connection that holds the lock is lost: PostgreSQL
        then drops the lock and a standby may take over, so this one stops and waits for a lock
        again instead of leading beside it. It notices within HOLD_CHECK_SECONDS (plus a step)."""
        leader: Any = None
        index = 0
        if self.db.dialect == "postgres" and self.listen_conninfo:
            leader, index = await hold_advisory_lock(self.listen_conninfo, self.lock_keys(), lambda: self._stopping,
                                                     agreement=self.agreement())
            if index < 0:  # stopped before it held a lock: nothing to lead
                await asyncio.to_thread(leader.close)
                return
        self.lead(index)
        listener = None
        if self.listen_conninfo:
            channel = getattr(self.store.recorder, "channel_name", "copilot_events")
            listener = LogListener(self.listen_conninfo, channel, self.wake)
            listener.start()
        try:
            self.position = await asyncio.to_thread(lambda: self.start_position(read_positions(self.db)))
            await self.on_start()
            checked = time.monotonic()
            while not self._stopping:
                if leader is not None and time.monotonic() - checked >= HOLD_CHECK_SECONDS:
                    if not await asyncio.to_thread(_connected, leader):
                        log.error("%s lost the connection that holds its lock; waiting for a lock again",
                                  self.tracking_name)
                        return
                    checked = time.monotonic()
                try:
                    progressed = await self.step()
                except Exception:
                    log.exception("%s failed after log position %d; retrying", self.tracking_name, self.position)
                    progressed = False
                    await asyncio.sleep(1.0)
                if not progressed:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            if listener is not None:
                listener.stop()
            if leader is not None:
                await asyncio.to_thread(leader.close)


def _connected(conn: Any) -> bool:
    """The connection still answers: its session, and with it its advisory locks, lives."""
    try:
        conn.execute("SELECT 1")
    except Exception:
        return False
    return True
