"""The relay: the log is the outbox. It follows the log and publishes public events to the bus.

Its position is tracked in `projection_tracking` (row `relay`) and advanced only after the
bus accepted a batch, so a crash re-sends at most one batch, which Nats-Msg-Id ("<store id>-<log
position>") de-duplicates. When the bus is down the relay retries; commands never wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from copilot.commands.store import EventStore
from copilot.domain.alert import Alert
from copilot.domain.incident import Incident
from copilot.domain.investigation import Investigation
from copilot.domain.project import Project
from copilot.domain.session import Session
from copilot.follower import LogFollower
from copilot.projections.db import ReadDatabase
from copilot.stream.bus import EventBus
from copilot.stream.events import PublicEvent, PublicEventEncoder

__all__ = ["RELAY_TRACKING_NAME", "LogReader", "Relay"]

log = logging.getLogger(__name__)

RELAY_TRACKING_NAME = "relay"
_PG_RELAY_LOCK = 0x5C0_92_01
_SAVE_IDLE_SECONDS = 1.0


class LogReader:
    """Reads public events from the log (for the relay, and for replays in embedded mode)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

        def scope(incident_id: UUID) -> tuple[UUID, UUID] | None:
            incident = store.find(Incident, incident_id)
            return None if incident is None else (incident.tenant_id, incident.project_id)

        self.encoder = PublicEventEncoder(
            scope,
            load_alert=lambda alert_id: store.find(Alert, alert_id),
            load_investigation=lambda investigation_id: store.find(Investigation, investigation_id),
            load_project=lambda project_id: store.find(Project, project_id),
            load_session=lambda session_id: store.find(Session, session_id),
        )
        self._topics = sorted(self.encoder.topics)

    def read(self, after: int, limit: int) -> tuple[list[PublicEvent], int]:
        """Public events after `after` in the next `limit` log entries, and the last position read."""
        # Only public topics are fetched (most of the log, such as investigation steps, is not).
        # The head is read first: every position up to it is committed (appends commit in
        # position order), so when fewer than `limit` rows come back everything up to the
        # head has been read, even where nothing in it was public.
        head = self.store.head()
        if head <= after:
            return [], after
        notifications = self.store.recorder.select_notifications(
            start=after, limit=limit, stop=head, topics=self._topics, inclusive_of_start=False)
        mapper = self.store.app.mapper
        events = []
        for notification in notifications:
            event: Any = mapper.to_domain_event(notification)
            public = self.encoder.encode(notification.topic, event, notification.id)
            if public is not None:
                events.append(public)
        return events, notifications[-1].id if len(notifications) == limit else head

    def replay(self, tenant_id: UUID, project_id: UUID, since: int, limit: int = 10_000) -> list[PublicEvent]:
        found: list[PublicEvent] = []
        position = since
        while len(found) < limit:
            events, last = self.read(position, 1000)
            if last == position:
                break
            found.extend(e for e in events if e.tenant_id == tenant_id and e.project_id == project_id)
            position = last
        return found[:limit]


class Relay(LogFollower):
    tracking_name = RELAY_TRACKING_NAME
    lock_key = _PG_RELAY_LOCK

    def __init__(
        self,
        reader: LogReader,
        db: ReadDatabase,
        bus: EventBus,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        listen_conninfo: str | None = None,
        gather_seconds: float = 0.010,
    ) -> None:
        super().__init__(reader.store, db, poll_interval=poll_interval, listen_conninfo=listen_conninfo)
        self.reader = reader
        self.bus = bus
        self.batch_size = batch_size
        # Every commit wakes the relay, and its cost is per batch (read the head, read, publish,
        # save the position) more than per event: it lets commits gather this long before each
        # read, so a burst goes out as a few batches instead of one per commit.
        self.gather_seconds = gather_seconds
        self._saved_at = 0.0
        self.source = ""  # the event store's identity, read at start
        self.publish_errors = 0
        self.on_publish_error: Callable[[], None] = lambda: None

    async def on_start(self) -> None:
        self.source = await asyncio.to_thread(self._store_identity)

    def _store_identity(self) -> str:
        row = self.db.fetch_one("SELECT id FROM store_identity")
        return str(row["id"]) if row else "unknown"

    async def step(self) -> bool:
        await asyncio.sleep(self.gather_seconds)
        events, last = await asyncio.to_thread(self.reader.read, self.position, self.batch_size)
        if last == self.position:
            return False
        try:
            if events:
                await self.bus.publish(events, self.source)
        except Exception as error:
            self.publish_errors += 1
            self.on_publish_error()
            log.warning("relay could not publish (%s); retrying from position %d", error, self.position)
            await asyncio.sleep(min(0.2 * self.publish_errors, 2.0))
            return False
        self.publish_errors = 0
        self.position = last
        # A stretch with nothing public (investigation steps, mostly) needs no write of its own:
        # after a crash it is read again and sends nothing. Saved with the next batch, or soon.
        if events or time.monotonic() - self._saved_at >= _SAVE_IDLE_SECONDS:
            await asyncio.to_thread(self.save_position, last)
            self._saved_at = time.monotonic()
        return True
