"""The built-in engine given evidence: what it concludes, what it cites, and when it abstains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from copilot.investigation.engine import ABSTAIN, generate_hypotheses
from copilot.investigation.evidence import (
    AlertFact,
    ChangeFact,
    Evidence,
    IncidentFact,
    MetricFact,
    SimilarFact,
    fingerprint,
)

T0 = datetime(2026, 1, 24, 12, 0, tzinfo=UTC)


def incident(service: str = "payment-api", title: str = "High error rate on payment-api") -> IncidentFact:
    return IncidentFact(id=uuid4(), title=title, description="", service=service, severity="critical", detected_at=T0)


def deploy(minutes_before: float, service: str = "payment-api", version: str = "v2.4.5") -> ChangeFact:
    return ChangeFact(kind="deploy", service_name=service, description="release", version=version,
                      occurred_at=T0 - timedelta(minutes=minutes_before), minutes_before=minutes_before)


def metric(signal: str, before: float, during: float) -> MetricFact:
    change = round((during - before) / before * 100, 1)
    return MetricFact(signal=signal, before=before, during=during, change_pct=change)


def alert(name: str, description: str = "") -> AlertFact:
    return AlertFact(name=name, severity="critical", service="payment-api", starts_at=T0, description=description,
                     linked=True)


def top(evidence: Evidence, calibration: dict[str, tuple[int, int]] | None = None) -> dict:  # type: ignore[type-arg]
    return generate_hypotheses(evidence, calibration or {}, uuid4())[0]


def test_a_deploy_just_before_the_symptoms_is_the_top_cause_and_its_evidence_cites_numbers_and_times() -> None:
    evidence = Evidence(incident=incident(), changes=[deploy(10)], metrics_status="ok",
                        metrics=[metric("error_ratio", 0.002, 0.061), metric("traffic", 100, 104)])
    best = top(evidence)
    assert best["category"] == "deploy_regression"
    assert "v2.4.5" in best["claim"]
    assert best["confidence_score"] > 0.7
    assert any("10 minutes before detection" in s and "11:50 UTC" in s for s in best["supporting_evidence"])
    assert any("0.002 → 0.061" in s and "+2950%" in s for s in best["supporting_evidence"])
    assert best["confidence_lower"] < best["confidence_score"] < best["confidence_upper"]


def test_with_no_evidence_at_all_the_engine_abstains_low_and_wide() -> None:
    first = top(Evidence(incident=incident(title="Something is off")))
    assert first["category"] == ABSTAIN
    assert first["recommendation"] == "inconclusive"
    assert first["confidence_score"] < 0.5
    assert first["confidence_upper"] - first["confidence_lower"] >= 0.35


def test_an_expired_certificate_alert_points_at_the_credential() -> None:
    evidence = Evidence(incident=incident(), alerts=[alert("TLSCertificateExpired", "x509: certificate has expired")])
    assert top(evidence)["category"] == "expired_credential"


def test_a_traffic_surge_with_no_change_points_at_load() -> None:
    evidence = Evidence(incident=incident(), metrics_status="ok",
                        metrics=[metric("traffic", 100, 450), metric("latency_p99", 0.2, 0.9)])
    assert top(evidence)["category"] == "traffic_surge"


def test_confirmations_tighten_the_interval_and_rejections_lower_the_confidence() -> None:
    evidence = Evidence(incident=incident(), changes=[deploy(40)])
    plain = top(evidence)
    confirmed = top(evidence, {"deploy_regression": (12, 0)})
    rejected = top(evidence, {"deploy_regression": (0, 12)})
    assert confirmed["category"] == plain["category"] == "deploy_regression"
    width = plain["confidence_upper"] - plain["confidence_lower"]
    assert confirmed["confidence_upper"] - confirmed["confidence_lower"] < width
    assert confirmed["confidence_score"] > plain["confidence_score"]
    rejected_deploy = next(h for h in generate_hypotheses(evidence, {"deploy_regression": (0, 12)}, uuid4())
                           if h["category"] == "deploy_regression")
    assert rejected_deploy["confidence_score"] < plain["confidence_score"]
    assert rejected["confidence_score"] <= plain["confidence_score"]


def test_a_confirmed_similar_incident_suggests_a_recurrence() -> None:
    past = SimilarFact(incident_id=uuid4(), title="Redis pool exhausted on payment-api", service_name="payment-api",
                       detected_at=T0 - timedelta(days=3), score=0.9, confirmed_category="dependency_failure",
                       confirmed_claim="Redis connection pool exhausted")
    evidence = Evidence(incident=incident(), similar=[past], novelty="rare")
    best = top(evidence)
    assert best["category"] == "known_recurrence"
    assert "Redis connection pool exhausted" in best["claim"]


def test_hypotheses_are_ranked_best_first_and_deterministic() -> None:
    evidence = Evidence(incident=incident(), changes=[deploy(5)], alerts=[alert("RedisTimeouts", "timeout to redis")])
    namespace = uuid4()
    first = generate_hypotheses(evidence, {}, namespace)
    assert first == generate_hypotheses(evidence, {}, namespace)
    assert [h["rank"] for h in first] == list(range(1, len(first) + 1))
    scores = [h["confidence_score"] for h in first if h["category"] != ABSTAIN]
    assert scores == sorted(scores, reverse=True)


def test_identical_evidence_has_one_fingerprint_whatever_the_incident() -> None:
    a = Evidence(incident=incident(), changes=[deploy(10)])
    b = Evidence(incident=incident(), changes=[deploy(10)])
    c = Evidence(incident=incident(), changes=[deploy(10, version="v2.4.6")])
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)
