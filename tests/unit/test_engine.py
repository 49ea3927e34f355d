"""The built-in engine given evidence: what it concludes, what it cites, and when it abstains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from copilot.investigation.confidence import Platt, fit, fitted_map
from copilot.investigation.engine import ABSTAIN, generate_hypotheses, score
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


def metric(signal: str, before: float, during: float, onset: float | None = None) -> MetricFact:
    change = round((during - before) / before * 100, 1) if before else 1000.0
    return MetricFact(signal=signal, before=before, during=during, change_pct=change, onset_minutes_before=onset,
                      rise_minutes=None if onset is None else 2.0)


def change(kind: str, minutes_before: float, service: str = "payment-api", description: str = "change") -> ChangeFact:
    return ChangeFact(kind=kind, service_name=service, description=description, version=None,
                      occurred_at=T0 - timedelta(minutes=minutes_before), minutes_before=minutes_before)


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
    evidence = Evidence(incident=incident(), changes=[deploy(20)])
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


def test_a_tls_handshake_failure_points_at_the_credential_without_the_word_expired() -> None:
    evidence = Evidence(incident=incident(title="Partner sync failing"), metrics_status="ok",
                        alerts=[alert("SSLHandshakeFailures", "TLS handshake failure: certificate verify failed")],
                        metrics=[metric("error_ratio", 0.001, 0.9, onset=3)])
    best = top(evidence)
    assert best["category"] == "expired_credential" and best["recommendation"] == "investigate"


def test_an_alert_counts_for_the_failure_it_names_not_the_component_it_mentions() -> None:
    evidence = Evidence(incident=incident(title="Order writes failing"), metrics_status="ok",
                        alerts=[alert("VolumeFull", "orders-db volume 100% used, disk full")],
                        metrics=[metric("error_ratio", 0.002, 0.4, onset=4)])
    assert top(evidence)["category"] == "resource_saturation"


def test_memory_that_grew_before_the_restarts_is_an_out_of_memory_kill_not_a_platform_failure() -> None:
    evidence = Evidence(incident=incident(title="Worker restarts"), metrics_status="ok",
                        metrics=[metric("memory", 6e8, 2.4e9, onset=28), metric("restarts", 0.0, 2.0, onset=10),
                                 metric("traffic", 100, 100)])
    best = top(evidence)
    assert best["category"] == "resource_saturation"
    assert any("before its 2 restarts" in s for s in best["supporting_evidence"])


def test_a_deploy_made_after_the_symptoms_began_counts_against_itself() -> None:
    evidence = Evidence(incident=incident(), metrics_status="ok", changes=[deploy(10)],
                        alerts=[alert("DatabaseQueryTimeouts", "queries to users-db timing out")],
                        metrics=[metric("error_ratio", 0.002, 0.15, onset=25)])
    assert top(evidence)["category"] == "dependency_failure"
    scored, _decisive = score(evidence, {})
    deploy_case = next(s.case for s in scored if s.case.category == "deploy_regression")
    assert any("already rising 15 minutes earlier" in s for s in deploy_case.contradicting)


def test_a_change_of_a_service_the_incident_names_just_before_the_errors_points_at_that_dependency() -> None:
    evidence = Evidence(incident=incident(title="Quote errors: pricing lookups failing"), metrics_status="ok",
                        changes=[change("config", 9, service="pricing", description="pricing rules reload")],
                        metrics=[metric("error_ratio", 0.002, 0.09, onset=5)])
    best = top(evidence)
    assert best["category"] == "dependency_failure"
    assert any("pricing rules reload" in s and "4 minutes later" in s for s in best["supporting_evidence"])


def test_an_error_step_with_only_an_unrelated_services_change_before_it_is_no_finding() -> None:
    # Some service is always being changed somewhere: one nobody links to this incident, with nothing
    # but a step of errors (what every cause looks like), does not make a dependency failure.
    evidence = Evidence(incident=incident(title="Quote errors"), metrics_status="ok",
                        changes=[change("deploy", 11, service="email-renderer", description="new templates")],
                        alerts=[alert("QuoteErrorRate", "payment-api 5xx ratio 3% (threshold 1%)")],
                        metrics=[metric("error_ratio", 0.002, 0.03, onset=9), metric("traffic", 100, 100)])
    first = top(evidence)
    assert first["category"] == ABSTAIN and first["recommendation"] == "inconclusive"
    assert first["confidence_score"] < 0.5


def test_the_confidence_map_is_fitted_strictly_increasing_and_keeps_the_ranking() -> None:
    points = [(0.2, False), (0.3, False), (0.4, True), (0.5, True), (0.6, True), (0.35, True), (0.25, False)] * 5
    fitted = fit(points)
    assert fitted.slope > 1  # these raw scores were under-confident around 0.4
    values = [fitted(p / 20) for p in range(1, 20)]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert Platt(1.0, 0.0)(0.37) == 0.37 or abs(Platt(1.0, 0.0)(0.37) - 0.37) < 1e-12
    stored = fitted_map()
    assert stored(0.1) < stored(0.5) < stored(0.9)


def test_a_staged_rollout_stays_the_suspect_while_it_widens() -> None:
    # Errors jumped 7 minutes before detection, when a progressive rollout begun 38 minutes before reached
    # all the traffic: the rollout, not a dependency, is what an SRE would roll back.
    staged = ChangeFact(kind="deploy", service_name="payment-api", version="v5.0.0",
                        description="new rules engine; progressive rollout 10% -> 50% -> 100%",
                        occurred_at=T0 - timedelta(minutes=38), minutes_before=38)
    evidence = Evidence(incident=incident(), metrics_status="ok", changes=[staged],
                        metrics=[metric("error_ratio", 0.002, 0.052, onset=7), metric("traffic", 100, 100)])
    best = top(evidence)
    assert best["category"] == "deploy_regression" and best["recommendation"] == "investigate"
    plain = Evidence(incident=incident(), metrics_status="ok", changes=[deploy(38)],
                     metrics=[metric("error_ratio", 0.002, 0.052, onset=7), metric("traffic", 100, 100)])
    assert top(plain)["confidence_score"] < best["confidence_score"]


def fired(name: str, description: str, minutes_before: float, severity: str = "critical") -> AlertFact:
    return AlertFact(name=name, severity=severity, service="payment-api", description=description, linked=True,
                     starts_at=T0 - timedelta(minutes=minutes_before))


def test_a_pool_that_filled_after_its_database_slowed_is_the_dependencys_failure() -> None:
    pool = fired("DBConnectionPoolExhausted", "payment-api pool 40/40 in use, 90+ waiters", 18)
    symptoms = [metric("saturation", 0.4, 0.98, onset=21), metric("latency_p99", 0.2, 5.0, onset=22),
                metric("error_ratio", 0.002, 0.05, onset=20), metric("traffic", 100, 100)]
    slowed = Evidence(incident=incident(title="Payments timing out"), metrics_status="ok", metrics=symptoms,
                      alerts=[fired("PostgresHighCPU", "payments-db CPU > 90% for 5m", 24), pool])
    best = top(slowed)
    assert best["category"] == "dependency_failure" and best["recommendation"] == "investigate"
    assert any("pool filled after" in s for s in best["supporting_evidence"])
    # The same full pool with nothing wrong with what it connects to is the service running out of it.
    alone = Evidence(incident=incident(title="Payments timing out"), metrics_status="ok", metrics=symptoms,
                     alerts=[pool])
    assert top(alone)["category"] == "resource_saturation"


def test_a_queue_that_filled_after_the_load_surged_is_the_surges() -> None:
    evidence = Evidence(incident=incident(title="Webhook ingest lagging"), metrics_status="ok",
                        alerts=[fired("WorkQueueNearCapacity", "work queue > 90% full", 20, "warning")],
                        metrics=[metric("traffic", 100, 410, onset=24), metric("cpu", 0.6, 1.8, onset=23),
                                 metric("saturation", 0.4, 0.95, onset=22), metric("latency_p99", 0.2, 2.5, onset=22)])
    assert top(evidence)["category"] == "traffic_surge"


def past(title: str, category: str, days: float, score: float, claim: str = "") -> SimilarFact:
    return SimilarFact(incident_id=uuid4(), title=title, service_name="payment-api", score=score,
                       detected_at=T0 - timedelta(days=days), confirmed_category=category,
                       confirmed_claim=claim or title)


def test_a_known_problem_confirmed_twice_beats_the_symptoms_it_shows_again() -> None:
    # The pool fills again as it did twice in the last weeks, both times confirmed as the same cause:
    # the recurrence, not a fresh saturation, and not the more alike but differently caused incident.
    similar = [past("Payments 500s after provider API change", "dependency_failure", 60, 0.504),
               past("Payments timing out after midnight", "resource_saturation", 7, 0.502,
                    "nightly job locks the rates table; queries block and exhaust the pool"),
               past("Midnight payments latency spike", "resource_saturation", 21, 0.477)]
    evidence = Evidence(incident=incident(title="Payments slow"), metrics_status="ok", similar=similar,
                        novelty="frequent",
                        alerts=[fired("DBPoolSaturated", "payment-api pool 100% in use", 3, "warning")],
                        metrics=[metric("saturation", 0.4, 1.0, onset=4), metric("latency_p99", 0.2, 4.2, onset=4),
                                 metric("traffic", 100, 100)])
    best = top(evidence)
    assert best["category"] == "known_recurrence"
    assert "exhaust the pool" in best["claim"]
    assert any("points at resource saturation again" in s for s in best["supporting_evidence"])


def test_timeouts_to_a_database_that_began_after_the_network_failed_are_the_platforms() -> None:
    evidence = Evidence(incident=incident(title="Inventory sync timing out"), metrics_status="ok",
                        alerts=[fired("CloudHealthEvent", "increased packet loss for instances in one zone", 14,
                                      "warning"),
                                fired("PostgresClientTimeouts", "payment-api -> inventory-db timeouts", 10, "warning")],
                        metrics=[metric("latency_p99", 0.2, 3.1, onset=11),
                                 metric("error_ratio", 0.002, 0.07, onset=11), metric("traffic", 100, 100)])
    best = top(evidence)
    assert best["category"] == "infrastructure_failure"
    dependency = next(h for h in generate_hypotheses(evidence, {}, uuid4()) if h["category"] == "dependency_failure")
    assert any("platform under it was failing first" in s for s in dependency["contradicting_evidence"])


def test_words_that_clear_something_do_not_count_for_it() -> None:
    said = IncidentFact(id=uuid4(), title="Search slow", service="payment-api", severity="high", detected_at=T0,
                        description="p99 way up since lunch. Traffic looks like a normal weekday. "
                                    "search-db looks healthy on its dashboard.")
    evidence = Evidence(incident=said, metrics_status="ok", changes=[deploy(12)],
                        metrics=[metric("latency_p99", 0.2, 1.8, onset=10), metric("traffic", 100, 101)])
    scored, decisive = score(evidence, {})
    cases = {s.case.category: s.case for s in scored}
    assert not any("says" in s for s in cases["traffic_surge"].supporting)
    assert not any("mentions" in s for s in cases["dependency_failure"].supporting)
    assert decisive and scored[0].case.category == "deploy_regression"
    # "no healthy upstream" says something is unhealthy: it still counts.
    unhealthy = IncidentFact(id=uuid4(), title="Search errors", service="payment-api", severity="high",
                             detected_at=T0, description="A third of requests fail with 503 no healthy upstream.")
    scored, _decisive = score(Evidence(incident=unhealthy), {})
    dependency = next(s.case for s in scored if s.case.category == "dependency_failure")
    assert any("says" in s for s in dependency.supporting)


def test_an_informational_alert_counts_for_less_than_one_that_pages() -> None:
    def dependency_confidence(severity: str) -> float:
        evidence = Evidence(incident=incident(title="Checkout errors"), metrics_status="ok",
                            alerts=[fired("ProviderLatencyElevated", "payments provider timeouts above threshold", 20,
                                          severity)],
                            metrics=[metric("error_ratio", 0.002, 0.04, onset=10), metric("traffic", 100, 100)])
        return next(h["confidence_score"] for h in generate_hypotheses(evidence, {}, uuid4())
                    if h["category"] == "dependency_failure")
    assert dependency_confidence("info") < dependency_confidence("critical")


def test_a_word_any_service_could_be_called_does_not_name_another_service() -> None:
    said = IncidentFact(id=uuid4(), title="Quote errors", service="payment-api", severity="high", detected_at=T0,
                        description="Callers get 503 Service Unavailable now and then.")
    evidence = Evidence(incident=said, metrics_status="ok",
                        changes=[change("deploy", 11, service="ads-service", description="new slots")],
                        metrics=[metric("error_ratio", 0.002, 0.03, onset=9), metric("traffic", 100, 100)])
    assert top(evidence)["category"] == ABSTAIN
