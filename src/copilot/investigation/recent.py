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

What is kept is anchored where the investigations are. The first lookup in a project reads from
SLACK incidents before the 500 candidates of the one investigated on, forward, at most CAP
incidents; later lookups add what the log added since, and what lies further back than SLACK
incidents before the candidates of the latest incident asked about is dropped. An investigator
working through a backlog asks about ever later incidents, so each lookup finds its candidates
here; one that is caught up keeps ~2,000 incidents per project. (Kept as the project's newest
2,000 instead, a burst of 10,000 incidents sent 86% of the backlog's lookups to the database.)

Bounds: CAP incidents per project and REMEMBERED in all (about 520 bytes each), the least
recently investigated projects forgotten first; when full, a project not remembered is let in only
if it was asked about more often lately than the one it would push out (`_admit`). Over CAP,
what lies ahead of the latest incident asked about goes first (those detected from `below` on are
not kept), then the oldest. So an investigator further behind a burst than CAP keeps the stretch
it is working through, and reads the next stretch anew when its lookups pass `below`: ~CAP rows
for every CAP - 2,000 lookups. (Keeping the newest CAP instead sent every lookup of a backlog that
deep to the database.) A project's memory holds every incident detected after its oldest kept one
and before `below`; an investigation whose 500 candidates reach further back than that (an old
incident investigated late, out of order) is answered `None`, and the caller reads the database
as before.

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
_HIGHEST = "(SELECT MAX(position) FROM incidents WHERE project_id = :project_id)"  # read with the rows: one snapshot
# The detection time of the incident `back` places before the newest detected before t0: what
# is kept when reading anew starts after it.
_SINCE = ("SELECT detected_at FROM incidents WHERE project_id = :project_id AND detected_at < :t0"
          " ORDER BY detected_at DESC LIMIT 1 OFFSET :back")
_FROM = (f"SELECT {_COLUMNS}, {_HIGHEST} FROM incidents WHERE project_id = :project_id AND detected_at > :since"
         " ORDER BY detected_at LIMIT :more")
_ALL = f"SELECT {_COLUMNS}, {_HIGHEST} FROM incidents WHERE project_id = :project_id ORDER BY detected_at LIMIT :more"
_ADDED = (f"SELECT {_COLUMNS} FROM incidents WHERE project_id = :project_id AND position > :mark"
          " ORDER BY position LIMIT :cap")


class _Project:
    __slots__ = ("after", "asked", "below", "kept", "lock", "mark")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: list[Candidate] = []  # ascending by (detected_at, order)
        self.mark = -1  # the highest position read; -1: nothing read yet
        self.after: datetime | None = None  # kept is every incident detected after this (None: every one) ...
        self.below: datetime | None = None  # ... and before this (None: up to the newest)
        self.asked: datetime | None = None  # the latest detection time asked about: what is kept is anchored there


class RecentIncidents:
    SLACK = 1500  # kept before the latest incident's candidates, for lookups that come out of order
    CAP = 10_000  # incidents per project (~5 MB)
    # Incidents of all projects (~52 MB): more, and the least recently investigated go. Ten times
    # CAP: up to ten projects with a backlog each, investigated in turn, do not push each other out
    # (each would be read anew at its next lookup); more than ten do.
    REMEMBERED = 100_000
    # Lookups per project are counted, and the counts halved every AGING lookups: how often a
    # project was asked about lately, which decides whether it may push another out (`_admit`).
    AGING = 10_000

    def __init__(self, db: ReadDatabase) -> None:
        self.db = db
        self._projects: OrderedDict[UUID, _Project] = OrderedDict()
        self._lock = threading.Lock()
        self._asked: dict[UUID, int] = {}
        self._lookups = 0

    def before(self, project_id: UUID, t0: datetime, count: int) -> list[Candidate] | None:
        """The `count` incidents of the project detected most recently before `t0` (an incident
        detected at `t0`, the one investigated included, is not among them), in ascending order
        of detection and, among equals, of descending id; None when some of them may be older than
        what is kept."""
        with self._lock:
            self._count(project_id)
            project = self._projects.get(project_id)
            held = sum(len(remembered.kept) for remembered in self._projects.values())
            if project is None:
                if not self._admit(project_id, would_hold=held + count + self.SLACK):
                    return None
                project = self._projects[project_id] = _Project()
            else:
                self._projects.move_to_end(project_id)
            while held > self.REMEMBERED and len(self._projects) > 1:
                held -= len(self._projects.popitem(last=False)[1].kept)
        with project.lock:
            # Read anew the first time, after more was added than catching up is worth, or when
            # this incident lies past the stretch kept (an investigator working through a backlog
            # deeper than CAP).
            if (project.mark < 0 or not self._catch_up(project_id, project)
                    or (project.below is not None and t0 > project.below)):
                self._read(project_id, project, t0, count)
            if project.asked is None or t0 > project.asked:
                project.asked = t0
            kept = project.kept
            end = bisect.bisect_left(kept, (t0,))  # the first detected at or after t0
            found = kept[max(end - count, 0):end]
            complete = ((project.after is None or (len(found) == count and found[0].detected_at > project.after))
                        and (project.below is None or t0 <= project.below))
            self._trim(project, count)
            return found if complete else None

    def _count(self, project_id: UUID) -> None:
        self._asked[project_id] = self._asked.get(project_id, 0) + 1
        self._lookups += 1
        if self._lookups >= self.AGING:
            self._asked = {key: asked // 2 for key, asked in self._asked.items() if asked > 1}
            self._lookups = 0

    def _admit(self, project_id: UUID, would_hold: int) -> bool:
        """Whether a project not remembered gets a memory: while there is room, yes; when there is
        none, only if it was asked about more often lately than the least recently investigated
        project, which it would push out. Else the database answers. With more projects
        investigated in turn than fit, each would otherwise push out the next and be read anew
        (~2,000 rows) at its every lookup, four times the rows the database reads for one; this
        way the ones remembered stay, and the rest read the database."""
        if would_hold <= self.REMEMBERED or not self._projects:
            return True
        oldest = next(iter(self._projects))
        return self._asked.get(project_id, 0) > self._asked.get(oldest, 0)

    def _catch_up(self, project_id: UUID, project: _Project) -> bool:
        """Add what the log added since the last read; False when that is CAP or more (read anew)."""
        rows = self.db.fetch_tuples(_ADDED, {"project_id": project_id, "mark": project.mark, "cap": self.CAP})
        if len(rows) >= self.CAP:
            return False
        self._add(project, rows)
        return True

    def _read(self, project_id: UUID, project: _Project, t0: datetime, count: int) -> None:
        """Anew: from `count` + SLACK incidents before t0 on, at most CAP."""
        params = {"project_id": project_id, "t0": t0, "back": count + self.SLACK, "more": self.CAP + 1}
        since = self.db.fetch_tuples(_SINCE, params)
        rows = self.db.fetch_tuples(_FROM, {**params, "since": since[0][0]}) if since else (
            self.db.fetch_tuples(_ALL, params))
        project.kept, project.after, project.below = [], since[0][0] if since else None, None
        project.mark = (rows[0][6] or 0) if rows else 0  # every row carries the project's highest position
        if len(rows) > self.CAP:  # the rest, from the first not kept on (and any detected with it), later
            project.below = rows[self.CAP][0]
            rows = rows[:bisect.bisect_left(rows, (project.below,))]
        self._add(project, [row[:6] for row in rows])

    def _add(self, project: _Project, rows: list[tuple[Any, ...]]) -> None:
        kept = project.kept
        for detected_at, key, service, title, description, position in rows:
            if position is not None:
                project.mark = max(project.mark, position)
            if project.after is not None and detected_at <= project.after:
                continue  # older than what is kept: an investigation that needs it reads the database
            if project.below is not None and detected_at >= project.below:
                continue  # past the stretch kept: read with the next stretch
            key = str(key)
            bisect.insort(kept, Candidate(detected_at, -UUID(key).int, key, (service, title, description)))

    def _trim(self, project: _Project, count: int) -> None:
        """Forget what lies further back than SLACK before the latest incident's candidates; then,
        over CAP, what lies ahead of the latest incident asked about, then the oldest."""
        assert project.asked is not None
        kept, asked = project.kept, (project.asked,)
        self._drop(project, bisect.bisect_left(kept, asked) - count - self.SLACK)
        if len(kept) > self.CAP:
            cut = max(self.CAP, bisect.bisect_left(kept, asked))  # what lies ahead first
            if cut < len(kept):  # those detected with the first one cut go with it
                project.below = kept[cut].detected_at
                del kept[bisect.bisect_left(kept, (project.below,)):]
            self._drop(project, len(kept) - self.CAP)

    @staticmethod
    def _drop(project: _Project, oldest: int) -> None:
        if oldest > 0:
            project.after = project.kept[oldest - 1].detected_at  # every one kept after it, still
            del project.kept[:oldest]
