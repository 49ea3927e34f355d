"""The built-in hypothesis engine: rules over the evidence, no network, deterministic.

Each root-cause category starts from a prior (its base rate, moved by the project's confirmed
and rejected feedback) and is multiplied by likelihood ratios of the facts that bear on it;
the causes exclude each other, so a cause's raw posterior is its share of all of them (Bayes).
The facts are read the way an SRE reads them: what an alert says failed (its failure mode, not
merely the component it names), whether a change came before the symptoms began and how long
before, whether a resource grew on its own or in step with the load, whether memory grew before
the restarts. A fact that another one explains as well counts for less.

Facts any cause would produce (a step of errors or latency, words of the incident that only name a
component, a change of some other service nobody links to the incident) are generic: together they
can at most double a cause's odds. The engine commits to its best cause when the evidence specific
to it is decisive: it multiplied the cause's prior odds at least threefold. Otherwise its first
answer is "not enough evidence", low and wide, recommending `inconclusive`.
The confidence shown is the raw posterior passed through a map fitted on the evaluation
scenarios (`confidence.py`), so that a stated 80% is right about 80% of the time. The credible
interval is a Wilson interval whose weight grows with the evidence and the feedback, so more
confirmations give tighter intervals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final
from uuid import UUID, uuid5

from copilot.investigation.confidence import ConfidenceMap, fitted_map
from copilot.investigation.evidence import AlertFact, ChangeFact, Evidence, MetricFact, SimilarFact

__all__ = ["ABSTAIN", "CATEGORIES", "Calibration", "credible_interval", "generate_hypotheses", "score"]

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
_OTHER: Final = 1.0 - sum(CATEGORIES.values())  # a cause none of the rules knows
# The engine commits to its best cause when the evidence specific to it is decisive: it multiplied the
# cause's prior odds at least threefold. Otherwise its first answer is "not enough evidence".
DECISIVE_EVIDENCE: Final = 3.0
# Facts any cause would produce (a step of errors or latency, words that only name a component, a change
# of some other service that merely came first) can at most double a cause's odds, and never decide.
_GENERIC_CAP: Final = math.log(2.0)
ABSTAIN = "insufficient_evidence"
_Z90: Final = 1.645

Calibration = Mapping[str, tuple[int, int]]  # category -> (confirmed, rejected) in this project


@dataclass
class _Case:
    category: str
    log_lr: float = 0.0
    # The part of log_lr owed to facts any cause would produce: a step of errors or latency, an alert
    # or words that only name a component, a change of some other service that merely came first.
    generic: float = 0.0
    weight: float = 0.0  # how much evidence moved it, for the interval's width
    supporting: list[str] = field(default_factory=list)
    contradicting: list[str] = field(default_factory=list)
    subject: str = ""

    def add(self, ratio: float, text: str, generic: bool = False) -> None:
        if ratio == 1.0:
            return
        self.log_lr += math.log(ratio)
        self.weight += abs(math.log(ratio))
        if generic:
            self.generic += math.log(ratio)
        (self.supporting if ratio > 1 else self.contradicting).append(text)

    @property
    def specific(self) -> float:
        """The log-LR owed to facts that point at this cause rather than at any."""
        return self.log_lr - self.generic

    def mark(self) -> tuple[float, float]:
        return self.log_lr, self.generic

    def explained(self, since: tuple[float, float], text: str) -> None:
        """Evidence gained since `since` (a `mark()`) that another fact explains as well counts half."""
        gained = self.log_lr - since[0]
        if gained > 0:
            generic_share = min(max((self.generic - since[1]) / gained, 0.0), 1.0)
            self.add(math.exp(-gained / 2), text)
            self.generic -= generic_share * gained / 2


# -- how facts are cited --------------------------------------------------------------------------


def _hhmm(moment: Any) -> str:
    return f"{moment:%H:%M} UTC"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.0f}%"


def _num(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:.3g}"


def _metric_text(e: Evidence, m: MetricFact) -> str:
    text = (f"{m.signal.replace('_', ' ')} of {e.incident.service} {_num(m.before)} → {_num(m.during)} "
            f"({_pct(m.change_pct)}) around detection")
    if m.onset_minutes_before is not None:
        text += f", rising from {_minutes(m.onset_minutes_before)}"
        if m.rise_minutes is not None and m.rise_minutes >= _GRADUAL:
            text += f" over {m.rise_minutes:.0f} minutes"
    return text


def _minutes(before: float) -> str:
    return (f"{before:.0f} minutes before detection" if before >= 0
            else f"{-before:.0f} minutes after detection")


def _window(e: Evidence) -> str:
    """The span searched for changes: the two hours before detection."""
    detected = e.incident.detected_at
    return f"from {_hhmm(detected - timedelta(hours=2))} to detection at {_hhmm(detected)}"


def _alert_text(a: AlertFact) -> str:
    said = f": {a.description}" if a.description else ""
    return f"alert {a.name} ({a.severity}) on {a.service} firing since {_hhmm(a.starts_at)}{said}"


def _change_text(c: ChangeFact) -> str:
    what = {"deploy": "Deployment", "config": "Config change", "feature_flag": "Feature flag change",
            "infra": "Infrastructure change"}.get(c.kind, "Change")
    version = f" {c.version}" if c.version else ""
    return f"{what}{version} of {c.service_name} at {_hhmm(c.occurred_at)}, {_minutes(c.minutes_before)}: " \
           f"{c.description}"


# -- what the metrics say -------------------------------------------------------------------------

_GRADUAL: Final = 12.0  # minutes: a rise slower than this is a climb (leak, filling disk), not a step


def _metric(evidence: Evidence, signal: str) -> MetricFact | None:
    return next((m for m in evidence.metrics if m.signal == signal and m.change_pct is not None), None)


def _fold(m: MetricFact | None) -> float:
    """How many times its baseline the signal reached (1.0 when unknown)."""
    if m is None or m.before is None or m.during is None or m.during <= 0:
        return 1.0
    return m.during / m.before if m.before > 0 else 1000.0


def _errors_up(e: Evidence) -> MetricFact | None:
    """The error ratio, when at least 0.5% more requests failed and at least twice as many as before."""
    m = _metric(e, "error_ratio")
    if m is None or m.before is None or m.during is None:
        return None
    return m if m.during - m.before >= 0.005 and _fold(m) >= 2 else None


def _latency_up(e: Evidence) -> MetricFact | None:
    m = _metric(e, "latency_p99")
    return m if _fold(m) >= 1.5 else None


def _latency_weight(m: MetricFact) -> float:
    """A slower p99 points at a cause the more it slowed: twice as slow is within a histogram bucket or
    two, ten times is unmistakable (0..1 on a log scale)."""
    return min(max(math.log2(_fold(m)) / 3, 0.0), 1.0)


def _restarts(e: Evidence) -> MetricFact | None:
    m = _metric(e, "restarts")
    return m if m is not None and (m.during or 0) >= 1 and (m.during or 0) > (m.before or 0) else None


def _rose(e: Evidence, signal: str, pct: float = 40.0) -> MetricFact | None:
    m = _metric(e, signal)
    return m if m is not None and m.change_pct is not None and m.change_pct > pct else None


def _onset(e: Evidence) -> tuple[float, MetricFact] | None:
    """When the trouble began: the earliest rise of errors, latency, restarts or resource use (a leak
    starts long before the restarts it ends in)."""
    risen = (_errors_up(e), _latency_up(e), _restarts(e), _rose(e, "cpu"), _rose(e, "memory"),
             _rose(e, "saturation", 20.0))
    onsets = [(m.onset_minutes_before, m) for m in risen if m is not None and m.onset_minutes_before is not None]
    return max(onsets, key=lambda o: o[0]) if onsets else None


def _surge(e: Evidence) -> MetricFact | None:
    m = _metric(e, "traffic")
    return m if _fold(m) >= 1.8 else None


# -- what an alert (or the incident's own words) says failed --------------------------------------

# Per category: wording that names a failure mode, and wording that only names a component or area.
# An alert counts strongly for the failure modes it names; a component it mentions counts only when
# no failure mode is named ("VolumeFull: orders-db disk full" is a full disk, not a database failure).
_CREDENTIAL = r"(cert|x509|tls|ssl|credential|token|secret|password|key|licen[cs]e)"
_EXPIRY = re.compile(rf"{_CREDENTIAL}.{{0,40}}(expir|outdated)|expir\w*.{{0,40}}{_CREDENTIAL}", re.IGNORECASE)
_WORDING: Final[dict[str, tuple[str, str]]] = {
    "expired_credential": (
        _EXPIRY.pattern
        + r"|x509|handshake|certificate|\b(ssl|tls)\b.{0,30}(fail|error)|unauthori[sz]ed|unauthenticated"
        r"|\b40[13]\b|forbidden|access denied|permission denied|invalid.{0,12}(token|grant|credential|key"
        r"|signature|client)|auth\w*.{0,12}fail|login fail|(signature|token).{0,20}(invalid|mismatch|fail|error"
        r"|reject)|revoked|unknown (ca|authority)|pkix|self.signed|key.{0,30}(does not exist|not found|unknown)",
        r"\bcert|\btls\b|\bssl\b|credential|\btoken|secret|password|api.?key|access.?key|oauth|jwt|\bauth"),
    "resource_saturation": (
        r"\bfull\b|no space|disk space|space low|inode|out of memory|\boom|memory (pressure|limit)"
        r"|exit\w* (with )?code 137|cpu.{0,12}throttl|throttl\w* cpu|exhaust|saturat|too many (open files|connections)"
        r"|file descriptor|\b(9\d|100) ?% (used|full|util)|utili[sz]ation (at )?(9\d|100)|io ?wait|heap"
        r"|garbage collect|\bgc\b|swap|cpu (limit|pressure|high|usage)|high cpu|memory (high|usage)",
        r"\bcpu|memory|\bdisk|volume|capacity|\bpool\b|threads?\b|quota"),
    "dependency_failure": (
        r"time ?out|timed out|refused|unavailable|upstream|downstream|dependenc|\b5\d\d\b.{0,20}from"
        r"|bad gateway|gateway time|circuit|connection (error|fail|reset)|cannot connect|could not connect"
        r"|\b429\b|rate.?limit|too many requests|failover|fail(ed)? over|offline|not enough replicas",
        r"database|\bdb\b|postgres|mysql|mongo|redis|memcache|\bcache|elasticsearch|cassandra|dynamo"
        r"|\bs3\b|third.?party|provider|partner|external|broker"),
    "traffic_surge": (
        r"traffic|request rate|\brps\b|\bqps\b|surge|spike in (requests|traffic)|ddos|\bbots?\b|crawler|scraper"
        r"|flash sale|campaign|retry storm|thundering herd",
        r"\bload\b|overload|requests per|concurrent (users|requests)"),
    "infrastructure_failure": (
        r"\bnode|not ?ready|pods? (were |being )?evict|evict\w* pods?|instance.{0,12}down|host.{0,12}down"
        r"|unreachable|\bzone\b|availability zone|region|hardware|kernel|hypervisor|preempt"
        r"|spot (instance|interruption)|packet loss|network partition"
        r"|dns\b|load balancer|\b[aen]lb\b|unhealthy (hosts?|targets?|nodes?|instances?)|\bsteal\b|noisy neighbo"
        r"|\b[a-z]{2}-(north|south|east|west|central)[a-z]*-\d[a-z]?\b|\bsmart\b|media error|i/?o error"
        r"|bad (sector|block)|disk (failure|fault)|\braid\b|\becc\b|\bnic\b|\bmtu\b",
        r"\bkube|\bk8s|\bpods?\b|\bhosts?\b|instance|cluster|network|\bvm\b"),
    "backlog": (
        r"backlog|\blag\b|lagging|queue.{0,20}(depth|size|length|grow|high|full)|messages? (ready|visible|waiting"
        r"|pending|behind)|(pending|queued|unprocessed|waiting) (jobs|messages|tasks|events)|dead.?letter|\bdlq\b"
        r"|unacked|piling up|not (being )?processed|oldest message|(no|0|zero) (active )?(consumers|members)"
        r"|(consumers?|group) (inactive|down|stuck|stopped)|stuck (jobs|tasks|consumer)|processing delay|stall"
        r"|not (advancing|progressing)|\bbehind\b",
        r"\bqueue|consumer|kafka|rabbit|\bsqs\b|pubsub|\bjobs?\b|worker"),
}
_COMPILED: Final = {category: (re.compile(strong, re.IGNORECASE), re.compile(weak, re.IGNORECASE))
                    for category, (strong, weak) in _WORDING.items()}
_FUTURE_EXPIRY = re.compile(r"expir\w* (in|within|on|soon)\b|will expire|expiring soon|days? (left|until)",
                            re.IGNORECASE)
_TLS_FAILURE = re.compile(r"x509|handshake|certificate|\b(ssl|tls)\b|unknown (ca|authority)|pkix|self.signed",
                          re.IGNORECASE)
_CREDENTIAL_CHANGE = re.compile(r"rotat|renew|\bcert|secret|credential|password|api.?key|\btoken|\bkeys?\b",
                                re.IGNORECASE)


_UNAVAILABLE = re.compile(r"(instance|host).{0,12}down|unreachable", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _names(text: str) -> tuple[set[str], set[str]]:
    """The categories whose failure mode `text` names, and those it only mentions a component of.

    Alert names are split into words first: `KubeNodeNotReady` reads "Kube Node Not Ready".
    """
    text = _CAMEL.sub(" ", text).replace("_", " ")
    strong = {c for c, (rx, _) in _COMPILED.items() if rx.search(text)}
    # A database, cache or broker that is down or unreachable is a dependency failing, not the platform,
    # unless the platform's own failure (a node, a zone, hardware) is named as well.
    if ("infrastructure_failure" in strong and _COMPILED["dependency_failure"][1].search(text)
            and not _COMPILED["infrastructure_failure"][0].search(_UNAVAILABLE.sub(" ", text))):
        strong = strong - {"infrastructure_failure"} | {"dependency_failure"}
    weak = {c for c, (_, rx) in _COMPILED.items() if rx.search(text)} - strong
    return strong, weak


def _alerts_naming(e: Evidence, category: str) -> tuple[list[AlertFact], list[AlertFact]]:
    """Alerts that name a failure mode of `category`, and those that only name one of its components."""
    strong, weak = [], []
    for alert in e.alerts:
        modes, components = _names(f"{alert.name} {alert.description}")
        if category == "dependency_failure" and modes - {category}:
            continue  # "upstream", "timeout": where it failed; the other failure named says how
        if category in modes:
            strong.append(alert)
        elif category in components and not modes:
            weak.append(alert)
    return strong, weak


def _alert_rule(e: Evidence, case: _Case, strong_ratio: float, weak_ratio: float) -> None:
    """The first two alerts naming this cause: the first counts fully, the second half as much (in logs),
    and one that had been firing for over an hour before detection (background, not news) half as much."""
    strong, weak = _alerts_naming(e, case.category)
    for i, alert in enumerate(strong[:2]):
        _alert_counts(e, case, alert, strong_ratio if i == 0 else math.sqrt(strong_ratio))
    for alert in weak[:1]:
        _alert_counts(e, case, alert, weak_ratio)


_STALE: Final = 60.0  # minutes: an alert firing this long before detection was there before the trouble
_FYI: Final = frozenset({"info", "informational", "none"})  # severities that page nobody


def _alert_counts(e: Evidence, case: _Case, alert: AlertFact, ratio: float) -> None:
    firing = (e.incident.detected_at - alert.starts_at).total_seconds() / 60
    if firing > _STALE:
        case.add(math.sqrt(ratio), _alert_text(alert) + f", {firing:.0f} minutes before detection")
    elif alert.severity.lower() in _FYI:  # below the bar anyone set for acting on it
        case.add(math.sqrt(ratio), _alert_text(alert) + ", informational only")
    else:
        case.add(ratio, _alert_text(alert))


# A sentence that clears something ("orders-db looks fine", "traffic is normal", "no errors on their side")
# rules it out rather than in: the incident's words are read without such sentences.
_CLEARED: Final = re.compile(r"(?<!no )(?<!not )\b(normal|fine|healthy|unchanged|flat|stable|as usual|in line with"
                             r"|no errors?|looks? (ok|okay|good))\b", re.IGNORECASE)
_SENTENCE: Final = re.compile(r"(?<=[.;!?])\s+|\n+")


def _said(e: Evidence) -> str:
    """The incident's title and description, less the sentences that say something is fine."""
    sentences = _SENTENCE.split(f"{e.incident.title}. {e.incident.description}")
    return " ".join(s for s in sentences if not _CLEARED.search(s)).strip()


