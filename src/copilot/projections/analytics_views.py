"""Analytics figures: pure functions over recorded LLM calls and generations, and the queries behind them.

Money stays `Decimal` from the event to the response; only the API rounds, when it encodes JSON.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from copilot.projections.db import ReadDatabase

__all__ = [
    "AnalyticsView",
    "Generation",
    "LLMRecord",
    "cost_summary",
    "incident_llm_metrics",
    "token_usage",
]

ZERO = Decimal(0)
STEP_OF_REQUEST = {"hypothesis": "generate"}  # which workflow step makes each kind of request


@dataclass(frozen=True)
class LLMRecord:
    incident_id: UUID
    model: str
    request_type: str
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    saved: Decimal
    cached: bool
    success: bool
    occurred_at: datetime

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Generation:
    incident_id: UUID
    cached: bool
    occurred_at: datetime


@dataclass
class _Tally:
    requests: int = 0
    tokens: int = 0
    cost: Decimal = ZERO

    def add(self, r: LLMRecord) -> None:
        self.requests += 1
        self.tokens += r.tokens
        self.cost += r.cost


def _billable(records: list[LLMRecord]) -> list[LLMRecord]:
    """Calls actually made: a cache hit is accounted separately, as a saving."""
    return [r for r in records if not r.cached]


def token_usage(records: list[LLMRecord], start: date, end: date) -> dict[str, Any]:
    calls = _billable(records)
    by_type: dict[str, _Tally] = defaultdict(_Tally)
    by_day: dict[date, _Tally] = defaultdict(_Tally)
    for r in calls:
        by_type[r.request_type].add(r)
        by_day[r.occurred_at.astimezone(UTC).date()].add(r)
    total = _Tally()
    for r in calls:
        total.add(r)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    return {
        "total_requests": total.requests,
        "total_tokens": total.tokens,
        "total_cost_usd": total.cost,
        "breakdown_by_type": [
            {"request_type": kind, "count": t.requests, "total_tokens": t.tokens, "cost_usd": t.cost}
            for kind, t in sorted(by_type.items())
        ],
        "timeline": [
            {"date": day.isoformat(), "requests": by_day[day].requests, "tokens": by_day[day].tokens,
             "cost_usd": by_day[day].cost}
            for day in days
        ],
    }


@dataclass
class _IncidentCost:
    incident_id: UUID
    cost: Decimal = ZERO
    requests: int = 0


def cost_summary(
    records: list[LLMRecord],
    previous: list[LLMRecord],
    generations: list[Generation],
    incidents: dict[UUID, dict[str, Any]],
    total_incidents: int,
) -> dict[str, Any]:
    """`records` and `generations` of the period, `previous` the calls of the period before it,
    `incidents` title and severity of incidents the records name."""
    calls = _billable(records)
    total_cost = sum((r.cost for r in calls), ZERO)
    hits = sum(1 for g in generations if g.cached)
    hit_rate = Decimal(hits * 100) / len(generations) if generations else ZERO
    savings = sum((r.saved for r in records if r.cached), ZERO)
    per_incident: dict[UUID, _IncidentCost] = {}
    for r in calls:
        tally = per_incident.setdefault(r.incident_id, _IncidentCost(r.incident_id))
        tally.cost += r.cost
        tally.requests += 1
    expensive = sorted(per_incident.values(), key=lambda t: (-t.cost, -t.requests, str(t.incident_id)))[:10]
    summary = {
        "overall_stats": {
            "total_requests": len(calls),
            "total_cost_usd": total_cost,
            "avg_cost_per_request": total_cost / len(calls) if calls else ZERO,
        },
        "cache_stats": {
            "total_incidents": total_incidents,
            "incidents_with_hypotheses": len({g.incident_id for g in generations}),
            "cache_hit_rate": hit_rate,
            "potential_savings": savings,
        },
        "most_expensive_incidents": [
            {"incident_id": t.incident_id, "title": incidents.get(t.incident_id, {}).get("title", ""),
             "total_cost": t.cost, "request_count": t.requests}
            for t in expensive
        ],
    }
    summary["recommendations"] = _recommendations(records, previous, generations, incidents, hit_rate, total_cost)
    return summary


def _recommendations(
    records: list[LLMRecord], previous: list[LLMRecord], generations: list[Generation],
    incidents: dict[UUID, dict[str, Any]], hit_rate: Decimal, total_cost: Decimal,
) -> list[dict[str, str]]:
    advice: list[dict[str, str]] = []
    calls = _billable(records)
    if len(generations) >= 5 and hit_rate < 30:
        advice.append({"type": "low_cache_hit_rate", "priority": "medium", "message": (
            f"Cache hit rate ({hit_rate:.0f}%) is low: few investigations share evidence. Record change events "
            "and link alerts consistently so recurrences are recognised and answered from the cache.")})
    minor = sum((r.cost for r in calls if incidents.get(r.incident_id, {}).get("severity") in ("low", "info")),
                ZERO)
    if total_cost > 0 and minor / total_cost > Decimal("0.2"):
        share = minor / total_cost * 100
        advice.append({"type": "expensive_model_for_low_severity", "priority": "low", "message": (
            f"{share:.0f}% of LLM spend went to low and info incidents; a cheaper model or the built-in engine "
            "would do for them.")})
    before = sum((r.cost for r in _billable(previous)), ZERO)
    if before > 0 and total_cost > before * Decimal("1.5"):
        rise = (total_cost - before) / before * 100
        advice.append({"type": "rising_spend", "priority": "high", "message": (
            f"LLM spend rose {rise:.0f}% over the previous period (${before:.4f} → ${total_cost:.4f}).")})
    failed = [r for r in calls if not r.success]
    if failed:
        share = Decimal(len(failed) * 100) / len(calls)
        advice.append({"type": "failed_llm_calls", "priority": "high" if share > 10 else "medium", "message": (
            f"{len(failed)} of {len(calls)} LLM calls failed ({share:.0f}%) and were retried or fell back to the "
            "built-in engine; check the model endpoint and its timeouts.")})
    return advice


def incident_llm_metrics(records: list[LLMRecord]) -> dict[str, Any]:
    calls = _billable(records)
    by_model: dict[str, _Tally] = defaultdict(_Tally)
    by_step: dict[str, _Tally] = defaultdict(_Tally)
    for r in calls:
        by_model[r.model].add(r)
        by_step[STEP_OF_REQUEST.get(r.request_type, r.request_type)].add(r)
    return {
        "requests": len(calls),
        "cache_hits": sum(1 for r in records if r.cached),
        "failed_requests": sum(1 for r in calls if not r.success),
        "prompt_tokens": sum(r.prompt_tokens for r in calls),
        "completion_tokens": sum(r.completion_tokens for r in calls),
        "total_tokens": sum(r.tokens for r in calls),
        "cost_usd": sum((r.cost for r in calls), ZERO),
        "saved_usd": sum((r.saved for r in records if r.cached), ZERO),
        "by_model": [{"model": m, "requests": t.requests, "tokens": t.tokens, "cost_usd": t.cost}
                     for m, t in sorted(by_model.items())],
        "by_step": [{"step": s, "requests": t.requests, "tokens": t.tokens, "cost_usd": t.cost}
                    for s, t in sorted(by_step.items())],
    }


def _record(row: dict[str, Any]) -> LLMRecord:
    return LLMRecord(
        incident_id=row["incident_id"], model=row["model"], request_type=row["request_type"],
        prompt_tokens=int(row["prompt_tokens"]), completion_tokens=int(row["completion_tokens"]),
        cost=Decimal(str(row["cost_usd"])), saved=Decimal(str(row["saved_usd"])), cached=bool(row["cached"]),
        success=bool(row["success"]), occurred_at=row["occurred_at"],
    )


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """From the first moment of `start` to the first moment after `end`, in UTC."""
    return datetime.combine(start, time.min, UTC), datetime.combine(end + timedelta(days=1), time.min, UTC)


@dataclass
class AnalyticsView:
    db: ReadDatabase
    _columns: str = field(default=(
        "incident_id, model, request_type, prompt_tokens, completion_tokens, cost_usd, saved_usd, cached, success,"
        " occurred_at"), init=False)

    def records(self, project_id: UUID, since: datetime, until: datetime) -> list[LLMRecord]:
        rows = self.db.fetch_all(
            f"SELECT {self._columns} FROM llm_requests WHERE project_id = :project_id AND occurred_at >= :since"
            " AND occurred_at < :until ORDER BY position",
            {"project_id": project_id, "since": since, "until": until},
        )
        return [_record(r) for r in rows]

    def incident_records(self, incident_id: UUID) -> list[LLMRecord]:
        rows = self.db.fetch_all(
            f"SELECT {self._columns} FROM llm_requests WHERE incident_id = :id ORDER BY position", {"id": incident_id})
        return [_record(r) for r in rows]

    def generations(self, project_id: UUID, since: datetime, until: datetime) -> list[Generation]:
        rows = self.db.fetch_all(
            "SELECT incident_id, cached, occurred_at FROM hypothesis_generations WHERE project_id = :project_id"
            " AND occurred_at >= :since AND occurred_at < :until ORDER BY position",
            {"project_id": project_id, "since": since, "until": until},
        )
        return [Generation(r["incident_id"], bool(r["cached"]), r["occurred_at"]) for r in rows]

    def incidents(self, ids: set[UUID]) -> dict[UUID, dict[str, Any]]:
        found: dict[UUID, dict[str, Any]] = {}
        ordered = sorted(ids, key=str)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start:start + 500]
            params = {f"id{n}": incident_id for n, incident_id in enumerate(chunk)}
            rows = self.db.fetch_all(
                f"SELECT id, title, severity FROM incidents WHERE id IN ({', '.join(':' + k for k in params)})", params)
            found.update({row["id"]: row for row in rows})
        return found

    def incident_count(self, project_id: UUID, since: datetime, until: datetime) -> int:
        row = self.db.fetch_one(
            "SELECT COUNT(*) AS n FROM incidents WHERE project_id = :project_id AND detected_at >= :since"
            " AND detected_at < :until", {"project_id": project_id, "since": since, "until": until})
        return int(row["n"]) if row else 0
