"""Rebuilds read models from the log alone.

The named projections' tables are emptied and refilled from position 0 inside one
transaction, which is the swap: readers keep seeing the old rows until the commit and
then see the new ones, never a half-built table. A live projector meanwhile waits on its
tracking row and carries on from the rebuilt position.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from copilot.commands.store import EventStore
from copilot.projections.base import Projection
from copilot.projections.db import ReadDatabase

__all__ = ["RebuildReport", "rebuild"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RebuildReport:
    projections: tuple[str, ...]
    events: int
    position: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float(self.events)


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
    mapper = store.app.mapper
    head = store.head()
    events = 0
    position = 0
    with db.transaction() as tx:
        lock = " FOR UPDATE" if db.dialect == "postgres" else ""
        for name in names:
            # Take the tracking rows first, so a live projector of these waits for the swap.
            tx.fetch_one(f"SELECT position FROM projection_tracking WHERE name = :name{lock}", {"name": name})
        for projection in projections:
            for table in projection.tables:
                tx.execute(f"DELETE FROM {table}")  # table names come from the code, never from input
        while position < head:
            batch = store.recorder.select_notifications(
                start=position, limit=batch_size, stop=head, inclusive_of_start=False
            )
            if not batch:
                break
            for notification in batch:
                if notification.topic in handled:
                    event: Any = mapper.to_domain_event(notification)
                    for projection in projections:
                        projection.apply(tx, notification.topic, event, notification.id)
            events += len(batch)
            position = batch[-1].id
            if progress is not None:
                progress(position, head)
        for name in names:
            tx.execute(
                "INSERT INTO projection_tracking (name, position) VALUES (:name, :position) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                {"name": name, "position": head},
            )
    return RebuildReport(tuple(names), events, head, time.perf_counter() - started)