def _text_rule(e: Evidence, case: _Case) -> None:
    """The incident's own words: what a person saw, a hint rather than a measurement."""
    text = _said(e)
    modes, components = _names(text)
    if case.category in modes:
        case.add(2.5, f"the incident detected at {_hhmm(e.incident.detected_at)} says “{_clip(text)}”")
    elif case.category in components and not modes:
        case.add(1.5, f"the incident detected at {_hhmm(e.incident.detected_at)} mentions “{_clip(text)}”",
                 generic=True)


def _clip(text: str) -> str:
    return text if len(text) <= 120 else text[:117] + "…"


# -- what the changes say -------------------------------------------------------------------------


def _in_window(changes: Iterable[ChangeFact], kinds: tuple[str, ...], own: str | None,
               other: bool = False) -> list[ChangeFact]:
    """Changes of these kinds within two hours before detection (or just after), nearest first; of the
    service `own`, of any other service (`other`), or of any service at all (`own` None)."""
    return sorted((c for c in changes if c.kind in kinds and -5 <= c.minutes_before <= 120
                   and (own is None or (c.service_name != own if other else c.service_name == own))),
                  key=lambda c: c.minutes_before)


def _lead(e: Evidence, change: ChangeFact) -> tuple[float, str]:
    """How many minutes the change came before the symptoms began (before detection when no onset is
    known), and the fact that says so."""
    onset = _onset(e)
    if onset is None:  # the symptoms began some minutes before anyone noticed them
        return max(change.minutes_before - _DETECTION_LAG, 0.0), ""
    minutes, m = onset
    lead = change.minutes_before - minutes
    signal = m.signal.replace("_", " ")
    if lead >= 0:
        return lead, f"; {signal} began rising {lead:.0f} minutes later, {_minutes(minutes)}"
    return lead, f"; but {signal} was already rising {-lead:.0f} minutes earlier, {_minutes(minutes)}"


