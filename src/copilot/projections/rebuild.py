"""Rebuilds read models from the log alone.

The named projections' tables are emptied and refilled from position 0 inside one
transaction, which is the swap: readers keep seeing the old rows until the commit and
then see the new ones, never a half-built table. A live projector meanwhile waits on its
tracking row and carries on from the rebuilt position. On PostgreSQL the tables are then
analyzed, so queries are planned for the rows they now hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Notification

from copilot.commands.store import EventStore
from copilot.projections.base import Projection
from copilot.projections.db import ReadDatabase
from copilot.projections.runner import lock_positions, track

__all__ = ["RebuildReport", "rebuild"]

Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RebuildReport:
    projections: tuple[str, ...]
    events: int
    position: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float(self.events)


def _read(store: EventStore, handled: frozenset[str], after: int, head: int,
          limit: int) -> list[tuple[Notification, Any]]:
    """The next notifications up to the head, each with its decoded event (None if no projection
    handles its topic)."""
    mapper = store.app.mapper
    return [(n, mapper.to_domain_event(n) if n.topic in handled else None)
            for n in store.recorder.select_notifications(start=after, limit=limit, stop=head,
                                                          inclusive_of_start=False)]


def rebuild(
    store: EventStore,
    db: ReadDatabase,
    projections: Sequence[Projection],
    *,
    batch_size: int = 2000,
    progress: Progress | None = None,
) -> RebuildReport:
    started = time.perf_counter()
    names = [p.name for p in projections]
    handled = frozenset().union(*(p.topics for p in projections))
    events = 0
    position = 0
    track(db, names)
    with db.transaction() as tx:
        lock_positions(tx, db.dialect, names)  # first, so a live projector of these waits for the swap
        # The head is read once the live projector is held: read before, a batch it committed
        # meanwhile (beyond that head) would be gone from the tables rebuilt up to the head,
        # while the projector, past it, never came back for it.
        head = store.head()
        for projection in projections:
            for table in projection.tables:
                tx.execute(f"DELETE FROM {table}")  # table names come from the code, never from input
        # The next batch is read and decoded in another thread while this one is applied: the
        # writes mostly wait on PostgreSQL, and meanwhile the log can be read and decoded.
        with ThreadPoolExecutor(1, thread_name_prefix="rebuild-read") as reader:
            ahead = reader.submit(_read, store, handled, position, head, batch_size)
            while True:
                batch = ahead.result()
                if not batch:
                    break
                position = batch[-1][0].id
                if position < head:
                    ahead = reader.submit(_read, store, handled, position, head, batch_size)
                for notification, event in batch:
                    if event is not None:
                        for projection in projections:
                            projection.apply(tx, notification.topic, event, notification.id)
                events += len(batch)
                if progress is not None:
                    progress(position, head)
                if position >= head:
                    break
        for name in names:
            tx.execute(
                "INSERT INTO projection_tracking (name, position) VALUES (:name, :position) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                {"name": name, "position": head},
            )
    if db.dialect == "postgres":
        # Every row of these tables is new: without fresh statistics the planner keeps estimating
        # from the old ones (or, for tables that were empty, from none) until autovacuum gets to
        # them, and a page of a project's incidents was planned as a scan and sort of all of them.
        # Not on SQLite: nothing there refreshes statistics later, and ones frozen at the rebuild
        # went wrong as the data grew (SQLite plans well enough without any).
        try:
            with db.transaction() as tx:
                for projection in projections:
                    for table in projection.tables:
                        tx.execute(f"ANALYZE {table}")
        except Exception as error:  # the rebuild is committed: autovacuum will analyze them later
            log.warning("the rebuilt tables were not analyzed: %s", error)
    return RebuildReport(tuple(names), events, head, time.perf_counter() - started)
