"""The evidence-gathering steps: each reads one source and returns facts with a one-line summary.

A source that is absent is `Skipped`; one that is down raises, and the workflow records the
step as failed and goes on.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import msgspec

from copilot.integrations.probes import forbidden_target
from copilot.investigation.evidence import AlertFact, ChangeFact, IncidentFact, MetricFact, SimilarFact
from copilot.investigation.recent import Candidate, RecentIncidents
from copilot.projections.db import ReadDatabase

__all__ = ["METRIC_TEMPLATES", "NO_PROMETHEUS", "Found", "Gatherer", "Skipped", "query_signals", "similarity",
           "text_similarity", "tokens"]

# PromQL per signal; {sel} is the service selector, e.g. service="payment-api".
METRIC_TEMPLATES: dict[str, str] = {
    "error_ratio": ('sum(rate(http_requests_total{{{sel},status=~"5.."}}[5m]))'
                    " / sum(rate(http_requests_total{{{sel}}}[5m]))"),
    "latency_p99": "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{{sel}}}[5m])))",
    "traffic": "sum(rate(http_requests_total{{{sel}}}[5m]))",
    "cpu": "sum(rate(process_cpu_seconds_total{{{sel}}}[5m]))",
    "memory": "sum(process_resident_memory_bytes{{{sel}}})",
    "restarts": "sum(changes(process_start_time_seconds{{{sel}}}[15m]))",
    "saturation": "max(saturation_ratio{{{sel}}})",
}
# Symptoms often begin well before anyone detects them: the baseline is the half hour that ended
# 45 minutes before detection, compared with the peak from 30 minutes before to 10 after.
BASELINE = (timedelta(minutes=75), timedelta(minutes=45))
AROUND = (timedelta(minutes=30), timedelta(minutes=10))
CHANGE_LOOKBACK = timedelta(hours=2)
RISE_PCT = 25.0  # a signal that rose at least this much gets its onset and rise time measured
_WORDS = re.compile(r"[a-z0-9]+")
NO_PROMETHEUS = "the project has no Prometheus integration"


class Skipped(Exception):
    """The source this step needs is not configured: not a failure, nothing to find."""


@dataclass(frozen=True)
class Found:
    summary: str
    facts: Any


@functools.lru_cache(maxsize=8192)  # past incidents' texts come back in every lookup
def tokens(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORDS.findall(text.lower()) if len(w) > 2)


def text_similarity(words: frozenset[str], theirs: frozenset[str]) -> float:
    """Shared words over all words (Jaccard)."""
    shared = len(words & theirs)
    either = len(words) + len(theirs) - shared  # the union's size, without building it
    return shared / either if either else 0.0


def similarity(same_service: bool, text: float, linked: bool) -> float:
    """How alike two incidents are: same service, shared words, shared alert names."""
    return round(0.45 * same_service + 0.35 * text + 0.2 * linked, 3)


# The project's 500 most recent incidents before this one are the candidates for "similar".
CANDIDATES = 500
# Read from the database when the investigator's memory of the project (`RecentIncidents`) does
# not reach back far enough. Recurring incidents repeat their service and text, so the candidates
# are grouped by what the score depends on (service, title, description, and whether they share
# an alert name with this incident): each group comes back as its five most recent members — any
# of the five most alike incidents is among those — each with how many of the group are from the
# last month.
_ALIKE_GROUPS = (
    "SELECT CAST(id AS TEXT), service_name, title, description, detected_at, linked, recent FROM ("
    " SELECT r.*, ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY detected_at DESC, id) AS k,"
    " SUM(CASE WHEN detected_at >= :month_ago THEN 1 ELSE 0 END) OVER (PARTITION BY {group}) AS recent"
    " FROM (SELECT c.id, c.service_name, c.title, c.description, c.detected_at, {linked} AS linked"
    " FROM incidents c WHERE c.project_id = :project_id AND c.id <> :id AND c.detected_at < :t0"
    f" ORDER BY c.detected_at DESC, c.id LIMIT {CANDIDATES}) r) w WHERE k <= 5"
).replace("{group}", "service_name, title, description, linked")
# Which of the candidates share an alert name with this incident, by the candidates' time span.
_SHARING = ("SELECT DISTINCT CAST(a.incident_id AS TEXT) FROM alerts a JOIN incidents c ON c.id = a.incident_id"
            " WHERE a.project_id = :project_id AND a.name IN ({names}) AND c.project_id = :project_id"
            " AND c.detected_at >= :oldest AND c.detected_at < :t0")
_SHARES_AN_ALERT = ("CASE WHEN EXISTS (SELECT 1 FROM alerts a WHERE a.project_id = :project_id"
                    " AND a.incident_id = c.id AND a.name IN ({names})) THEN 1 ELSE 0 END")


Alike = tuple[float, datetime, str, str, str]  # (score, detected_at, id as text, service, title)


class Gatherer:
    def __init__(self, db: ReadDatabase, now: Any) -> None:
        self.db = db
        self.now = now  # a callable returning the current time
        self.recent = RecentIncidents(db)

    # -- alerts -----------------------------------------------------------------------------

    def alerts(self, incident: IncidentFact, project_id: UUID) -> Found:
        rows = self.db.fetch_all(
            "SELECT name, severity, service, starts_at, description, incident_id FROM alerts"
            " WHERE project_id = :project_id AND (incident_id = :incident_id"
            " OR (service = :service AND status = 'firing')) ORDER BY starts_at, name",
            {"project_id": project_id, "incident_id": incident.id, "service": incident.service},
        )
        facts = [AlertFact(name=r["name"], severity=r["severity"], service=r["service"], starts_at=r["starts_at"],
                           description=r["description"], linked=r["incident_id"] == incident.id) for r in rows]
        linked = sum(1 for f in facts if f.linked)
        return Found(f"{len(facts)} alert(s): {linked} linked to the incident, {len(facts) - linked} firing "
                     f"for {incident.service}", facts)

    # -- metrics ----------------------------------------------------------------------------

    def prometheus_of(self, project_id: UUID) -> dict[str, Any] | None:
        rows = self.db.fetch_all(
            "SELECT config FROM integrations WHERE project_id = :project_id AND type = 'prometheus'"
            " AND deleted_at IS NULL AND enabled = :enabled ORDER BY created_at",
            {"project_id": project_id, "enabled": True},
        )
        return msgspec.json.decode(rows[0]["config"]) if rows else None

    async def metrics(self, incident: IncidentFact, config: dict[str, Any] | None) -> Found:
        """The signals around detection from the project's Prometheus (`prometheus_of`)."""
        if config is None:
            raise Skipped(NO_PROMETHEUS)
        refusal = await forbidden_target(httpx.URL(config["url"]).host)
        if refusal:
            raise Skipped(refusal)
        return await query_signals(config, incident, self.now())


    # -- change events ----------------------------------------------------------------------

    def changes(self, incident: IncidentFact, project_id: UUID) -> Found:
        t0 = incident.detected_at
        rows = self.db.fetch_all(
            "SELECT kind, service_name, description, version, occurred_at FROM changes"
            " WHERE project_id = :project_id AND occurred_at >= :since AND occurred_at <= :until"
            " ORDER BY occurred_at DESC",
            {"project_id": project_id, "since": t0 - CHANGE_LOOKBACK, "until": t0 + timedelta(minutes=5)},
        )
        facts = [ChangeFact(kind=r["kind"], service_name=r["service_name"], description=r["description"],
                            version=r["version"], occurred_at=r["occurred_at"],
                            minutes_before=round((t0 - r["occurred_at"]).total_seconds() / 60, 1)) for r in rows]
        own = sum(1 for f in facts if f.service_name == incident.service)
        return Found(f"{len(facts)} change(s) in the two hours before detection, {own} of {incident.service}",
                     facts)

    # -- similar incidents ------------------------------------------------------------------

    def similar(self, incident: IncidentFact, project_id: UUID) -> Found:
        """The past incidents most like this one among the project's 500 most recent.

        The candidates come from the investigator's memory of the project (`RecentIncidents`);
        when it does not reach back far enough, from the database (`_ALIKE_GROUPS`). Only the
        five shown have their confirmed cause read.
        """
        month_ago = incident.detected_at - timedelta(days=30)
        params: dict[str, Any] = {"project_id": project_id, "id": incident.id, "t0": incident.detected_at,
                                  "month_ago": month_ago}
        mine = sorted({name for (name,) in self.db.fetch_tuples(
            "SELECT name FROM alerts WHERE project_id = :project_id AND incident_id = :id", params)})
        params.update({f"alert{n}": name for n, name in enumerate(mine)})
        names = ", ".join(f":alert{n}" for n in range(len(mine)))
        words = tokens(f"{incident.title} {incident.description}")
        candidates = self.recent.before(project_id, incident.detected_at, CANDIDATES)
        if candidates is None:
            alike, recent = self._alike_in_groups(incident, words, params, names)
        else:
            sharing: set[str] = set()
            if mine and candidates:
                sharing = {key for (key,) in self.db.fetch_tuples(
                    _SHARING.format(names=names), {**params, "oldest": candidates[0].detected_at})}
            alike, recent = self._alike(incident, words, candidates, sharing, month_ago)
        # The most alike, the most recent among equals, then the lower id (`alike` is in that order,
        # and nlargest keeps the order of equals).
        top = heapq.nlargest(5, alike, key=lambda found: found[:2])
        causes: dict[str, tuple[str | None, str | None]] = {}
        if top:
            shown = {f"shown{n}": UUID(found[2]) for n, found in enumerate(top)}
            for key, category, claim in self.db.fetch_tuples(  # an incident's latest run's best confirmed cause
                    "SELECT CAST(incident_id AS TEXT), category, claim FROM hypotheses"
                    f" WHERE incident_id IN ({', '.join(':' + name for name in shown)})"
                    " AND user_feedback = 'confirmed' ORDER BY run DESC, rank", shown, plan_now=True):
                causes.setdefault(key, (category, claim))
        ranked = []
        for score, detected_at, key, service, title in top:
            category, claim = causes.get(key, (None, None))
            ranked.append(SimilarFact(incident_id=UUID(key), title=title, service_name=service,
                                      detected_at=detected_at, score=score, confirmed_category=category,
                                      confirmed_claim=claim))
        novelty = "frequent" if recent >= 3 else "rare" if alike else "new"
        return Found(f"{len(ranked)} similar past incident(s); this one is {novelty}", (ranked, novelty))

    @staticmethod
    def _alike(incident: IncidentFact, words: frozenset[str], candidates: list[Candidate], sharing: set[str],
               month_ago: datetime) -> tuple[list[Alike], int]:
        """The candidates (in ascending order of detection) scoring 0.3 or more, and how many
        scoring 0.5 or more are from the last month.

        Candidates alike in all the score reads (service, title, description, sharing an alert
        name) score the same: each group is scored once, counted with `Counter`, and only the five
        most recent of an alike group are listed, as no more of it can be shown. Recurring
        incidents make few groups of many.
        """
        if sharing:
            groups = [(c.alike_in, c.key in sharing) for c in candidates]
        else:
            groups = [(c.alike_in, False) for c in candidates]
        sizes = Counter(groups)
        from_last_month = Counter(groups[bisect.bisect_left(candidates, (month_ago,)):])
        scores = {group: similarity(incident.service == group[0][0],
                                    text_similarity(words, tokens(f"{group[0][1]} {group[0][2]}")), group[1])
                  for group in sizes}
        recent = sum(from_last_month[group] for group, score in scores.items() if score >= 0.5)
        wanted = {group: min(5, sizes[group]) for group, score in scores.items() if score >= 0.3}
        left = sum(wanted.values())
        alike: list[Alike] = []
        for index in range(len(candidates) - 1, -1, -1):  # the most recent first, the lower id first among equals
            if not left:
                break
            group = groups[index]
            if wanted.get(group):
                wanted[group] -= 1
                left -= 1
                c = candidates[index]
                alike.append((scores[group], c.detected_at, c.key, c.alike_in[0], c.alike_in[1]))
        return alike, recent

    def _alike_in_groups(self, incident: IncidentFact, words: frozenset[str], params: dict[str, Any],
                         names: str) -> tuple[list[Alike], int]:
        """What `_alike` finds, from the database: a few rows per group of candidates alike in
        everything the score reads, each with how many of its group are from the last month."""
        linked = _SHARES_AN_ALERT.format(names=names) if names else "0"
        scores: dict[tuple[str, str, str, int], float] = {}  # a group's score
        alike: list[Alike] = []
        recent = 0
        for key, service, title, description, detected_at, shares, last_month in self.db.fetch_tuples(
                _ALIKE_GROUPS.replace("{linked}", linked), params):
            group = (service, title, description, shares)
            score = scores.get(group)
            if score is None:
                text = text_similarity(words, tokens(f"{title} {description}"))
                score = scores[group] = similarity(incident.service == service, text, bool(shares))
                if score >= 0.5:
                    recent += int(last_month)
            if score >= 0.3:
                alike.append((score, detected_at, key, service, title))
        alike.sort(key=lambda found: found[2])  # among equals, the lower id first, as the log orders them
        return alike, recent

    # -- calibration ------------------------------------------------------------------------

    def calibration(self, project_id: UUID) -> dict[str, tuple[int, int]]:
        rows = self.db.fetch_all(
            "SELECT category, user_feedback, COUNT(*) AS n FROM hypotheses WHERE project_id = :project_id"
            " AND user_feedback IN ('confirmed', 'rejected') GROUP BY category, user_feedback",
            {"project_id": project_id},
        )
        stats: dict[str, list[int]] = {}
        for row in rows:
            counts = stats.setdefault(row["category"], [0, 0])
            counts[0 if row["user_feedback"] == "confirmed" else 1] += int(row["n"])
        return {category: (c[0], c[1]) for category, c in stats.items()}