_CHANGE_FADES: Final = 20.0  # minutes: how fast a change stops explaining symptoms that began after it
# A staged rollout (canary, progressive, by percentages) reaches more of the traffic long after it starts,
# and what it breaks grows as it widens: it stays a suspect three times as long.
_STAGED = re.compile(r"roll.?out|rolling|canary|progressive|staged|phased|gradual", re.IGNORECASE)
_DETECTION_LAG: Final = 10.0  # minutes from the start of symptoms to their detection, when not measured


def _fades(change: ChangeFact) -> float:
    return _CHANGE_FADES * (3.0 if _STAGED.search(change.description) else 1.0)


def _change_rule(e: Evidence, case: _Case, changes: list[ChangeFact], strength: float,
                 rivals: list[ChangeFact] | None = None, floor: float = 1.0,
                 generic: bool = False) -> ChangeFact | None:
    """The change that best explains the symptoms: it counts floor + (1 + strength - floor)·e^(-lead/20 min)
    (60 min for a staged rollout) when it came `lead` minutes before they began, and against its cause when
    it came after they began.
    A change long before counts as `floor` (for a change of the service itself, as much as no change:
    the service ran well after it). A rival change of the same service that came later, still before the
    symptoms, is the nearer suspect."""
    timed = [(change, *_lead(e, change)) for change in changes]
    before = [t for t in timed if t[1] >= -2]
    if before:
        change, lead, when = min(before, key=lambda t: t[1])
        ratio = floor + (1.0 + strength - floor) * math.exp(-max(lead, 0.0) / _fades(change))
        case.add(ratio, _change_text(change) + when, generic)
        nearer = [r for r in rivals or [] if _lead(e, r)[0] >= -2 and r.minutes_before < change.minutes_before]
        if nearer:
            case.add(0.5, "a later change is the nearer suspect: " + _change_text(nearer[0]))
        return change
    if timed:
        change, _lead_minutes, when = timed[0]
        case.add(0.3, _change_text(change) + when)
    return None


