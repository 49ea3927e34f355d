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
from copilot.investigation.gather import Gatherer, similarity, text_similarity, tokens
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


@pytest.mark.parametrize("keep", [1000, 600, 100], ids=["remembered", "partly remembered", "read"])
def test_the_lookup_shows_what_the_definition_says(container: Container, keep: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RecentIncidents, "KEEP", keep)  # 100: never enough, every lookup reads the database
    rng = random.Random(7)
    seeded = Seeded(uuid4(), uuid4(), [], [], [])
    # Distinct detection times (the 500-row cut must not fall on a tie), an hour apart on average.
    times = iter(rng.sample(range(0, 90 * 24 * 3600), 1000))
    gatherer = Gatherer(container.db, lambda: datetime.now(UTC))
    read = 0
    in_groups = gatherer._alike_in_groups

    def reading(*args: Any) -> Any:
        nonlocal read
        read += 1
        return in_groups(*args)

    monkeypatch.setattr(gatherer, "_alike_in_groups", reading)
    novelties, lookups = set(), 0
    for count in (760, 240):  # then after incidents were added, at times among the earlier ones
        added = _seed(container, rng, seeded, count, times)
        mine = sorted((i for i in seeded.incidents if i.project_id == seeded.project), key=lambda i: i.detected_at)
        with_alerts = {incident_id for _, incident_id, _ in seeded.alerts}
        # The oldest (nothing before it), the newest (the 500-row cut), ones with alerts, some just
        # added, and some others.
        targets = [mine[0], mine[-1], *[i for i in mine if i.id in with_alerts][-5:], *rng.sample(added, 5),
                   *rng.sample(mine, 10)]
        for target in targets:
            fact = IncidentFact(id=target.id, title=target.title, description=target.description,
                                service=target.service, severity="high", detected_at=target.detected_at)
            ranked, novelty = gatherer.similar(fact, seeded.project).facts
            shown = [(s.incident_id, s.title, s.service_name, s.detected_at, s.score, s.confirmed_category,
                      s.confirmed_claim) for s in ranked]
            assert (shown, novelty) == _by_definition(target, seeded.incidents, seeded.alerts, seeded.hypotheses)
            novelties.add(novelty)
            lookups += 1
    assert {"new", "frequent"} <= novelties
    if keep == 1000:
        assert read == 0  # every lookup was answered from memory
    elif keep == 100:
        assert read == lookups
    else:
        assert 0 < read < lookups  # the oldest incidents' lookups reach back further than what is kept
