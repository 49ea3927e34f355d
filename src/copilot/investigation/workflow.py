"""The investigator: reacts to the log and drives each investigation through its recorded steps.

It follows the log (tracking row `investigator`) for `Incident.Detected` (open an
investigation and start its first run) and `Investigation.RunStarted` (a run someone asked
for). Steps are appended as they finish (a step that waits on another system also as it
starts), so after a crash the next investigator resumes the run at its first unrecorded
step. On PostgreSQL one investigator is active at a time (an advisory lock), or, with
COPILOT_INVESTIGATOR_PARTITIONS=N, N at a time, each with its share of the investigations (by
id) and its own tracking row (`investigator K of N`); the aggregate's optimistic concurrency
guards the rest. Identical evidence in a burst is generated once per investigator (`_InFlight`),
so with N of them a burst pays for up to N LLM calls instead of one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID, uuid5

import msgspec
from eventsourcing.utils import get_topic

from copilot.bootstrap import PositionWaiter
from copilot.commands.store import ConcurrentWriteError, EventStore
from copilot.domain.events import event_type
from copilot.domain.incident import Incident
from copilot.domain.investigation import Investigation
from copilot.follower import LogFollower
from copilot.investigation.engine import generate_hypotheses
from copilot.investigation.evidence import (
    AlertFact,
    ChangeFact,
    Evidence,
    IncidentFact,
    MetricFact,
    SimilarFact,
    fingerprint,
)
from copilot.investigation.gather import NO_PROMETHEUS, Found, Gatherer, Skipped
from copilot.investigation.llm import LLMCall, LLMEngine
from copilot.leadership import Agreement
from copilot.ops.metrics import Metrics
from copilot.projections.db import ReadDatabase
from copilot.settings import MAX_INVESTIGATOR_PARTITIONS

__all__ = ["INVESTIGATOR_TRACKING_NAME", "Investigator"]

log = logging.getLogger(__name__)
T = TypeVar("T")

INVESTIGATOR_TRACKING_NAME = "investigator"
STEP_TIMEOUT_SECONDS = 30.0
# The local steps are read-model queries of milliseconds each: when they have not finished in
# this long the database is not answering, and the attempt fails (retried from its trigger).
# Their thread cannot be interrupted; it finishes on an aggregate that nobody appends.
LOCAL_STEPS_TIMEOUT_SECONDS = 60.0
_PG_INVESTIGATOR_LOCK = 0x5C0_93_01  # + the share: 0 to COPILOT_INVESTIGATOR_PARTITIONS - 1
_PG_INVESTIGATOR_SPLIT = 0x5C0_94_00  # + COPILOT_INVESTIGATOR_PARTITIONS, held shared by every investigator
_DETECTED_EVENT = event_type(Incident, "Detected")
_DETECTED = get_topic(_DETECTED_EVENT)
_RUN_STARTED = get_topic(event_type(Investigation, "RunStarted"))
_TRIGGERS = (_DETECTED, _RUN_STARTED)
_BATCH = 100
_READ_MODELS_WAIT_SECONDS = 10.0
_ATTEMPTS = 3  # a trigger whose investigation fails this often has its run ended as failed
CONCURRENCY = 16  # investigations driven at once; each mostly waits on commits and queries
# Of those, how many go on taking investigations while HTTP requests are being answered in the
# same process (all roles in one): the others wait until none is, checking every _YIELD_SECONDS.
# One process runs on one core; driven by 16 at once, investigations took most of it and halved
# the creates a burst got answered (400-421/s against 886-1,008 with 2 drivers, p99 178-197 ms
# against 108-117). A burst is accepted first; its investigations catch up at full concurrency.
YIELDING = 2
_YIELD_SECONDS = 0.05


def _opened(detected: Any) -> Investigation:
    """A new investigation of the incident this Detected event declared, its first run started."""
    investigation = Investigation(incident_id=detected.originator_id, tenant_id=detected.tenant_id,
                                  project_id=detected.project_id)
    investigation.start_run("detected", None)
    return investigation


def _builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


Generated = tuple[list[dict[str, Any]], Decimal, str]  # hypotheses, what their LLM calls cost, engine


class _InFlight:
    """Generation from identical evidence, across the investigations running at once.

    A burst of incidents of one service often has identical evidence, and the read models hold
    a run's hypotheses only once it has ended: without this, each of them would pay for its own
    LLM call. The first generates; the others wait for it and reuse its hypotheses as a cache hit.
    """

    _KEEP = 1000  # results remembered, for runs that come just after

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Any, threading.Event] = {}
        self._results: dict[Any, Generated] = {}

    def wait_or_claim(self, key: Any, timeout: float) -> Generated | None:
        """Someone's result for `key`, waiting while they are at it; None when the caller is to
        generate (it then calls `done`)."""
        with self._lock:
            if key in self._results:
                return self._results[key]
            running = self._running.get(key)
            if running is None:
                self._running[key] = threading.Event()
                return None
        running.wait(timeout)
        with self._lock:
            return self._results.get(key)  # None if theirs failed: the caller generates after all

    def done(self, key: Any, result: Generated | None) -> None:
        with self._lock:
            if result is not None:
                if len(self._results) >= self._KEEP:
                    self._results.clear()
                self._results[key] = result
            running = self._running.pop(key, None)
        if running is not None:
            running.set()


class Investigator(LogFollower):
    tracking_name = INVESTIGATOR_TRACKING_NAME
    lock_key = _PG_INVESTIGATOR_LOCK

    def __init__(self, store: EventStore, db: ReadDatabase, *, poll_interval: float = 0.5,
                 listen_conninfo: str | None = None, llm: LLMEngine | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 read_models: PositionWaiter | None = None, partitions: int = 1) -> None:
        super().__init__(store, db, poll_interval=poll_interval, listen_conninfo=listen_conninfo)
        # Several investigators share the incidents out by id, one share each, held by an advisory
        # lock; without locks (SQLite, or no PostgreSQL connection to hold one on) one does it all.
        self.partitions = partitions if db.dialect == "postgres" and listen_conninfo else 1
        self.partition = 0
        # The steps gather from the read models: the alert that opened an incident is appended
        # with it, so they must have caught up with the trigger before the steps read them.
        self.read_models = read_models
        self._failures: dict[int, int] = {}  # trigger position -> failed attempts so far
        # Its own threads: a slow LLM call or a commit wait holds one, and must not starve the
        # default executor that the relay and gateway share in an all-in-one process.
        self._threads = ThreadPoolExecutor(CONCURRENCY + 2, thread_name_prefix="investigator")
        self._in_flight = _InFlight()
        self.llm = llm
        self.metrics: Metrics | None = None
        self.gather = Gatherer(db, now)
        self.now = now

    def lock_keys(self) -> list[int]:
        return [self.lock_key + share for share in range(self.partitions)]

    def agreement(self) -> Agreement:
        """Investigators split the work only one way at a time. Under two values of
        COPILOT_INVESTIGATOR_PARTITIONS, shares would overlap (investigations driven twice, the
        LLM asked twice) or be left to nobody; one started with another value than the running
        ones stands by, says so in its log, and takes over once they have stopped."""
        def describe(key: int) -> str:
            return (f"investigators with COPILOT_INVESTIGATOR_PARTITIONS={key - _PG_INVESTIGATOR_SPLIT} are running, "
                    f"this one has {self.partitions}")

        family = range(_PG_INVESTIGATOR_SPLIT + 1, _PG_INVESTIGATOR_SPLIT + MAX_INVESTIGATOR_PARTITIONS + 1)
        return Agreement(_PG_INVESTIGATOR_SPLIT + self.partitions, family, describe)

    def lead(self, index: int) -> None:
        self.partition = index
        if self.partitions > 1:
            self.tracking_name = f"{INVESTIGATOR_TRACKING_NAME} {index + 1} of {self.partitions}"

    def start_position(self, positions: dict[str, int]) -> int:
        """Its own position; a share new to it starts where the furthest-behind investigator
        stands (every trigger before that was handled, whichever way the work was shared)."""
        if self.tracking_name in positions:
            return positions[self.tracking_name]
        ours = [position for name, position in positions.items()
                if name == INVESTIGATOR_TRACKING_NAME or name.startswith(f"{INVESTIGATOR_TRACKING_NAME} ")]
        return min(ours, default=0)

    def _requests_waiting(self) -> bool:
        """HTTP requests are being answered in this process (never, in a process of its own)."""
        return self.metrics is not None and self.metrics.requests_in_flight > 0

    def _mine(self, investigation_id: UUID) -> bool:
        return investigation_id.int % self.partitions == self.partition

    async def step(self) -> bool:
        """Handle the triggers in the next stretch of the log; False when there was nothing new.

        Only trigger events are read. Their investigations run concurrently (CONCURRENCY at
        once, YIELDING while requests are answered in this process): each one mostly waits on
        commits and queries, and the group-commit recorder writes their appends together. The position
        is saved once the whole stretch is handled; after a crash its triggers are handled
        again, which resumes their runs where the log says they stand.
        """
        head = await self._thread(self.store.recorder.max_notification_id) or 0
        if head <= self.position:
            return False
        triggers = await self._thread(
            self.store.recorder.select_notifications, self.position, _BATCH, head, _TRIGGERS,
            inclusive_of_start=False)
        by_investigation: dict[UUID, list[tuple[int, Any]]] = {}  # (position, trigger), in log order
        for notification in triggers:
            detected = notification.topic == _DETECTED
            key = Investigation.create_id(notification.originator_id) if detected else notification.originator_id
            if not self._mine(key):  # another investigator's share
                continue
            trigger: Any = self.store.app.mapper.to_domain_event(notification)
            if detected or trigger.trigger != "detected":  # a detected run is driven from its incident's Detected
                by_investigation.setdefault(key, []).append((notification.id, trigger))
        failed: list[int] = []
        if by_investigation:
            if self.read_models is not None and not await self.read_models.wait_for(
                    head, timeout=_READ_MODELS_WAIT_SECONDS):
                log.warning("read models are behind position %d: investigating with what they hold", head)
            # CONCURRENCY drivers take the investigations in turn from one queue (a task per
            # investigation waiting on a semaphore made each acquire scan all the waiting ones).
            # Every driver finishes before the stretch is over (no exception cuts the others
            # short), so a retry never drives an investigation that is still being driven.
            works = deque(by_investigation.values())

            async def driver(n: int) -> None:
                while works:
                    if n >= YIELDING and not self._stopping and self._requests_waiting():
                        await asyncio.sleep(_YIELD_SECONDS)
                        continue
                    failure = await self._drive(works.popleft())
                    if failure is not None:
                        failed.append(failure)

            await asyncio.gather(*(driver(n) for n in range(min(CONCURRENCY, len(by_investigation)))))
        if self._stopping:
            return True
        reached = min(failed) - 1 if failed else triggers[-1].id if len(triggers) == _BATCH else head
        if reached > self.position:
            self.position = reached
            await self._thread(self.save_position, self.position)
        if failed:
            raise RuntimeError(f"the investigation triggered at position {min(failed)} failed; retrying from there")
        return True

    async def _drive(self, work: list[tuple[int, Any]]) -> int | None:
        """Handle one investigation's triggers in log order; the position of the first one that
        failed (and was not given up on), or None."""
        for position, trigger in work:
            if self._stopping:
                return None
            try:
                if isinstance(trigger, _DETECTED_EVENT):
                    await self.investigate(trigger.originator_id, detected=trigger)
                    continue
                asked = await self._thread(self.store.find, Investigation, trigger.originator_id)
                if asked is not None:
                    await self.investigate(asked.incident_id)
            except Exception:
                self._failures[position] = self._failures.get(position, 0) + 1
                if self._failures[position] < _ATTEMPTS:
                    log.exception("the investigation triggered at position %d failed", position)
                    return position
                del self._failures[position]
                log.exception("the investigation triggered at position %d failed %d times: its run is"
                              " ended as failed", position, _ATTEMPTS)
                await self._abandon(trigger)
        return None

    async def _abandon(self, trigger: Any) -> None:
        """End the run a trigger started as failed, so one broken investigation holds up no other."""
        detected = isinstance(trigger, _DETECTED_EVENT)
        investigation_id = Investigation.create_id(trigger.originator_id) if detected else trigger.originator_id
        try:
            investigation = await self._thread(self.store.find, Investigation, investigation_id)
            if investigation is None and detected:  # it never got as far as the log: record that it failed
                investigation = _opened(trigger)
            if investigation is not None and investigation.running:
                investigation.finish_run("failed")
                await self._append(investigation)
                if self.metrics is not None:
                    self.metrics.investigations.labels("failed").inc()
        except Exception:
            log.exception("could not end the run of investigation %s", investigation_id)

    # -- one investigation ------------------------------------------------------------------

    async def investigate(self, incident_id: UUID, detected: Any = None) -> None:
        """Advance the incident's investigation until its run is finished; given the incident's
        Detected event, open it first, from that event alone (if it was opened before, the first
        append says so and the stored one is taken up instead).

        Local steps run one after another in one worker-thread call (`_run_local_steps`), are
        kept in hand and appended with the next step that waits on another system (it shows as
        running meanwhile) or with the end of the run: one or two commits per investigation.
        After a crash, steps that were not appended run again.
        """
        fact: IncidentFact | None = None
        investigation: Investigation | None
        if detected is not None:
            fact = IncidentFact(id=incident_id, title=detected.title, description=detected.description,
                                service=detected.service_name, severity=detected.severity,
                                detected_at=detected.detected_at)
            investigation = _opened(detected)
        else:
            investigation = await self._thread(self.store.find, Investigation, Investigation.create_id(incident_id))
        for _ in range(20):  # a bound on how often a run is re-decided after concurrent writes
            if investigation is None:
                return
            step = investigation.next_step()
            try:
                if step is None:
                    if investigation.running:
                        investigation.finish_run("completed")
                        await self._append(investigation)
                        if self.metrics is not None:
                            self.metrics.investigations.labels("completed").inc()
                    return
                if fact is None:
                    fact = await self._thread(self._incident_fact, investigation.incident_id)
                prometheus = None
                if not self._waits_on_llm(step):
                    # The steps up to the next one that waits on another system, in one thread hop.
                    try:
                        prometheus = await asyncio.wait_for(
                            self._thread(self._run_local_steps, investigation, fact), LOCAL_STEPS_TIMEOUT_SECONDS)
                    except TimeoutError:
                        raise RuntimeError(f"the local steps of the investigation of incident {incident_id}"
                                           f" did not finish in {LOCAL_STEPS_TIMEOUT_SECONDS:g} s") from None
                    step = investigation.next_step()
                if step is not None:
                    await self._run_step(investigation, step, fact, prometheus)
            except ConcurrentWriteError:
                # Someone else moved it: reload and decide again. Otherwise the aggregate in
                # hand is the stored one plus what this run has done, so no reload is needed.
                investigation = await self._thread(self.store.find, Investigation, Investigation.create_id(incident_id))
                if investigation is None:
                    raise RuntimeError(f"the investigation of incident {incident_id} could not be appended"
                                       " and is not in the log") from None
        raise RuntimeError(f"the investigation of incident {incident_id} kept being moved by another writer")

    def _incident_fact(self, incident_id: UUID) -> IncidentFact:
        incident = self.store.get(Incident, incident_id)
        return IncidentFact(id=incident.id, title=incident.title, description=incident.description,
                            service=incident.service_name, severity=incident.severity,
                            detected_at=incident.detected_at)

    async def _thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads,
                                                                functools.partial(fn, *args, **kwargs))

    async def _append(self, investigation: Investigation) -> None:
        await self._thread(self.store.append, investigation)

    def _waits_on_llm(self, step: str) -> bool:
        return step == "generate" and self.llm is not None

    def _run_local_steps(self, investigation: Investigation, fact: IncidentFact) -> dict[str, Any] | None:
        """Runs the run's next steps that wait on no other system, one after another in this
        worker thread (a thread hop and a timeout task per step cost ~150 us of CPU each), and
        records them on the aggregate in hand. Stops at the run's end or at a step that waits:
        generate with an LLM, or query_metrics when the project has a Prometheus (whose
        configuration it returns)."""
        while (step := investigation.next_step()) is not None and not self._waits_on_llm(step):
            started_at, started = self.now(), time.perf_counter()
            outcome: Found | Exception
            try:
                if step == "query_metrics":  # without a Prometheus there is nothing to wait on: skipped at once
                    prometheus = self.gather.prometheus_of(investigation.project_id)
                    if prometheus is not None:
                        return prometheus
                    raise Skipped(NO_PROMETHEUS)
                outcome = self._do_local(step, investigation, fact)
            except Exception as error:
                outcome = error
            self._record(investigation, step, fact, started_at, started, outcome)
        return None

    async def _run_step(self, investigation: Investigation, step: str, fact: IncidentFact,
                        prometheus: dict[str, Any] | None) -> None:
        """A step that waits on another system (any step, run on its own): it shows as running
        while it does (appended with the local steps before it)."""
        if (step == "query_metrics" and prometheus is not None) or self._waits_on_llm(step):
            investigation.start_step(step)
            await self._append(investigation)
        started_at, started = self.now(), time.perf_counter()
        outcome: Found | Exception
        try:
            outcome = await asyncio.wait_for(self._do(step, investigation, fact, prometheus), STEP_TIMEOUT_SECONDS)
        except Exception as error:
            outcome = error
        self._record(investigation, step, fact, started_at, started, outcome)

    def _record(self, investigation: Investigation, step: str, fact: IncidentFact, started_at: datetime,
                started: float, outcome: Found | Exception) -> None:
        """What a step found (or that it was skipped, or failed: the source is down or broken,
        and the run goes on) as the step's event, with what it implies for the run."""
        if isinstance(outcome, Skipped):
            investigation.record_step(step, "skipped", started_at, str(outcome), {})
        elif isinstance(outcome, Exception):
            log.warning("step %s of the investigation of %s failed: %s", step, fact.id, outcome)
            investigation.record_step(step, "failed", started_at, f"{type(outcome).__name__}: {outcome}"[:1000], {})
        else:
            investigation.record_step(step, "completed", started_at, outcome.summary, _builtins(outcome.facts))
            if step == "generate":
                for call in outcome.facts.get("llm_calls", []):
                    investigation.record_llm_request(**call)
                    if self.metrics is not None:
                        self.metrics.record_llm_call(call)
            generated = investigation.findings.get("generate")
            if step == "rank" and generated is not None:  # nothing to record when generation failed
                investigation.generate(outcome.facts["hypotheses"], engine=generated["engine"],
                                       evidence_fingerprint=generated["fingerprint"], cached=generated["cached"])
        if self.metrics is not None:
            self.metrics.step_seconds.labels(step, investigation.steps[step]).observe(time.perf_counter() - started)

    async def _do(self, step: str, investigation: Investigation, incident: IncidentFact,
                  prometheus: dict[str, Any] | None) -> Found:
        if step == "query_metrics":
            return await self.gather.metrics(incident, prometheus)
        return await self._thread(self._do_local, step, investigation, incident)

    def _do_local(self, step: str, investigation: Investigation, incident: IncidentFact) -> Found:
        project_id = investigation.project_id
        actions: dict[str, Callable[[], Found]] = {
            "collect_alerts": lambda: self.gather.alerts(incident, project_id),
            "change_events": lambda: self.gather.changes(incident, project_id),
            "similar_incidents": lambda: self._similar(incident, project_id),
            "generate": lambda: self._generate(investigation, incident),
            "rank": lambda: self._rank(investigation),  # a sort of what generate found
        }
        return actions[step]()

    def _similar(self, incident: IncidentFact, project_id: UUID) -> Found:
        found = self.gather.similar(incident, project_id)
        ranked, novelty = found.facts
        return Found(found.summary, {"incidents": ranked, "novelty": novelty})

    def evidence(self, investigation: Investigation, incident: IncidentFact) -> Evidence:
        """What the earlier steps of this run found, as the engines read it."""
        f = investigation.findings
        similar = f.get("similar_incidents", {})
        return Evidence(
            incident=incident,
            alerts=msgspec.convert(f.get("collect_alerts", []), list[AlertFact], strict=False),
            metrics=msgspec.convert(f.get("query_metrics", []), list[MetricFact], strict=False),
            metrics_status=investigation.steps.get("query_metrics", "skipped")
            .replace("completed", "ok"),  # type: ignore[arg-type]
            changes=msgspec.convert(f.get("change_events", []), list[ChangeFact], strict=False),
            similar=msgspec.convert(similar.get("incidents", []), list[SimilarFact], strict=False),
            novelty=similar.get("novelty", "new"),
        )

    def _generate(self, investigation: Investigation, incident: IncidentFact) -> Found:
        evidence = self.evidence(investigation, incident)
        key = fingerprint(evidence)
        namespace = investigation.id
        engine = self.llm.name if self.llm else "builtin"
        shared_key = (investigation.project_id, key)
        cached = self._cached(investigation.project_id, key)
        if cached is None:  # the read models have hypotheses only once a run ends: ask the runs in flight
            cached = self._in_flight.wait_or_claim(shared_key, STEP_TIMEOUT_SECONDS)
        if cached is not None:
            hypotheses, saved, engine = cached
            calls = []
            if self.llm is not None:  # a cache hit of the LLM engine is accounted as the call it avoided
                calls.append({"model": self.llm.model, "request_type": "hypothesis", "prompt_tokens": 0,
                              "completion_tokens": 0, "cost_usd": "0", "cached": True, "latency_ms": 0.0,
                              "success": True, "saved_usd": str(saved)})
            return Found(f"{len(hypotheses)} hypotheses reused from an investigation with identical evidence",
                         {"hypotheses": hypotheses, "engine": engine, "fingerprint": key, "cached": True,
                          "llm_calls": calls})
        result = None
        try:
            calibration = self.gather.calibration(investigation.project_id)
            if self.llm is None:
                hypotheses = generate_hypotheses(evidence, calibration, namespace)
                made: list[LLMCall] = []
            else:
                hypotheses, made, engine = self.llm.generate(evidence, calibration, namespace)
            result = (hypotheses, sum((c.cost_usd for c in made), Decimal(0)), engine)
        finally:
            self._in_flight.done(shared_key, result)
        llm_calls = [{"model": c.model, "request_type": "hypothesis", "prompt_tokens": c.prompt_tokens,
                      "completion_tokens": c.completion_tokens, "cost_usd": str(c.cost_usd), "cached": False,
                      "latency_ms": c.latency_ms, "success": c.success, "saved_usd": "0"} for c in made]
        top = hypotheses[0] if hypotheses else None
        summary = (f"{len(hypotheses)} hypotheses from the {engine} engine; top: {top['claim']} "
                   f"({top['confidence_score']:.0%})" if top else "no hypotheses")
        return Found(summary, {"hypotheses": hypotheses, "engine": engine, "fingerprint": key, "cached": False,
                               "llm_calls": llm_calls})

    def _cached(self, project_id: UUID, key: str) -> tuple[list[dict[str, Any]], Decimal, str] | None:
        """Earlier hypotheses from identical evidence, and what their LLM calls cost (what reuse saves)."""
        row = self.db.fetch_one(
            "SELECT incident_id, run FROM hypotheses WHERE project_id = :project_id"
            " AND evidence_fingerprint = :key ORDER BY created_at DESC LIMIT 1",
            {"project_id": project_id, "key": key}, plan_now=True,
        )
        if row is None:
            return None
        rows = self.db.fetch_all(
            "SELECT category, claim, description, confidence_score, confidence_lower, confidence_upper,"
            " supporting_evidence, contradicting_evidence, recommendation FROM hypotheses"
            " WHERE incident_id = :incident_id AND run = :run ORDER BY rank",
            {"incident_id": row["incident_id"], "run": row["run"]},
        )
        if not rows:
            return None
        # What reusing them saves is what they cost: the calls made for them, or, if they were
        # themselves reused, what that reuse saved.
        costs = self.db.fetch_all(
            "SELECT cost_usd, saved_usd, cached FROM llm_requests WHERE incident_id = :incident_id AND run = :run",
            {"incident_id": row["incident_id"], "run": row["run"]},
        )
        saved = sum((Decimal(str(c["saved_usd"] if c["cached"] else c["cost_usd"])) for c in costs), Decimal(0))
        hypotheses = [{**r, "supporting_evidence": msgspec.json.decode(r["supporting_evidence"]),
                       "contradicting_evidence": msgspec.json.decode(r["contradicting_evidence"])} for r in rows]
        return hypotheses, saved, self.llm.name if self.llm else "builtin"

    def _rank(self, investigation: Investigation) -> Found:
        generated = investigation.findings.get("generate", {})
        namespace = uuid5(investigation.id, f"run-{investigation.run}")
        hypotheses = sorted(generated.get("hypotheses", []), key=lambda h: -float(h["confidence_score"]))
        abstain = [h for h in hypotheses if h.get("recommendation") == "inconclusive"]
        ordered = abstain + [h for h in hypotheses if h not in abstain]
        ranked = []
        for rank, hypothesis in enumerate(ordered[:5], start=1):
            ranked.append({**hypothesis, "rank": rank, "id": str(uuid5(namespace, f"{rank}:{hypothesis['category']}"))})
        summary = (f"ranked {len(ranked)} hypotheses; first: {ranked[0]['claim']}" if ranked
                   else "nothing to rank")
        return Found(summary, {"hypotheses": ranked})