# -- the rules, one per category ------------------------------------------------------------------


def _symptoms(e: Evidence, case: _Case) -> None:
    """Errors, latency or restarts that rose after the change are what a bad change looks like."""
    restarts = _restarts(e)
    for m in (_errors_up(e), _latency_up(e), restarts):
        if m is not None:
            ratio = 1.0 + 0.5 * _latency_weight(m) if m.signal == "latency_p99" else 1.5
            case.add(ratio, _metric_text(e, m), generic=True)


_NO_DEPLOY: Final = 0.3  # how much no deployment of the service speaks against a deploy regression
_NO_CONFIG: Final = 0.4


def _own_change(e: Evidence, case: _Case, kinds: tuple[str, ...], rival_kinds: tuple[str, ...],
                strength: float, floor: float) -> ChangeFact | None:
    """A change of the service itself before the symptoms, unless an independent failure (a node, a
    zone, hardware, an expired certificate: nothing a change of the service brings about) explains
    them: then the coincidence counts for less."""
    service = e.incident.service
    before = case.mark()
    chosen = _change_rule(e, case, _in_window(e.changes, kinds, service), strength,
                          _in_window(e.changes, rival_kinds, service), floor)
    if chosen is not None and case.log_lr > before[0] and _symptomless(e):  # nothing for it to have caused
        steady = [m for m in e.metrics if m.signal in ("error_ratio", "latency_p99", "restarts")]
        case.add(math.exp(before[0] - case.log_lr), "but nothing rose for it to have caused and no alert fired: "
                 + "; ".join(_metric_text(e, m) for m in steady))
        return chosen
    independent = [a for a in e.alerts if _independent_failure(a)]
    if chosen is not None and independent:
        case.explained(before, "an independent failure explains the symptoms as well: " + _alert_text(independent[0]))
    return chosen