async def query_signals(config: dict[str, Any], incident: IncidentFact, now: datetime) -> Found:
    """Each signal's baseline before detection, peak around it, and when and how fast it rose to it,
    from the Prometheus at `config["url"]`."""
    base = config["url"]
    label = config.get("service_label") or "service"
    selector = f'{label}="{_escape(incident.service)}"'
    t0 = incident.detected_at
    baseline_at = t0 - BASELINE[1]
    around_at = min(t0 + AROUND[1], now)
    baseline_range = int((BASELINE[0] - BASELINE[1]).total_seconds() // 60)
    around_range = max(1, int((around_at - (t0 - AROUND[0])).total_seconds() // 60))
    facts: list[MetricFact] = []
    async with httpx.AsyncClient(base_url=base, timeout=5.0, follow_redirects=False, trust_env=False,
                                 verify=bool(config.get("verify_tls", True))) as client:
        for signal, template in METRIC_TEMPLATES.items():
            expr = template.format(sel=selector)
            before = await _scalar(client, f"avg_over_time(({expr})[{baseline_range}m:1m])", baseline_at)
            during = await _scalar(client, f"max_over_time(({expr})[{around_range}m:1m])", around_at)
            if before is None and during is None:
                continue
            change = _change(before, during)
            onset = rise = None
            if before is not None and during is not None and change is not None and change >= RISE_PCT:
                series = await _series(client, expr, t0 - BASELINE[0], around_at)
                onset, rise = _rise(series, before, during, t0)
            facts.append(MetricFact(signal=signal, before=before, during=during, change_pct=change,
                                    onset_minutes_before=onset, rise_minutes=rise))
    moved = [f"{f.signal} {f.change_pct:+.0f}%" for f in facts if f.change_pct is not None
             and abs(f.change_pct) >= RISE_PCT]
    summary = (f"{len(facts)} signal(s) with data for {selector}"
               + (f"; changed: {', '.join(moved)}" if moved else "; none moved by 25% or more"))
    return Found(summary, facts)


def _rise(series: list[tuple[float, float]], before: float, during: float,
          t0: datetime) -> tuple[float | None, float | None]:
    """When the last climb to the peak began (minutes before detection) and how long it took.

    The climb is the run of samples, ending at the peak, above a fifth of the way from the
    baseline to the peak; its length is the time from there to four fifths of the way.
    """
    if not series:
        return None, None
    peak_at = max(range(len(series)), key=lambda i: (series[i][1], i))
    low, high = before + 0.2 * (during - before), before + 0.8 * (during - before)
    start = peak_at
    while start > 0 and series[start - 1][1] >= low:
        start -= 1
    if start == 0:  # never below the threshold in the window: the rise is older than it
        return None, None
    reached = next(i for i in range(start, peak_at + 1) if series[i][1] >= high or i == peak_at)
    onset = round((t0.timestamp() - series[start][0]) / 60, 1)
    return onset, round((series[reached][0] - series[start][0]) / 60, 1)
def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _change(before: float | None, during: float | None) -> float | None:
    if before is None or during is None:
        return None
    if before == 0:
        return 0.0 if during == 0 else 1000.0
    return round((during - before) / abs(before) * 100, 1)


async def _series(client: httpx.AsyncClient, query: str, start: datetime, end: datetime) -> list[tuple[float, float]]:
    """One value a minute of `query` from `start` to `end`, NaN and missing samples left out."""
    response = await client.get("/api/v1/query_range", params={
        "query": query, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}", "step": "60"})
    response.raise_for_status()
    result = response.json().get("data", {}).get("result", [])
    if not result:
        return []
    points = []
    for ts, raw in result[0].get("values", []):
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue
        if value == value:
            points.append((float(ts), value))
    return points


async def _scalar(client: httpx.AsyncClient, query: str, at: datetime) -> float | None:
    response = await client.get("/api/v1/query", params={"query": query, "time": f"{at.timestamp():.3f}"})
    response.raise_for_status()
    body = response.json()
    result = body.get("data", {}).get("result", [])
    if not result:
        return None
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None if value != value else value  # NaN: no data
