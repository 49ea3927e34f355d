"""The built-in hypothesis engine: rules over the evidence, no network, deterministic.

Each root-cause category starts from a prior (its base rate, moved by the project's
confirmed and rejected feedback) and is multiplied by likelihood ratios of the facts that
bear on it (Bayes in odds form). The credible interval comes from a Beta distribution whose
weight grows with the evidence and the feedback, so more confirmations give tighter
intervals. With nothing decisive the engine abstains: its first answer is "not enough
evidence", low and wide, recommending `inconclusive`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID, uuid5

from copilot.investigation.evidence import AlertFact, ChangeFact, Evidence, MetricFact

__all__ = ["CATEGORIES", "Calibration", "credible_interval", "generate_hypotheses"]

# Base rates: roughly how often each cause is behind a production incident.
CATEGORIES: Final[dict[str, float]] = {
    "deploy_regression": 0.25,
    "config_change": 0.10,
    "resource_saturation": 0.12,
    "dependency_failure": 0.12,
    "traffic_surge": 0.08,
    "infrastructure_failure": 0.10,
    "expired_credential": 0.04,
    "backlog": 0.05,
    "known_recurrence": 0.06,
}
# The engine commits when one cause stands out: likely enough on its own, or well ahead of the rest.
DECISIVE: Final = 0.5
STANDS_OUT: Final = (0.3, 2.0)  # at least 30% and twice the runner-up
ABSTAIN = "insufficient_evidence"
_Z90: Final = 1.645

Calibration = Mapping[str, tuple[int, int]]  # category -> (confirmed, rejected) in this project


@dataclass
class _Case:
    category: str
    log_lr: float = 0.0
    weight: float = 0.0  # how much evidence moved it, for the interval's width
    supporting: list[str] = field(default_factory=list)
    contradicting: list[str] = field(default_factory=list)
    subject: str = ""

    def add(self, ratio: float, text: str) -> None:
        self.log_lr += math.log(ratio)
        self.weight += abs(math.log(ratio))
        (self.supporting if ratio > 1 else self.contradicting).append(text)


def _hhmm(moment: Any) -> str:
    return f"{moment:%H:%M} UTC"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0f}%"


def _num(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:.3g}"


def _metric(evidence: Evidence, signal: str) -> MetricFact | None:
    return next((m for m in evidence.metrics if m.signal == signal and m.change_pct is not None), None)


def _metric_text(service: str, m: MetricFact) -> str:
    return (f"{m.signal.replace('_', ' ')} of {service} {_num(m.before)} → {_num(m.during)} "
            f"({_pct(m.change_pct)}) around detection")


def _alerts_matching(evidence: Evidence, pattern: str) -> list[AlertFact]:
    rx = re.compile(pattern, re.IGNORECASE)
    return [a for a in evidence.alerts if rx.search(f"{a.name} {a.description}")]


def _alert_text(a: AlertFact) -> str:
    return f"alert {a.name} ({a.severity}) on {a.service} firing since {_hhmm(a.starts_at)}"


def _recent(changes: list[ChangeFact], kinds: tuple[str, ...], service: str | None) -> list[ChangeFact]:
    return sorted(
        (c for c in changes if c.kind in kinds and -5 <= c.minutes_before <= 120
         and (service is None or c.service_name == service)),
        key=lambda c: c.minutes_before,
    )


def _change_text(c: ChangeFact) -> str:
    what = {"deploy": "Deployment", "config": "Config change", "feature_flag": "Feature flag change",
            "infra": "Infrastructure change"}[c.kind]
    version = f" {c.version}" if c.version else ""
    when = (f"{c.minutes_before:.0f} minutes before detection" if c.minutes_before >= 0
            else f"{-c.minutes_before:.0f} minutes after detection")
    return f"{what}{version} of {c.service_name} at {_hhmm(c.occurred_at)}, {when}: {c.description}"


def _recency(change: ChangeFact, strength: float) -> float:
    """A change weighs most just before detection and fades over about an hour (1 + strength·e^(-t/30 min))."""
    return 1.0 + strength * math.exp(-max(change.minutes_before, 0.0) / 30.0)


# -- the rules, one per category ------------------------------------------------------------------


def _deploy(e: Evidence, case: _Case) -> None:
    service = e.incident.service
    deploys = _recent(e.changes, ("deploy",), service)
    if deploys:
        nearest = deploys[0]
        case.add(_recency(nearest, 11.0), _change_text(nearest))
        case.subject = nearest.version or nearest.description
    elif _recent(e.changes, ("deploy",), None):
        other = _recent(e.changes, ("deploy",), None)[0]
        case.add(1.5, _change_text(other))
    else:
        case.add(0.3, f"No deployment of {service} in the two hours before detection")
    _symptoms(e, case, ("error_ratio", "latency_p99"))


def _config(e: Evidence, case: _Case) -> None:
    service = e.incident.service
    changes = _recent(e.changes, ("config", "feature_flag"), service)
    if changes:
        case.add(_recency(changes[0], 9.0), _change_text(changes[0]))
        case.subject = changes[0].description
    else:
        case.add(0.4, f"No config or feature-flag change of {service} in the two hours before detection")
    _symptoms(e, case, ("error_ratio",))


def _symptoms(e: Evidence, case: _Case, signals: tuple[str, ...]) -> None:
    for signal in signals:
        m = _metric(e, signal)
        if m is not None and m.change_pct is not None and m.change_pct > 50:
            case.add(1.6, _metric_text(e.incident.service, m))


def _saturation(e: Evidence, case: _Case) -> None:
    rose = False
    flat: list[MetricFact] = []
    for signal in ("cpu", "memory", "saturation"):
        m = _metric(e, signal)
        if m is None or m.change_pct is None:
            continue
        if m.change_pct > 40 or (signal == "saturation" and (m.during or 0) > 0.9):
            case.add(5.0 if not rose else 1.8, _metric_text(e.incident.service, m))
            rose = True
        elif abs(m.change_pct) < 10:
            flat.append(m)
    if not rose and flat:  # one resource staying flat says nothing; all of them flat says "not saturation"
        case.add(0.5, "; ".join(_metric_text(e.incident.service, m) for m in flat))
    for alert in _alerts_matching(e, r"cpu|memory|oom|disk|saturat|throttl|pool exhaust|file descriptor")[:2]:
        case.add(6.0, _alert_text(alert))


def _dependency(e: Evidence, case: _Case) -> None:
    latency = _metric(e, "latency_p99")
    errors = _metric(e, "error_ratio")
    traffic = _metric(e, "traffic")
    if latency is not None and latency.change_pct is not None and latency.change_pct > 50:
        case.add(3.0, _metric_text(e.incident.service, latency))
        if traffic is not None and traffic.change_pct is not None and abs(traffic.change_pct) < 30:
            case.add(1.5, _metric_text(e.incident.service, traffic) + " (steady load)")
    if errors is not None and errors.change_pct is not None and errors.change_pct > 50 \
            and not _recent(e.changes, ("deploy", "config", "feature_flag"), e.incident.service):
        case.add(1.5, _metric_text(e.incident.service, errors) + " with no change of the service itself")
    for alert in _alerts_matching(e, r"timeout|upstream|dependency|database|\bdb\b|redis|downstream|"
                                     r"connection refused|unavailable|5\d\d from")[:2]:
        case.add(8.0, _alert_text(alert))


def _traffic(e: Evidence, case: _Case) -> None:
    traffic = _metric(e, "traffic")
    if traffic is not None and traffic.change_pct is not None:
        if traffic.change_pct > 200:
            case.add(15.0, _metric_text(e.incident.service, traffic))
        elif traffic.change_pct > 80:
            case.add(6.0, _metric_text(e.incident.service, traffic))
        elif abs(traffic.change_pct) < 20:
            case.add(0.4, _metric_text(e.incident.service, traffic) + " (no surge)")
    for alert in _alerts_matching(e, r"traffic|request rate|rps|surge|spike in requests|ddos")[:1]:
        case.add(3.0, _alert_text(alert))


def _infrastructure(e: Evidence, case: _Case) -> None:
    restarts = _metric(e, "restarts")
    if restarts is not None and (restarts.during or 0) >= 1:
        case.add(3.5, f"{_num(restarts.during)} restarts of {e.incident.service} around detection")
    infra = _recent(e.changes, ("infra",), None)
    if infra:
        case.add(_recency(infra[0], 11.0), _change_text(infra[0]))
    for alert in _alerts_matching(e, r"node|host|kube|pod|crashloop|instance down|\bdown\b|unreachable|"
                                     r"zone|hardware")[:2]:
        case.add(6.0, _alert_text(alert))


def _credential(e: Evidence, case: _Case) -> None:
    text = f"{e.incident.title} {e.incident.description}"
    # An expiry named outright is close to proof; auth failures alone only hint at it.
    expiry = _alerts_matching(e, r"(cert|x509|tls|ssl|credential|token|secret|password).*expir|expir.*"
                                 r"(cert|x509|tls|ssl|credential|token|secret|password)")
    for alert in expiry[:1]:
        case.add(30.0, _alert_text(alert))
    for alert in [a for a in _alerts_matching(e, r"cert|x509|tls|ssl|credential|unauthori[sz]ed|\b40[13]\b")
                  if a not in expiry][:1]:
        case.add(5.0, _alert_text(alert))
    if re.search(r"(cert|x509|tls|ssl|credential|token|secret).*expir|expir.*(cert|x509|tls|ssl|credential|token)",
                 text, re.IGNORECASE):
        case.add(15.0, f"the incident itself names an expiry: “{e.incident.title}”")
    elif re.search(r"cert|certificate|x509|tls|ssl|credential", text, re.IGNORECASE):
        case.add(3.0, f"the incident itself mentions it: “{e.incident.title}”")


def _backlog(e: Evidence, case: _Case) -> None:
    for alert in _alerts_matching(e, r"queue|backlog|lag|consumer|pending|stuck|dead.?letter")[:2]:
        case.add(12.0, _alert_text(alert))


def _recurrence(e: Evidence, case: _Case) -> None:
    confirmed = [s for s in e.similar if s.confirmed_category and s.score >= 0.5]
    if confirmed:
        best = confirmed[0]
        case.add(4.0 + 16.0 * best.score**2, f"similar incident “{best.title}” on {best.detected_at:%Y-%m-%d} "
                                         f"(similarity {best.score:.2f}) was confirmed as {best.confirmed_category}")
        case.subject = best.confirmed_claim or best.title
    elif e.similar and e.similar[0].score >= 0.5:
        case.add(1.5, f"similar incident “{e.similar[0].title}” on {e.similar[0].detected_at:%Y-%m-%d}, "
                      "cause never confirmed")
    if e.novelty == "new":
        case.add(0.5, "nothing like this incident happened in this project before")


_RULES: Final[dict[str, Callable[[Evidence, _Case], None]]] = {
    "deploy_regression": _deploy,
    "config_change": _config,
    "resource_saturation": _saturation,
    "dependency_failure": _dependency,
    "traffic_surge": _traffic,
    "infrastructure_failure": _infrastructure,
    "expired_credential": _credential,
    "backlog": _backlog,
    "known_recurrence": _recurrence,
}


def _claim(category: str, service: str, subject: str) -> tuple[str, str]:
    claims = {
        "deploy_regression": (f"Recent deployment {subject} of {service} caused a regression".replace("  ", " "),
                              "A change shipped shortly before the symptoms began; roll back or compare "
                              "the new version's behaviour before looking elsewhere."),
        "config_change": (f"A configuration or feature-flag change to {service} caused the incident",
                          f"The change “{subject}” preceded the symptoms; revert it to confirm."),
        "resource_saturation": (f"{service} is running out of a resource (CPU, memory or capacity)",
                                "Resource use rose with the symptoms; scale out or find what consumes it."),
        "dependency_failure": (f"A dependency of {service} is failing or slow",
                               "Latency and errors rose while the service itself did not change; check the "
                               "databases, caches and services it calls."),
        "traffic_surge": (f"A traffic surge is overloading {service}",
                          "Request volume jumped around detection; rate-limit, scale out, or find the source."),
        "infrastructure_failure": (f"Infrastructure under {service} failed (nodes, pods or restarts)",
                                   "Restarts or platform alerts accompany the symptoms; check nodes and "
                                   "orchestration events."),
        "expired_credential": (f"An expired certificate or credential is breaking {service}",
                               "Authentication or TLS failures point at an expiry; renew and roll the secret."),
        "backlog": (f"A growing backlog is delaying {service}",
                    "Queues or consumer lag grew; check consumers' health and throughput."),
        "known_recurrence": (f"Recurrence of a known problem: {subject}",
                             "A confirmed past incident looks the same; start from its fix."),
    }
    return claims[category]


def credible_interval(p: float, n: float) -> tuple[float, float]:
    """A Wilson score interval for probability `p` backed by `n` effective observations."""
    denominator = 1 + _Z90**2 / n
    centre = (p + _Z90**2 / (2 * n)) / denominator
    half = _Z90 * math.sqrt(p * (1 - p) / n + _Z90**2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _prior(category: str, calibration: Calibration) -> tuple[float, int]:
    """The base rate moved by feedback (a Beta prior worth 10 incidents), and the feedback count."""
    confirmed, rejected = calibration.get(category, (0, 0))
    base = CATEGORIES[category]
    return (confirmed + 10 * base) / (confirmed + rejected + 10), confirmed + rejected


def generate_hypotheses(evidence: Evidence, calibration: Calibration, namespace: UUID,
                        limit: int = 5) -> list[dict[str, Any]]:
    """Ranked hypotheses as plain dicts (the shape stored in events and served by the API)."""
    service = evidence.incident.service
    scored = []
    for category, rule in _RULES.items():
        case = _Case(category)
        rule(evidence, case)
        prior, feedback = _prior(category, calibration)
        odds = prior / (1 - prior) * math.exp(case.log_lr)
        p = odds / (1 + odds)
        n = 3.0 + 2.0 * case.weight + feedback
        scored.append((p, n, case))
    scored.sort(key=lambda item: (-item[0], item[2].category))
    hypotheses = []
    top = scored[0][0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    stands_out = top >= STANDS_OUT[0] and top >= STANDS_OUT[1] * runner_up
    if top < DECISIVE and not stands_out:
        missing = [] if evidence.metrics_status == "ok" else [f"metrics were {evidence.metrics_status}"]
        if not evidence.changes:
            missing.append("no change events were recorded")
        if not evidence.alerts:
            missing.append("no alerts were linked or firing")
        hypotheses.append({
            "category": ABSTAIN,
            "claim": "No decisive evidence for any cause yet",
            "description": ("The gathered facts do not point at one cause; mark the incident inconclusive "
                            "or gather more (metrics, change events, alerts) rather than act on a guess."),
            # As sure as the best candidate, no surer, and wide: the honest answer is "we don't know".
            "confidence_score": round(top, 3),
            "confidence_lower": 0.0,
            "confidence_upper": round(min(1.0, top + 0.4), 3),
            "supporting_evidence": [
                f"the strongest candidate, {scored[0][2].category.replace('_', ' ')}, reaches only {top:.0%}",
                *missing,
            ],
            "contradicting_evidence": [],
            "recommendation": "inconclusive",
        })
    for p, n, case in scored:
        if len(hypotheses) >= limit or (not case.supporting and p < 0.2):
            continue
        claim, description = _claim(case.category, service, case.subject)
        lower, upper = credible_interval(p, n)
        hypotheses.append({
            "category": case.category, "claim": claim, "description": description,
            "confidence_score": round(p, 3), "confidence_lower": round(lower, 3), "confidence_upper": round(upper, 3),
            "supporting_evidence": case.supporting, "contradicting_evidence": case.contradicting,
            "recommendation": "investigate" if p >= DECISIVE or (case is scored[0][2] and stands_out)
            else "gather more evidence",
        })
    for rank, hypothesis in enumerate(hypotheses, start=1):
        hypothesis["rank"] = rank
        hypothesis["id"] = str(uuid5(namespace, f"{rank}:{hypothesis['category']}"))
    return hypotheses