def _symptomless(e: Evidence) -> bool:
    """The metrics were read and nothing rose, and no alert fired."""
    return (e.metrics_status == "ok" and bool(e.metrics) and not e.alerts and _onset(e) is None
            and all(m is None for m in (_errors_up(e), _latency_up(e), _restarts(e), _rose(e, "cpu"),
                                        _rose(e, "memory"), _at_capacity(e))))


def _independent_failure(alert: AlertFact) -> bool:
    text = f"{alert.name} {alert.description}"
    modes, _components = _names(text)
    return "infrastructure_failure" in modes or (_EXPIRY.search(_CAMEL.sub(" ", text)) is not None
                                                 and not _FUTURE_EXPIRY.search(text))


def _deploy(e: Evidence, case: _Case) -> None:
    service = e.incident.service
    if _in_window(e.changes, ("deploy",), service):
        chosen = _own_change(e, case, ("deploy",), ("config", "feature_flag"), 11.0, _NO_DEPLOY)
        if chosen is not None:
            case.subject = chosen.version or chosen.description
            _symptoms(e, case)
    elif _in_window(e.changes, ("deploy",), service, other=True):
        case.add(0.5, f"No deployment of {service} {_window(e)}, only of other services")
    else:
        case.add(_NO_DEPLOY, f"No deployment of {service} {_window(e)}")


def _config(e: Evidence, case: _Case) -> None:
    service = e.incident.service
    if _in_window(e.changes, ("config", "feature_flag"), service):
        chosen = _own_change(e, case, ("config", "feature_flag"), ("deploy",), 9.0, _NO_CONFIG)
        if chosen is not None:
            case.subject = chosen.description
            if _CREDENTIAL_CHANGE.search(chosen.description) and _alerts_naming(e, "expired_credential")[0]:
                case.add(0.5, f"the change replaced a credential, and authentication is what fails: "
                              f"{_change_text(chosen)}")
            _symptoms(e, case)
    else:
        case.add(_NO_CONFIG, f"No config or feature-flag change of {service} {_window(e)}")


def _saturation(e: Evidence, case: _Case) -> None:
    service = e.incident.service
    surge = _surge(e)
    start = case.mark()
    rose = False
    flat: list[MetricFact] = []
    for signal in ("cpu", "memory"):
        m = _rose(e, signal)
        if m is None:
            steady = _metric(e, signal)
            if steady is not None and abs(steady.change_pct or 0) < 10:
                flat.append(steady)
            continue
        if surge is not None and _fold(m) <= 1.5 * _fold(surge):  # the load grew and the resource with it
            case.add(1.3, _metric_text(e, m) + f", in step with traffic ({_pct(surge.change_pct)})")
            continue
        # Graded by how far it grew (x1.4: 2, x2: 4.5, x4 and more: 8); a slow climb is a leak or a
        # growing load, more telling than a step.
        ratio = 1.0 + 7.0 * min(math.log2(_fold(m)) / 2, 1.0)
        gradual = m.rise_minutes is not None and m.rise_minutes >= _GRADUAL
        case.add((ratio if not rose else math.sqrt(ratio)) * (1.5 if gradual else 1.0),
                 _metric_text(e, m) + (" with no surge of traffic" if surge is None else ""))
        rose = True
    saturation = _metric(e, "saturation")
    if saturation is not None and _at_capacity(e) is not None:
        case.add(8.0, _metric_text(e, saturation) + f": at {saturation.during or 0:.0%} of capacity")
        rose = True
    elif saturation is not None and _rose(e, "saturation") is not None:
        case.add(2.0, _metric_text(e, saturation))
        rose = True
    elif saturation is not None and abs(saturation.change_pct or 0) < 10:
        flat.append(saturation)
    oom = _oom_restarts(e)
    if oom is not None:
        memory, restarts = oom
        case.add(4.0, f"memory of {service} grew from {_minutes(memory.onset_minutes_before or 0)}, before its "
                      f"{_num(restarts.during)} restarts from {_minutes(restarts.onset_minutes_before or 0)} "
                      "(out-of-memory kills)")
    # One resource staying flat says nothing; all of them flat says "not this", unless an alert names a
    # resource these signals do not measure (disk, a pool, the garbage collector).
    if not rose and len(flat) >= 2 and not _alerts_naming(e, case.category)[0]:
        case.add(0.5, "; ".join(_metric_text(e, m) for m in flat))
    _alert_rule(e, case, 8.0, 2.5)
    _text_rule(e, case)
    # A resource that began to run out just after the service itself changed: the change is the cause.
    onset = _onset(e)
    if onset is not None:
        for change in _in_window(e.changes, ("deploy", "config", "feature_flag"), service):
            if -2 <= change.minutes_before - onset[0] <= 30:
                case.explained((0.0, 0.0), _change_text(change) + _lead(e, change)[1])
                return
    # A resource that filled after the load surged, or a pool that filled after what it connects to began
    # to fail or slow down, is the symptom of that: requests held longer, or more of them, fill any pool.
    driver = _saturation_driver(e)
    if driver is not None:
        case.explained(start, driver)


def _filled_at(e: Evidence) -> float:
    """When a resource of the service began to fill (minutes before detection; detection when not measured)."""
    onsets = [m.onset_minutes_before for m in (_rose(e, "cpu"), _rose(e, "memory"), _rose(e, "saturation", 20.0))
              if m is not None and m.onset_minutes_before is not None]
    return max(onsets, default=0.0)


