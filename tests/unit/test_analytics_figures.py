"""Analytics figures from given LLM calls: exact money, every day listed, cache hits as savings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from copilot.projections.analytics_views import Generation, LLMRecord, cost_summary, incident_llm_metrics, token_usage

A, B = uuid4(), uuid4()


def call(at: datetime, cost: str = "0.0002346", incident: UUID = A, cached: bool = False, success: bool = True,
         saved: str = "0", model: str = "openai/gpt-4o-mini") -> LLMRecord:
    return LLMRecord(incident_id=incident, model=model, request_type="hypothesis", prompt_tokens=0 if cached else 812,
                     completion_tokens=0 if cached else 188, cost=Decimal(cost), saved=Decimal(saved), cached=cached,
                     success=success, occurred_at=at)


def test_every_day_of_the_range_is_listed_with_zeros_and_calls_fall_on_their_utc_day() -> None:
    before_midnight = datetime(2026, 1, 24, 23, 59, 59, tzinfo=UTC)
    after_midnight = before_midnight + timedelta(seconds=2)
    usage = token_usage([call(before_midnight), call(after_midnight, cost="0.1")], date(2026, 1, 23), date(2026, 1, 26))
    assert [d["date"] for d in usage["timeline"]] == ["2026-01-23", "2026-01-24", "2026-01-25", "2026-01-26"]
    assert [d["requests"] for d in usage["timeline"]] == [0, 1, 1, 0]
    assert [d["cost_usd"] for d in usage["timeline"]] == [0, Decimal("0.0002346"), Decimal("0.1"), 0]
    assert usage["total_cost_usd"] == Decimal("0.1002346")  # exact, not 0.10023459999999999
    assert usage["total_tokens"] == 2000


def test_a_call_in_another_timezone_counts_on_its_utc_day() -> None:
    from datetime import timezone

    tokyo = timezone(timedelta(hours=9))
    usage = token_usage([call(datetime(2026, 1, 25, 8, 0, tzinfo=tokyo))], date(2026, 1, 24), date(2026, 1, 25))
    assert [d["requests"] for d in usage["timeline"]] == [1, 0]


def test_cache_hits_are_savings_not_requests() -> None:
    now = datetime(2026, 1, 24, 12, tzinfo=UTC)
    records = [call(now), call(now, incident=B, cached=True, cost="0", saved="0.0002346")]
    generations = [Generation(A, False, now), Generation(B, True, now)]
    summary = cost_summary(records, [], generations, {A: {"title": "slow", "severity": "high"}}, total_incidents=3)
    assert summary["overall_stats"] == {"total_requests": 1, "total_cost_usd": Decimal("0.0002346"),
                                        "avg_cost_per_request": Decimal("0.0002346")}
    assert summary["cache_stats"] == {"total_incidents": 3, "incidents_with_hypotheses": 2,
                                      "cache_hit_rate": Decimal(50), "potential_savings": Decimal("0.0002346")}
    assert summary["most_expensive_incidents"] == [
        {"incident_id": A, "title": "slow", "total_cost": Decimal("0.0002346"), "request_count": 1}]
    assert token_usage(records, now.date(), now.date())["total_requests"] == 1


def test_recommendations_follow_the_figures() -> None:
    now = datetime(2026, 1, 24, 12, tzinfo=UTC)
    records = [call(now, cost="0.01", incident=B), call(now, cost="0.01", incident=B, success=False)]
    previous = [call(now - timedelta(days=8), cost="0.005")]
    generations = [Generation(uuid4(), False, now) for _ in range(6)]
    summary = cost_summary(records, previous, generations, {B: {"title": "disk", "severity": "low"}}, 6)
    kinds = {r["type"]: r["priority"] for r in summary["recommendations"]}
    assert kinds == {"low_cache_hit_rate": "medium", "expensive_model_for_low_severity": "low",
                     "rising_spend": "high", "failed_llm_calls": "high"}
    quiet = cost_summary([call(now)], [call(now - timedelta(days=8))], [Generation(A, False, now)],
                         {A: {"title": "x", "severity": "critical"}}, 1)
    assert quiet["recommendations"] == []


def test_an_incident_is_broken_down_per_model_and_step() -> None:
    now = datetime(2026, 1, 24, 12, tzinfo=UTC)
    figures = incident_llm_metrics([call(now), call(now, model="anthropic/claude-haiku", cost="0.001"),
                                    call(now, cached=True, cost="0", saved="0.0002346")])
    assert figures["requests"] == 2 and figures["cache_hits"] == 1
    assert figures["cost_usd"] == Decimal("0.0012346") and figures["saved_usd"] == Decimal("0.0002346")
    assert [m["model"] for m in figures["by_model"]] == ["anthropic/claude-haiku", "openai/gpt-4o-mini"]
    assert figures["by_step"] == [{"step": "generate", "requests": 2, "tokens": 2000, "cost_usd": Decimal("0.0012346")}]
