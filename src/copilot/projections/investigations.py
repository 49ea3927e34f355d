"""Investigations as the API shows them: runs, steps, hypotheses with feedback, and change events."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEvent

from copilot.domain.change import Change
from copilot.domain.investigation import STEPS, Investigation
from copilot.projections.base import Facts, Handler, Projection, event_type
from copilot.projections.base import json_text as _text
from copilot.projections.db import Transaction

__all__ = ["InvestigationsProjection"]


class InvestigationsProjection(Projection):
    name = "investigations"
    tables = ("changes", "investigations", "investigation_steps", "hypotheses")

    def __init__(self) -> None:
        # investigation id -> (incident id, project id), fixed when it is opened
        self._known: Facts[Any, tuple[Any, Any]] = Facts()
        super().__init__()

    def handlers(self) -> dict[type[DomainEvent], Handler]:
        i = Investigation
        return {
            event_type(Change, "Recorded"): self._change_recorded,
            event_type(i, "Opened"): self._opened,
            event_type(i, "RunStarted"): self._run_started,
            event_type(i, "StepStarted"): self._step_started,
            event_type(i, "StepRecorded"): self._step_recorded,
            event_type(i, "StepCompleted"): self._step_completed,
            event_type(i, "StepSkipped"): self._step_skipped,
            event_type(i, "StepFailed"): self._step_failed,
            event_type(i, "HypothesesGenerated"): self._generated,
            event_type(i, "RunFinished"): self._run_finished,
            event_type(i, "HypothesisFeedbackGiven"): self._feedback,
        }

    def _change_recorded(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "INSERT INTO changes (id, tenant_id, project_id, service_name, kind, description, version, occurred_at,"
            " recorded_by, integration_id, created_at) VALUES (:id, :tenant_id, :project_id, :service_name, :kind,"
            " :description, :version, :occurred_at, :recorded_by, :integration_id, :at) ON CONFLICT (id) DO NOTHING",
            {"id": e.originator_id, "tenant_id": e.tenant_id, "project_id": e.project_id,
             "service_name": e.service_name, "kind": e.kind, "description": e.description, "version": e.release,
             "occurred_at": e.occurred_at, "recorded_by": e.recorded_by, "integration_id": e.integration_id,
             "at": e.timestamp},
        )

    def _incident_of(self, tx: Transaction, investigation_id: Any) -> Any:
        known = self._known.get(investigation_id)
        if known is not None:
            return known
        row = tx.fetch_one("SELECT incident_id, project_id FROM investigations WHERE investigation_id = :id",
                           {"id": investigation_id})
        if row is None:
            return (None, None)
        return self._remember(investigation_id, row["incident_id"], row["project_id"])

    def _remember(self, investigation_id: Any, incident_id: Any, project_id: Any) -> tuple[Any, Any]:
        return self._known.put(investigation_id, (incident_id, project_id))

    def _opened(self, tx: Transaction, e: Any) -> None:
        self._remember(e.originator_id, e.incident_id, e.project_id)
        tx.execute(
            "INSERT INTO investigations (incident_id, investigation_id, project_id, run, status, trigger,"
            " started_at) VALUES (:incident_id, :id, :project_id, 0, 'new', '', :at)"
            " ON CONFLICT (incident_id) DO NOTHING",
            {"incident_id": e.incident_id, "id": e.originator_id, "project_id": e.project_id, "at": e.timestamp},
        )

    def _run_started(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "UPDATE investigations SET run = :run, status = 'running', trigger = :trigger, started_at = :at,"
            " finished_at = NULL, engine = NULL, cached = NULL WHERE investigation_id = :id",
            {"id": e.originator_id, "run": e.run, "trigger": e.trigger, "at": e.timestamp},
        )

    def _step_started(self, tx: Transaction, e: Any) -> None:
        incident_id, _ = self._incident_of(tx, e.originator_id)
        tx.execute(
            "INSERT INTO investigation_steps (incident_id, run, step, position, status, started_at)"
            " VALUES (:incident_id, :run, :step, :position, 'running', :at)"
            " ON CONFLICT (incident_id, run, step) DO UPDATE SET status = 'running', started_at = excluded.started_at",
            {"incident_id": incident_id, "run": e.run, "step": e.step, "position": STEPS.index(e.step),
             "at": e.timestamp},
        )

    def _finish_step(self, tx: Transaction, e: Any, status: str, summary: str, findings: Any,
                     started_at: Any = None) -> None:
        """The step's row; when it was recorded as running before, its start time stays."""
        incident_id, _ = self._incident_of(tx, e.originator_id)
        tx.execute(
            "INSERT INTO investigation_steps (incident_id, run, step, position, status, started_at, finished_at,"
            " summary, findings) VALUES (:incident_id, :run, :step, :position, :status, :started, :at, :summary,"
            " :findings) ON CONFLICT (incident_id, run, step) DO UPDATE SET status = excluded.status,"
            " finished_at = excluded.finished_at, summary = excluded.summary, findings = excluded.findings",
            {"incident_id": incident_id, "run": e.run, "step": e.step, "position": STEPS.index(e.step),
             "status": status, "started": started_at or e.timestamp, "at": e.timestamp, "summary": summary,
             "findings": _text(findings)},
        )

    def _step_recorded(self, tx: Transaction, e: Any) -> None:
        self._finish_step(tx, e, e.status, e.summary, e.findings, e.started_at)

    # Older logs end a step with one of these three events.

    def _step_completed(self, tx: Transaction, e: Any) -> None:
        self._finish_step(tx, e, "completed", e.summary, e.findings)

    def _step_skipped(self, tx: Transaction, e: Any) -> None:
        self._finish_step(tx, e, "skipped", e.reason, {})

    def _step_failed(self, tx: Transaction, e: Any) -> None:
        self._finish_step(tx, e, "failed", e.error, {})

    def _generated(self, tx: Transaction, e: Any) -> None:
        incident_id, project_id = self._incident_of(tx, e.originator_id)
        tx.execute("DELETE FROM hypotheses WHERE incident_id = :incident_id AND run = :run",
                   {"incident_id": incident_id, "run": e.run})
        for h in e.hypotheses:
            tx.execute(
                "INSERT INTO hypotheses (id, incident_id, project_id, run, rank, category, claim, description,"
                " confidence_score, confidence_lower, confidence_upper, supporting_evidence, contradicting_evidence,"
                " recommendation, evidence_fingerprint, created_at) VALUES (:id, :incident_id, :project_id, :run,"
                " :rank, :category, :claim, :description, :score, :lower, :upper, :supporting, :contradicting,"
                " :recommendation, :fingerprint, :at)"
                " ON CONFLICT (id) DO NOTHING",
                {"id": h["id"], "incident_id": incident_id, "project_id": project_id, "run": e.run, "rank": h["rank"],
                 "category": h["category"], "claim": h["claim"], "description": h["description"],
                 "score": h["confidence_score"], "lower": h["confidence_lower"], "upper": h["confidence_upper"],
                 "supporting": _text(h["supporting_evidence"]), "contradicting": _text(h["contradicting_evidence"]),
                 "recommendation": h.get("recommendation"), "fingerprint": e.evidence_fingerprint,
                 "at": e.timestamp},
            )
        tx.execute("UPDATE investigations SET engine = :engine, cached = :cached WHERE investigation_id = :id",
                   {"id": e.originator_id, "engine": e.engine, "cached": e.cached})

    def _run_finished(self, tx: Transaction, e: Any) -> None:
        tx.execute("UPDATE investigations SET status = :status, finished_at = :at WHERE investigation_id = :id",
                   {"id": e.originator_id, "status": e.outcome, "at": e.timestamp})

    def _feedback(self, tx: Transaction, e: Any) -> None:
        tx.execute("UPDATE hypotheses SET user_feedback = :feedback, feedback_comment = :comment WHERE id = :id",
                   {"id": e.hypothesis_id, "feedback": e.feedback, "comment": e.comment})