def _saturation_driver(e: Evidence) -> str | None:
    """What filled the service's resources, when it began first: a surge of the load, or a dependency failing."""
    filled = _filled_at(e)
    surge = _surge(e)
    if surge is not None and (surge.onset_minutes_before or 0.0) >= filled - 2:
        return "the load surged first and fills whatever it uses: " + _metric_text(e, surge)
    trouble = _pool_behind(e)
    if trouble is not None:
        return "what the service's pool connects to was failing first: " + _alert_text(trouble)
    return None


_POOL: Final = re.compile(r"\bpool|connections?\b.{0,20}(exhaust|limit|max)|max.?connections", re.IGNORECASE)


def _pool_behind(e: Evidence) -> AlertFact | None:
    """An alert that a database, cache, broker or provider the service uses was down, strained or timing out,
    from before the service's own resources (its connection pool) began to fill."""
    if _at_capacity(e) is None and _rose(e, "saturation", 20.0) is None and not any(
            _POOL.search(f"{a.name} {a.description}") for a in e.alerts):
        return None
    filled = _filled_at(e)
    for alert in e.alerts:
        text = _CAMEL.sub(" ", f"{alert.name} {alert.description}")
        modes, _components = _names(text)
        if (_COMPILED["dependency_failure"][1].search(text) or "dependency_failure" in modes) \
                and modes & {"dependency_failure", "infrastructure_failure", "resource_saturation"} \
                and not _POOL.search(text) \
                and (e.incident.detected_at - alert.starts_at).total_seconds() / 60 >= filled - 2:
            return alert
    return None


def _oom_restarts(e: Evidence) -> tuple[MetricFact, MetricFact] | None:
    """Memory that grew before the restarts (out-of-memory kills, not a platform failure), and the restarts."""
    memory, restarts = _rose(e, "memory"), _restarts(e)
    if (memory is None or restarts is None or memory.onset_minutes_before is None
            or restarts.onset_minutes_before is None or memory.onset_minutes_before <= restarts.onset_minutes_before):
        return None
    return memory, restarts


def _dependency(e: Evidence, case: _Case) -> None:
    service = e.incident.service
    latency, errors = _latency_up(e), _errors_up(e)
    # Errors or latency with nothing else to explain them point at what the service calls, by elimination,
    # and the more so the larger they are. Other explanations: another failure named by an alert, a surge
    # of the load, a resource of the service itself running out, a change of the service itself.
    others_named = (_causes_named(e) | _names(_said(e))[0]) - {case.category}
    own_resource = any(_rose(e, signal) is not None for signal in ("cpu", "memory")) or _at_capacity(e) is not None
    own_change = _recent_own_change(e)
    explained = bool(others_named) or _surge(e) is not None or own_resource or own_change is not None
    if latency is not None or errors is not None:
        size = max(_latency_weight(latency) if latency else 0.0, _error_weight(errors) if errors else 0.0)
        ratio = 1.0 + (0.5 if explained else 4.0) * size
        facts = "; ".join(_metric_text(e, m) for m in (latency, errors) if m is not None)
        case.add(ratio, facts + ("" if explained else " with no change, surge, resource or other failure "
                                                      "to explain it"), generic=True)
    # A change of another service just before the symptoms: a suspect when the alerts or the incident name
    # that service (something this one talks to), otherwise a mere coincidence in time, as in any busy
    # system where some service is always being changed.
    others = _in_window(e.changes, ("deploy", "config", "feature_flag"), service, other=True)
    if others and (errors is not None or latency is not None):
        named = [c for c in others if _named(e, c.service_name)]
        if named:
            _change_rule(e, case, named, 5.0)
        else:
            _change_rule(e, case, others, 1.0, generic=True)
    # An alert about a database, cache or service it calls; if the service itself changed just before,
    # the change is the likelier cause of the trouble with what it calls (a new query, a new route).
    before = case.mark()
    _alert_rule(e, case, 8.0, 8.0)
    # Its pool filled after what it connects to began to fail: the pool is the symptom, the dependency the
    # cause (a slower answer holds each connection longer), and the full pool is what it predicts.
    trouble = _pool_behind(e)
    if trouble is not None and _surge(e) is None:
        if trouble not in _alerts_naming(e, case.category)[0]:
            _alert_counts(e, case, trouble, 8.0)
        case.add(4.0, "the service's connection pool filled after that: what a slow or failing dependency does")
    if own_change is not None:
        case.explained(before, "the service itself changed just before: " + _change_text(own_change))
    else:  # calls to what it uses fail, from everywhere at once, when the platform under it fails (a network)
        dependency_alerts = _alerts_naming(e, case.category)[0]
        platform = next((a for a in e.alerts if "infrastructure_failure" in _alert_causes(a)
                         and all(a.starts_at <= d.starts_at for d in dependency_alerts)), None)
        if platform is not None:
            case.explained(before, "the platform under it was failing first: " + _alert_text(platform))
    if not explained:
        _text_rule(e, case)


_NAME_WORDS = re.compile(r"[a-z0-9]{4,}")
_ANY_SERVICE: Final = frozenset({"service", "server", "worker", "frontend", "backend", "prod", "production"})


def _named(e: Evidence, other_service: str) -> bool:
    """Whether the incident or its alerts name another service: a word of its name (four letters or more)
    that is not also a word of this service's name, nor one any service could be called ("service")."""
    own = set(_NAME_WORDS.findall(e.incident.service.lower())) | _ANY_SERVICE
    words = set(_NAME_WORDS.findall(other_service.lower())) - own
    said = set(_NAME_WORDS.findall(" ".join([_said(e), *(f"{a.name} {a.description}" for a in e.alerts)]).lower()))
    return bool(words & said)


def _error_weight(m: MetricFact) -> float:
    """More failed requests point at a cause the more of them there are: 0.5% more is barely a
    signal, 10% more is unmistakable (0..1 on a log scale)."""
    excess = (m.during or 0.0) - (m.before or 0.0)
    return min(max(math.log10(excess / 0.005) / math.log10(20), 0.0), 1.0) if excess > 0 else 0.0


