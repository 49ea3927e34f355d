"""An incident's investigation: a workflow of recorded steps, its hypotheses, feedback and LLM calls.

One per incident (its id derives from the incident's). Each run walks the steps in order;
every finished step is one event (StepRecorded, with its start time), and a step that waits on
another system is also recorded as it starts, so a crashed investigator resumes at the first
step of the current run that has not finished.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from copilot.domain.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = ["FEEDBACK", "STEPS", "Investigation"]

STEPS: Final = ("collect_alerts", "query_metrics", "change_events", "similar_incidents", "generate", "rank")
FEEDBACK: Final = ("confirmed", "rejected", "helpful", "not_helpful")
_DONE: Final = frozenset({"completed", "failed", "skipped"})


class Investigation(Aggregate):
    @staticmethod
    def create_id(incident_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"/incidents/{incident_id}/investigation")

    @event("Opened")
    def __init__(self, incident_id: UUID, tenant_id: UUID, project_id: UUID) -> None:
        self.incident_id = incident_id
        self.tenant_id = tenant_id
        self.project_id = project_id
        self.run = 0
        self.running = False
        self.steps: dict[str, str] = {}  # step -> status, for the current run
        self.findings: dict[str, Any] = {}  # step -> findings, for the current run
        self.hypotheses: list[dict[str, Any]] = []
        self.feedback: dict[str, str] = {}  # hypothesis id (str) -> feedback

    # -- runs and steps ----------------------------------------------------------------------

    def start_run(self, trigger: str, by: UUID | None) -> None:
        if self.running:
            raise ConflictError("an investigation of this incident is already running")
        self._start_run(run=self.run + 1, trigger=trigger, by=by)

    @event("RunStarted")
    def _start_run(self, run: int, trigger: str, by: UUID | None) -> None:
        self.run = run
        self.running = True
        self.steps = {}
        self.findings = {}

    def next_step(self) -> str | None:
        """The first step of the current run that has not finished, or None when all have."""
        if not self.running:
            return None
        return next((step for step in STEPS if self.steps.get(step) not in _DONE), None)

    def _check_step(self, step: str) -> None:
        if not self.running or step not in STEPS:
            raise InvalidInputError(f"no running step {step!r}")

    def start_step(self, step: str) -> None:
        """A step that waits on another system is recorded as running while it does."""
        self._check_step(step)
        self._start_step(step=step, run=self.run)

    @event("StepStarted")
    def _start_step(self, step: str, run: int) -> None:
        self.steps[step] = "running"

    def record_step(self, step: str, status: str, started_at: datetime, summary: str,
                    findings: dict[str, Any] | list[Any]) -> None:
        """A finished step, one event: completed (with its findings), skipped or failed (with why)."""
        self._check_step(step)
        if status not in _DONE:
            raise InvalidInputError(f"a step ends {', '.join(sorted(_DONE))}, not {status!r}")
        self._step_recorded(step=step, run=self.run, status=status, started_at=started_at, summary=summary,
                            findings=findings if status == "completed" else {})

    @event("StepRecorded")
    def _step_recorded(self, step: str, run: int, status: str, started_at: datetime, summary: str,
                       findings: dict[str, Any] | list[Any]) -> None:
        self.steps[step] = status
        if status == "completed":
            self.findings[step] = findings

    # Logs written before StepRecorded end a step with one of these three; they are replayed as such.

    @event("StepCompleted")
    def _complete_step(self, step: str, run: int, summary: str, findings: dict[str, Any]) -> None:
        self.steps[step] = "completed"
        self.findings[step] = findings

    @event("StepSkipped")
    def _skip_step(self, step: str, run: int, reason: str) -> None:
        self.steps[step] = "skipped"

    @event("StepFailed")
    def _fail_step(self, step: str, run: int, error: str) -> None:
        self.steps[step] = "failed"

    # -- results -----------------------------------------------------------------------------

    def generate(self, hypotheses: list[dict[str, Any]], engine: str, evidence_fingerprint: str,
                 cached: bool) -> None:
        if not self.running:
            raise InvalidInputError("no run to record hypotheses for")
        self._generated(run=self.run, hypotheses=hypotheses, engine=engine,
                        evidence_fingerprint=evidence_fingerprint, cached=cached)

    @event("HypothesesGenerated")
    def _generated(self, run: int, hypotheses: list[dict[str, Any]], engine: str, evidence_fingerprint: str,
                   cached: bool) -> None:
        self.hypotheses = hypotheses

    @event("RunFinished")
    def finish_run(self, outcome: str) -> None:
        self.running = False

    def record_llm_request(
        self, model: str, request_type: str, prompt_tokens: int, completion_tokens: int, cost_usd: str,
        cached: bool, latency_ms: float, success: bool, saved_usd: str,
    ) -> None:
        """Account for one LLM call (or a cache hit that avoided one); money as exact decimal strings."""
        self._llm_request(run=self.run, model=model, request_type=request_type, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens, cost_usd=cost_usd, cached=cached,
                          latency_ms=latency_ms, success=success, saved_usd=saved_usd)

    @event("LLMRequestCompleted")
    def _llm_request(
        self, run: int, model: str, request_type: str, prompt_tokens: int, completion_tokens: int, cost_usd: str,
        cached: bool, latency_ms: float, success: bool, saved_usd: str,
    ) -> None:
        pass

    def give_feedback(self, hypothesis_id: UUID, feedback: str, comment: str | None, by: UUID) -> None:
        if feedback not in FEEDBACK:
            raise InvalidInputError(f"feedback must be one of {', '.join(FEEDBACK)}")
        hypothesis = next((h for h in self.hypotheses if h["id"] == str(hypothesis_id)), None)
        if hypothesis is None:
            raise NotFoundError("hypothesis not found")
        self._feedback(hypothesis_id=str(hypothesis_id), category=hypothesis["category"], feedback=feedback,
                       comment=comment, by=by)

    @event("HypothesisFeedbackGiven")
    def _feedback(self, hypothesis_id: str, category: str, feedback: str, comment: str | None, by: UUID) -> None:
        self.feedback[hypothesis_id] = feedback
