"""The facts an investigation gathers, in one structure both engines read."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

__all__ = ["AlertFact", "ChangeFact", "Evidence", "IncidentFact", "MetricFact", "SimilarFact", "fingerprint"]


class IncidentFact(msgspec.Struct, frozen=True):
    id: UUID
    title: str
    description: str
    service: str
    severity: str
    detected_at: datetime


class AlertFact(msgspec.Struct, frozen=True):
    name: str
    severity: str
    service: str
    starts_at: datetime
    description: str
    linked: bool  # linked to the incident, or merely firing for its service


class MetricFact(msgspec.Struct, frozen=True):
    signal: str
    before: float | None  # average over the baseline window before detection
    during: float | None  # peak around detection
    change_pct: float | None
    # When a rise began (minutes before detection; negative: after) and how many minutes it took
    # to get most of the way to its peak: a step (a few minutes) or a slow climb. None when the
    # signal did not rise or the climb began before the window.
    onset_minutes_before: float | None = None
    rise_minutes: float | None = None


class ChangeFact(msgspec.Struct, frozen=True):
    kind: str
    service_name: str
    description: str
    version: str | None
    occurred_at: datetime
    minutes_before: float  # before detection (negative: after)


class SimilarFact(msgspec.Struct, frozen=True):
    incident_id: UUID
    title: str
    service_name: str
    detected_at: datetime
    score: float
    confirmed_category: str | None
    confirmed_claim: str | None


SourceStatus = Literal["ok", "skipped", "failed"]


class Evidence(msgspec.Struct, frozen=True):
    incident: IncidentFact
    alerts: list[AlertFact] = []
    metrics: list[MetricFact] = []
    metrics_status: SourceStatus = "skipped"
    changes: list[ChangeFact] = []
    similar: list[SimilarFact] = []
    novelty: Literal["frequent", "rare", "new"] = "new"


def fingerprint(evidence: Evidence) -> str:
    """Identical evidence, identical fingerprint: what the hypothesis cache is keyed on.

    The incident's identity and clock are left out, and so are the identities of similar
    incidents (only their confirmed causes count), so a recurrence with the same facts
    relative to its detection hits the cache.
    """
    facts = msgspec.to_builtins({
        "service": evidence.incident.service,
        "severity": evidence.incident.severity,
        "alerts": sorted((a.name, a.severity, a.service, a.linked) for a in evidence.alerts),
        "metrics": sorted((m.signal, _round(m.before), _round(m.during), _round(m.onset_minutes_before),
                           _round(m.rise_minutes)) for m in evidence.metrics),
        "metrics_status": evidence.metrics_status,
        "changes": sorted((c.kind, c.service_name, c.version or "", round(c.minutes_before)) for c in evidence.changes),
        # What past incidents add is their confirmed causes; which ones they were changes nothing.
        "confirmed_causes": sorted({s.confirmed_category for s in evidence.similar if s.confirmed_category}),
    })
    return hashlib.sha256(msgspec.json.encode(facts, order="sorted")).hexdigest()


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.3g}")