def _at_capacity(e: Evidence) -> MetricFact | None:
    m = _metric(e, "saturation")
    return m if m is not None and (m.during or 0) >= 0.9 else None


def _recent_own_change(e: Evidence) -> ChangeFact | None:
    """A deploy, config or flag change of the service in the 20 minutes before the symptoms began."""
    for change in _in_window(e.changes, ("deploy", "config", "feature_flag"), e.incident.service):
        if -2 <= _lead(e, change)[0] <= _CHANGE_FADES:
            return change
    return None


def _alert_causes(alert: AlertFact) -> set[str]:
    """The causes an alert names: its failure modes, or the components it mentions when it names none."""
    modes, components = _names(f"{alert.name} {alert.description}")
    return modes or components


def _causes_named(e: Evidence) -> set[str]:
    return {cause for alert in e.alerts for cause in _alert_causes(alert)}


def _traffic(e: Evidence, case: _Case) -> None:
    traffic = _metric(e, "traffic")
    if traffic is not None and traffic.change_pct is not None:
        # Graded by how far the load grew: x1.4 says nothing, x2 about 6, x4 and more 15.
        surge = min(max((math.log2(_fold(traffic)) - 0.5) / 1.5, 0.0), 1.0)
        if surge > 0:
            case.add(1.0 + 14.0 * surge, _metric_text(e, traffic))
        elif abs(traffic.change_pct) < 20:
            case.add(0.4, _metric_text(e, traffic) + " (no surge)")
    _alert_rule(e, case, 3.0, 1.5)
    _text_rule(e, case)


def _infrastructure(e: Evidence, case: _Case) -> None:
    service = e.incident.service
    restarts = _restarts(e)
    if restarts is not None and _oom_restarts(e) is None:
        case.add(3.5, f"{_num(restarts.during)} restarts of {service} around detection"
                 + (f", from {_minutes(restarts.onset_minutes_before)}"
                    if restarts.onset_minutes_before is not None else ""))
    infra = _in_window(e.changes, ("infra",), None)
    if infra:
        _change_rule(e, case, infra, 11.0)
    _alert_rule(e, case, 8.0, 2.0)
    _text_rule(e, case)


def _credential(e: Evidence, case: _Case) -> None:
    text = _said(e)
    # An expiry named outright is close to proof; TLS or authentication failures point at one.
    failing, mentions = _alerts_naming(e, "expired_credential")
    expiry = [a for a in failing if _EXPIRY.search(f"{a.name} {a.description}")
              and not _FUTURE_EXPIRY.search(f"{a.name} {a.description}")]
    tls = [a for a in failing if a not in expiry and _TLS_FAILURE.search(f"{a.name} {a.description}")
           and not _FUTURE_EXPIRY.search(f"{a.name} {a.description}")]
    warnings = [a for a in failing if _FUTURE_EXPIRY.search(f"{a.name} {a.description}")]
    for alert in expiry[:1]:
        _alert_counts(e, case, alert, 40.0)
    for alert in tls[:1]:  # a certificate that no longer verifies: expired, rotated or replaced
        _alert_counts(e, case, alert, 25.0)
    for alert in [a for a in failing if a not in expiry and a not in tls and a not in warnings][:1]:
        _alert_counts(e, case, alert, 15.0)  # authentication refused
    for alert in [*warnings, *mentions][:1]:  # a credential mentioned, or one that will expire: not yet broken
        _alert_counts(e, case, alert, 2.0)
    if _EXPIRY.search(text):
        case.add(15.0, f"the incident detected at {_hhmm(e.incident.detected_at)} names an expiry: "
                       f"“{_clip(text.strip())}”")
    else:
        _text_rule(e, case)
    # A credential replaced shortly before authentication began to fail.
    rotated = [c for c in _in_window(e.changes, ("config", "infra", "deploy"), None)
               if _CREDENTIAL_CHANGE.search(c.description)]
    if rotated and (failing or _EXPIRY.search(text)):
        _change_rule(e, case, rotated, 3.0)


def _backlog(e: Evidence, case: _Case) -> None:
    # A backlog is often what another failure looks like from a queue: when an alert names one, the
    # backlog is its symptom rather than the cause.
    before = case.mark()
    _alert_rule(e, case, 12.0, 2.0)
    other = next((a for a in e.alerts if _alert_causes(a) - {case.category}), None)
    if other is not None:
        case.explained(before, "another failure, which a backlog follows, is alerted on: " + _alert_text(other))
    _text_rule(e, case)


_ALIKE: Final = 0.5  # similarity from which a past incident is taken for the same kind of incident


def _recurrence(e: Evidence, case: _Case) -> None:
    confirmed = [s for s in e.similar if s.confirmed_category and s.score >= _ALIKE]
    if confirmed:
        # The known problem that fits best: the alike past incident whose confirmed cause was confirmed
        # again for this service, and that today's evidence points at as well, before the merely most alike.
        best, again, fits = max(((s, *_known_problem(e, s)) for s in confirmed),
                                key=lambda t: (len(t[1]) + (t[2] is not None), t[0].score))
        case.add(4.0 + 16.0 * best.score**2, f"similar incident “{best.title}” on {best.detected_at:%Y-%m-%d} "
                                         f"(similarity {best.score:.2f}) was confirmed as {best.confirmed_category}")
        for other in again[:2]:  # the same cause confirmed again: a pattern, not a coincidence
            case.add(math.sqrt(4.0 + 16.0 * other.score**2),
                     f"incident “{other.title}” on {other.detected_at:%Y-%m-%d} was confirmed as the same cause")
        if fits is not None:  # what the known problem would look like is what is seen now
            case.add(math.exp(fits.specific), f"today's evidence points at {fits.category.replace('_', ' ')} "
                                              f"again: " + "; ".join(fits.supporting[:2]))
        case.subject = best.confirmed_claim or best.title
    elif e.similar and e.similar[0].score >= 0.5:
        case.add(1.5, f"similar incident “{e.similar[0].title}” on {e.similar[0].detected_at:%Y-%m-%d}, "
                      "cause never confirmed")
    if e.novelty == "new":
        case.add(0.5, "no past incident of this project resembles this one (similarity 0.3 or more)")


