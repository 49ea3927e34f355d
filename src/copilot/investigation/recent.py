"""Each investigator's memory of its projects' recently detected incidents: the candidates of the
similar-incidents step, kept instead of read again for every investigation.

Every investigation compares its incident with the project's 500 incidents detected most recently
before it. Read from the database each time, that was the investigator's largest step: a window
query over 500 rows cost PostgreSQL ~3 ms of CPU per investigation here, and the rows up to ~2 ms
more in the investigator when their texts differ. Consecutive investigations in a project look
at nearly the same 500, so the investigator keeps them and asks the database only for the
incidents added since it last asked.

"Added since" is by log position (`incidents.position`, the position of the incident's Detected
event): the projector writes the log in order and commits as it goes, so everything below the
highest position a read saw was already there for that read. An incident detected in the past
(a backfill) is added like any other and sorts into its place by detection time.

Kept per project: the KEEP most recently detected incidents, so an investigator may lag 1,500
incidents behind a burst in a project and still find the candidates here; in all, up to
REMEMBERED incidents (about 420 bytes each), the least recently investigated projects forgotten
first. A project's memory holds every incident detected after its oldest kept one; an
investigation whose 500 candidates reach further back than that (an old incident investigated
late) is answered `None`, and the caller reads the database as before.

An incident projected without a position (by a projector of a version before this column, during
a rolling upgrade) is not caught up on: a project's memory sees it only when it is read anew.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from copilot.projections.db import ReadDatabase

__all__ = ["Candidate", "RecentIncidents"]


class Candidate(NamedTuple):
    detected_at: datetime
    order: int  # minus the id as a number: kept ascending, read backwards, the lower id comes first among equals
    key: str  # the id as text
    alike_in: tuple[str, str, str]  # service, title and description: what the score reads of it


_COLUMNS = "detected_at, CAST(id AS TEXT), service_name, title, description, position"
_NEWEST = (f"SELECT {_COLUMNS}, (SELECT MAX(position) FROM incidents WHERE project_id = :project_id)"
           " FROM incidents WHERE project_id = :project_id ORDER BY detected_at DESC LIMIT :more")
_ADDED = (f"SELECT {_COLUMNS} FROM incidents WHERE project_id = :project_id AND position > :mark"
          " ORDER BY position LIMIT :keep")


class _Project:
    __slots__ = ("after", "kept", "lock", "mark")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: list[Candidate] = []  # ascending by (detected_at, order)
        self.mark = -1  # the highest position read; -1: nothing read yet
        self.after: datetime | None = None  # kept is every incident detected after this (None: every one)


class RecentIncidents:
    KEEP = 2000  # incidents per project: the 500 candidates, and room for the ones added meanwhile
    REMEMBERED = 50_000  # incidents of all projects (~21 MB): more, and the least recently investigated go

    def __init__(self, db: ReadDatabase) -> None:
        self.db = db
        self._projects: OrderedDict[UUID, _Project] = OrderedDict()
        self._lock = threading.Lock()

    def before(self, project_id: UUID, t0: datetime, count: int) -> list[Candidate] | None:
        """The `count` incidents of the project detected most recently before `t0` (an incident
        detected at `t0`, the one investigated included, is not among them), in ascending order
        of detection and, among equals, of descending id; None when some of them may be older than
        what is kept."""
        with self._lock:
            project = self._projects.get(project_id)
            if project is None:
                project = self._projects[project_id] = _Project()
            else:
                self._projects.move_to_end(project_id)
            held = sum(len(remembered.kept) for remembered in self._projects.values())
            while held > self.REMEMBERED and len(self._projects) > 1:
                held -= len(self._projects.popitem(last=False)[1].kept)
        with project.lock:
            self._catch_up(project_id, project)
            kept = project.kept
            end = bisect.bisect_left(kept, (t0,))  # the first detected at or after t0
            found = kept[max(end - count, 0):end]
            if project.after is not None and (len(found) < count or found[0].detected_at <= project.after):
                return None
            return found

    def _catch_up(self, project_id: UUID, project: _Project) -> None:
        params = {"project_id": project_id, "mark": project.mark, "keep": self.KEEP, "more": self.KEEP + 1}
        if project.mark >= 0:
            rows = self.db.fetch_tuples(_ADDED, params)
            if len(rows) < self.KEEP:
                self._add(project, rows)
                return
            # So many added since that reading the newest is less work than catching up
        rows = self.db.fetch_tuples(_NEWEST, params)  # one more than is kept: are there older ones?
        project.kept, project.after = [], None
        project.mark = (rows[0][6] or 0) if rows else 0  # every row carries the project's highest position
        self._add(project, [row[:6] for row in rows])  # drops the one more, if it came, and says so

    def _add(self, project: _Project, rows: list[tuple[Any, ...]]) -> None:
        kept = project.kept
        for detected_at, key, service, title, description, position in rows:
            if position is not None:
                project.mark = max(project.mark, position)
            if project.after is not None and detected_at <= project.after:
                continue  # older than what is kept: an investigation that needs it reads the database
            key = str(key)
            bisect.insort(kept, Candidate(detected_at, -UUID(key).int, key, (service, title, description)))
        if len(kept) > self.KEEP:
            del kept[:len(kept) - self.KEEP]
            project.after = kept[0].detected_at
