"""The similar-incidents lookup shows what its definition says, on both engines.

The lookup takes the candidates from the investigator's memory of the project, or, when that
does not reach back far enough, groups them in SQL and reads a few rows per group; this compares
what it shows, both ways and after incidents are added to a project it remembers, with the
definition applied to every row in Python: among the project's 500 incidents
detected most recently before this one, those scoring at least 0.3 are alike; the five most
alike are shown (the most recent first among equals), each with its latest run's best-ranked
confirmed cause; three or more alike at 0.5 or more within a month make the incident frequent.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from copilot.bootstrap import Container
from copilot.investigation.evidence import IncidentFact
from copilot.investigation.gather import CANDIDATES, Gatherer, similarity, text_similarity, tokens
from copilot.investigation.recent import RecentIncidents

TITLES = ["Checkout 5xx after payment timeout", "Checkout latency high", "Payment provider timeouts",
          "Search index rebuild slow", "Disk full on db-1", "Login errors spike"]
DESCRIPTIONS = ["", "errors rising since deploy", "p99 latency over SLO"]
SERVICES = ["checkout", "payments", "search", "auth"]
ALERTS = ["HighErrorRate", "LatencySLO", "DiskFull", "OOMKilled"]
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Past:
    id: UUID
    project_id: UUID
    title: str
    description: str
    service: str
    detected_at: datetime


@dataclass
class Seeded:
    project: UUID
    other: UUID
    incidents: list[Past]
    alerts: list[tuple[UUID, UUID, str]]
    hypotheses: list[tuple[UUID, int, int, str, str, str]]


def _seed(container: Container, rng: random.Random, seeded: Seeded, count: int, times: Iterator[int]) -> list[Past]:
    """`count` more incidents, a few in the other project, each at the next position in the log."""
    first = len(seeded.incidents)
    incidents = [Past(uuid4(), seeded.other if rng.random() < 0.04 else seeded.project, rng.choice(TITLES),
                      rng.choice(DESCRIPTIONS), rng.choice(SERVICES), START + timedelta(seconds=next(times)))
                 for _ in range(count)]
    alerts = [(incident.project_id, incident.id, name) for incident in incidents if rng.random() < 0.3
              for name in rng.sample(ALERTS, rng.randint(1, 2))]
    hypotheses = [(incident.id, run, rank, rng.choice(["confirmed", "rejected"]), f"category {run}.{rank}",
                   f"claim {run}.{rank}") for incident in incidents if rng.random() < 0.2
                  for run in (1, 2) for rank in (1, 2, 3) if rng.random() < 0.5]
    project = seeded.project
    with container.db.transaction() as tx:
        for position, i in enumerate(incidents, start=first + 1):
            tx.execute(
                "INSERT INTO incidents (id, tenant_id, project_id, title, description, service_name, severity, state,"
                " detected_at, state_since, created_at, updated_at, position) VALUES (:id, :tenant, :project,"
                " :title, :description, :service, 'high', 'detected', :at, :at, :at, :at, :position)",
                {"id": i.id, "tenant": project, "project": i.project_id, "title": i.title,
                 "description": i.description, "service": i.service, "at": i.detected_at, "position": position})
        for project_id, incident_id, name in alerts:
            tx.execute(
                "INSERT INTO alerts (id, tenant_id, project_id, integration_id, fingerprint, name, severity, service,"
                " description, labels, annotations, status, starts_at, incident_id, created_at, updated_at) VALUES"
                " (:id, :p, :p, :p, :fp, :name, 'critical', 'svc', '', '{}', '{}', 'firing', :at, :incident, :at,"
                " :at)", {"id": uuid4(), "p": project_id, "fp": uuid4().hex, "name": name, "at": START,
                          "incident": incident_id})
        for incident_id, run, rank, feedback, category, claim in hypotheses:
            tx.execute(
                "INSERT INTO hypotheses (id, incident_id, project_id, run, rank, category, claim, description,"
                " confidence_score, confidence_lower, confidence_upper, supporting_evidence, contradicting_evidence,"
                " evidence_fingerprint, user_feedback, created_at) VALUES (:id, :incident, :p, :run, :rank,"
                " :category, :claim, '', 0.5, 0.4, 0.6, '[]', '[]', 'fp', :feedback, :at)",
                {"id": uuid4(), "incident": incident_id, "p": project, "run": run, "rank": rank,
                 "category": category, "claim": claim, "feedback": feedback, "at": START})
    seeded.incidents += incidents
    seeded.alerts += alerts
    seeded.hypotheses += hypotheses
    return [incident for incident in incidents if incident.project_id == project]


def _by_definition(target: Past, incidents: list[Past], alerts: list[tuple[UUID, UUID, str]],
                   hypotheses: list[tuple[UUID, int, int, str, str, str]]) -> tuple[list[tuple[Any, ...]], str]:
    candidates = sorted((i for i in incidents if i.project_id == target.project_id and i.id != target.id
                         and i.detected_at < target.detected_at), key=lambda i: i.detected_at, reverse=True)[:500]
    names = {name for project_id, incident_id, name in alerts
             if project_id == target.project_id and incident_id == target.id}
    words = tokens(f"{target.title} {target.description}")
    alike = []
    for c in candidates:
        linked = any(project_id == target.project_id and incident_id == c.id and name in names
                     for project_id, incident_id, name in alerts)
        score = similarity(c.service == target.service,
                           text_similarity(words, tokens(f"{c.title} {c.description}")), linked)
        if score >= 0.3:
            alike.append((score, c))
    top = sorted(alike, key=lambda found: (found[0], found[1].detected_at), reverse=True)[:5]
    shown = []
    for score, c in top:
        confirmed = sorted((-run, rank, category, claim) for incident_id, run, rank, feedback, category, claim
                           in hypotheses if incident_id == c.id and feedback == "confirmed")
        cause = confirmed[0][2:] if confirmed else (None, None)
        shown.append((c.id, c.title, c.service, c.detected_at, score, *cause))
    month_ago = target.detected_at - timedelta(days=30)
    recent = sum(1 for score, c in alike if score >= 0.5 and c.detected_at >= month_ago)
    return shown, "frequent" if recent >= 3 else "rare" if alike else "new"


class Looking:
    """A gatherer over seeded incidents, checking each lookup against the definition and counting
    the lookups the memory could not answer (read from the database instead)."""

    def __init__(self, container: Container, monkeypatch: pytest.MonkeyPatch, most: int = 1000) -> None:
        self.rng = random.Random(7)
        self.seeded = Seeded(uuid4(), uuid4(), [], [], [])
        # Distinct detection times (the 500-row cut must not fall on a tie), an hour apart on average.
        self.times = iter(self.rng.sample(range(0, most * 3600 * 2), most))
        self.container = container
        self.gatherer = Gatherer(container.db, lambda: datetime.now(UTC))
        self.read = self.lookups = 0
        self.answered: list[tuple[int, bool]] = []  # each lookup's incidents before it, and whether it read
        self.novelties: set[str] = set()
        in_groups = self.gatherer._alike_in_groups

        def reading(*args: Any) -> Any:
            self.read += 1
            return in_groups(*args)

        monkeypatch.setattr(self.gatherer, "_alike_in_groups", reading)

    def seed(self, count: int) -> list[Past]:
        return _seed(self.container, self.rng, self.seeded, count, self.times)

    def mine(self) -> list[Past]:
        return sorted((i for i in self.seeded.incidents if i.project_id == self.seeded.project),
                      key=lambda i: i.detected_at)

    def check(self, target: Past) -> None:
        read = self.read
        fact = IncidentFact(id=target.id, title=target.title, description=target.description,
                            service=target.service, severity="high", detected_at=target.detected_at)
        ranked, novelty = self.gatherer.similar(fact, self.seeded.project).facts
        shown = [(s.incident_id, s.title, s.service_name, s.detected_at, s.score, s.confirmed_category,
                  s.confirmed_claim) for s in ranked]
        seeded = self.seeded
        assert (shown, novelty) == _by_definition(target, seeded.incidents, seeded.alerts, seeded.hypotheses)
        self.novelties.add(novelty)
        self.lookups += 1
        before = sum(1 for i in self.mine() if i.detected_at < target.detected_at)
        self.answered.append((before, self.read > read))


@pytest.mark.parametrize("cap", [1000, 600, 100], ids=["remembered", "partly remembered", "read"])
def test_the_lookup_shows_what_the_definition_says(container: Container, cap: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RecentIncidents, "CAP", cap)  # 100: enough only for the oldest incidents' lookups
    looking = Looking(container, monkeypatch)
    rng, seeded = looking.rng, looking.seeded
    for count in (760, 240):  # then after incidents were added, at times among the earlier ones
        added = looking.seed(count)
        mine = looking.mine()
        with_alerts = {incident_id for _, incident_id, _ in seeded.alerts}
        # The oldest (nothing before it), the newest (the 500-row cut), ones with alerts, some just
        # added, and some others.
        for target in [mine[0], mine[-1], *[i for i in mine if i.id in with_alerts][-5:], *rng.sample(added, 5),
                       *rng.sample(mine, 10)]:
            looking.check(target)
    assert {"new", "frequent"} <= looking.novelties
    if cap == 1000:
        assert looking.read == 0  # every lookup was answered from memory
    else:  # some lookups reach back further than what is kept; one needing more than CAP always does
        assert 0 < looking.read < looking.lookups
        assert all(read for before, read in looking.answered if min(before, CANDIDATES) > cap)


def test_an_investigator_working_through_a_backlog_in_order_finds_the_candidates_in_memory(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    # What an investigator ~2,000 incidents behind a burst does: it asks about ever later
    # incidents, while more are added (here at times among the earlier ones). What is kept follows
    # the asks and forgets what lies more than SLACK incidents behind their candidates. (Kept as the
    # project's newest 2,000 instead, as before, these lookups went to the database.)
    monkeypatch.setattr(RecentIncidents, "SLACK", 40)
    looking = Looking(container, monkeypatch, most=2800)
    looking.seed(2560)
    mine = looking.mine()
    looking.check(mine[560])  # the first lookup reads from 500 + SLACK before it on
    looking.check(mine[530])  # one driven a little out of order finds its candidates too
    for last in range(600, 1400, 40):  # the rest follow
        looking.check(mine[last])
    asked = mine[last].detected_at
    kept = looking.gatherer.recent._projects[looking.seeded.project].kept
    assert kept[0].key == str(mine[last - 540].id) and len(kept) == len(mine) - (last - 540)  # the rest forgotten
    looking.seed(240)
    for target in [i for i in looking.mine() if i.detected_at > asked][::40]:
        looking.check(target)
    assert looking.lookups > 50 and looking.read == 0


def test_an_investigator_further_behind_than_the_memory_holds_reads_each_stretch_once(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    # An investigator more than CAP incidents behind a burst keeps the stretch it is working
    # through, and reads the next stretch when its lookups get there: each lookup is still answered
    # from memory, the memory stays within CAP, and one read serves CAP - 540 incidents' lookups.
    # (Keeping the project's newest CAP instead, as before, sent each of these lookups to the database.)
    monkeypatch.setattr(RecentIncidents, "SLACK", 40)
    monkeypatch.setattr(RecentIncidents, "CAP", 1000)
    looking = Looking(container, monkeypatch, most=3100)
    recent = looking.gatherer.recent
    stretches = 0
    read_anew = recent._read

    def reading_anew(*args: Any) -> None:
        nonlocal stretches
        stretches += 1
        read_anew(*args)

    monkeypatch.setattr(recent, "_read", reading_anew)
    looking.seed(2560)
    mine = looking.mine()
    for last in range(560, len(mine), 20):
        looking.check(mine[last])
        assert len(recent._projects[looking.seeded.project].kept) <= 1000
    assert stretches <= 1 + (len(mine) - 560) // (1000 - 540) + 1
    asked = mine[last].detected_at
    # More arrive while it works, at times among the earlier ones; it goes on with the later ones.
    looking.seed(500)
    for target in [i for i in looking.mine() if i.detected_at > asked][::10]:
        looking.check(target)
        assert len(recent._projects[looking.seeded.project].kept) <= 1000
    assert looking.lookups > 90 and looking.read == 0


def test_with_more_projects_investigated_in_turn_than_fit_the_remembered_ones_stay(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    # Five projects investigated in turn, room for about two. Each project pushed out since its last
    # lookup used to be read anew at its next (count + SLACK rows and more, several times what the
    # database reads to answer one lookup). Now a project gets a memory only if it was asked about
    # more often lately than the one it would push out: two stay remembered and answer from
    # memory, the other three's lookups read the database, and every answer is the definition's.
    monkeypatch.setattr(RecentIncidents, "SLACK", 40)
    monkeypatch.setattr(RecentIncidents, "REMEMBERED", 1300)
    projects = [Looking(container, monkeypatch, most=700) for _ in range(5)]
    shared = projects[0].gatherer  # one investigator: one memory, its database reads counted on projects[0]
    stretches = 0
    read_anew = shared.recent._read

    def reading_anew(*args: Any) -> None:
        nonlocal stretches
        stretches += 1
        read_anew(*args)

    monkeypatch.setattr(shared.recent, "_read", reading_anew)
    for looking in projects:
        looking.gatherer = shared
        looking.seed(600)
    rounds = 8
    for n in range(rounds):
        for looking in projects:
            looking.check(looking.mine()[560 + n])
    assert stretches == 2 and len(shared.recent._projects) == 2
    assert projects[0].read == 3 * rounds