def _known_problem(e: Evidence, past: SimilarFact) -> tuple[list[SimilarFact], _Case | None]:
    """The other past incidents of this service (or alike) confirmed with the same cause as `past`, and that
    cause's case today when its specific evidence is decisive on its own."""
    again = [s for s in e.similar if s is not past and s.confirmed_category == past.confirmed_category
             and (s.service_name == e.incident.service or s.score >= _ALIKE)]
    now = _Case(past.confirmed_category or "")
    rule = _RULES.get(now.category)
    if rule is None or rule is _recurrence:
        return again, None
    rule(e, now)
    return again, now if now.specific >= math.log(DECISIVE_EVIDENCE) else None


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
        "resource_saturation": (f"{service} is running out of a resource (CPU, memory, disk or capacity)",
                                "Resource use rose with the symptoms; scale out or find what consumes it."),
        "dependency_failure": (f"A dependency of {service} is failing or slow",
                               "The symptoms point at something the service calls rather than the service "
                               "itself; check the databases, caches and services it depends on."),
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


@dataclass(frozen=True)
class Scored:
    """One cause's raw posterior, the weight of evidence behind it, and what it rests on."""
    p: float
    n: float
    case: _Case


def score(evidence: Evidence, calibration: Calibration) -> tuple[list[Scored], bool]:
    """Every cause's raw posterior, best first, and whether the best one is decisive.

    The causes exclude each other (an incident has one root cause here), so each one's posterior is
    its prior times the likelihood ratio of its evidence, over the sum of all of them and of the
    prior of a cause none of the rules knows: a cause is as likely as it is ahead of its rivals.
    """
    cases, weights = [], []
    for category, rule in _RULES.items():
        case = _Case(category)
        rule(evidence, case)
        prior, feedback = _prior(category, calibration)
        cases.append((case, feedback))
        weights.append(prior * math.exp(case.specific + min(case.generic, _GENERIC_CAP)))
    total = sum(weights) + _OTHER
    scored = [Scored(w / total, 3.0 + 2.0 * case.weight + feedback, case)
              for (case, feedback), w in zip(cases, weights, strict=True)]
    scored.sort(key=lambda s: (-s.p, s.case.category))
    # A cause its prior alone puts first is no finding: deciding takes evidence, and evidence that points
    # at this cause rather than at any (a step of errors is what every cause looks like).
    best = scored[0]
    return scored, best.case.specific >= math.log(DECISIVE_EVIDENCE)


def generate_hypotheses(evidence: Evidence, calibration: Calibration, namespace: UUID,
                        limit: int = 5, confidence: ConfidenceMap | None = None) -> list[dict[str, Any]]:
    """Ranked hypotheses as plain dicts (the shape stored in events and served by the API).

    `confidence` maps a raw posterior to the confidence shown (the fitted map by default).
    """
    to_confidence = confidence or fitted_map()
    service = evidence.incident.service
    scored, decisive = score(evidence, calibration)
    hypotheses = []
    if not decisive:
        best = scored[0]
        missing = [] if evidence.metrics_status == "ok" else [f"metrics were {evidence.metrics_status}"]
        if not evidence.changes:
            missing.append(f"0 change events recorded {_window(evidence)}")
        if not evidence.alerts:
            missing.append(f"0 alerts linked to the incident or firing for {service}")
        shown = to_confidence(best.p)
        hypotheses.append({
            "category": ABSTAIN,
            "claim": "No decisive evidence for any cause yet",
            "description": ("The gathered facts do not point at one cause; mark the incident inconclusive "
                            "or gather more (metrics, change events, alerts) rather than act on a guess."),
            # As sure as the best candidate, no surer, and wide: the honest answer is "we don't know".
            "confidence_score": round(shown, 3),
            "confidence_lower": 0.0,
            "confidence_upper": round(min(1.0, shown + 0.4), 3),
            "supporting_evidence": [
                f"the strongest candidate, {best.case.category.replace('_', ' ')}, reaches only {shown:.0%}",
                *missing,
            ],
            "contradicting_evidence": [],
            "recommendation": "inconclusive",
        })
    for s in scored:
        case = s.case
        if len(hypotheses) >= limit or (not case.supporting and s.p < 0.2):
            continue
        claim, description = _claim(case.category, service, case.subject)
        shown = to_confidence(s.p)
        lower, upper = credible_interval(shown, s.n)
        hypotheses.append({
            "category": case.category, "claim": claim, "description": description,
            "confidence_score": round(shown, 3), "confidence_lower": round(lower, 3),
            "confidence_upper": round(upper, 3),
            "supporting_evidence": case.supporting, "contradicting_evidence": case.contradicting,
            "recommendation": "investigate" if decisive and s is scored[0] else "gather more evidence",
        })
    for rank, hypothesis in enumerate(hypotheses, start=1):
        hypothesis["rank"] = rank
        hypothesis["id"] = str(uuid5(namespace, f"{rank}:{hypothesis['category']}"))
    return hypotheses
