"""The analytics read model: each LLM call and each hypothesis generation, exact to the micro-cent."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEvent

from copilot.domain.investigation import Investigation
from copilot.projections.base import Facts, Handler, Projection, event_type
from copilot.projections.db import Transaction

__all__ = ["AnalyticsProjection"]


class AnalyticsProjection(Projection):
    """Self-contained: it keeps its own map of investigations, so it rebuilds alone."""

    name = "analytics"
    tables = ("analytics_investigations", "llm_requests", "hypothesis_generations")

    def __init__(self) -> None:
        # investigation id -> its incident, project and tenant, fixed when it is opened
        self._scopes: Facts[Any, dict[str, Any]] = Facts()
        super().__init__()

    def handlers(self) -> dict[type[DomainEvent], Handler]:
        return {
            event_type(Investigation, "Opened"): self._opened,
            event_type(Investigation, "LLMRequestCompleted"): self._llm_request,
            event_type(Investigation, "HypothesesGenerated"): self._generated,
        }

    def _opened(self, tx: Transaction, e: Any) -> None:
        self._scopes.put(e.originator_id, {"incident_id": e.incident_id, "project_id": e.project_id,
                                           "tenant_id": e.tenant_id})
        tx.execute(
            "INSERT INTO analytics_investigations (investigation_id, incident_id, project_id, tenant_id)"
            " VALUES (:id, :incident_id, :project_id, :tenant_id) ON CONFLICT (investigation_id) DO NOTHING",
            {"id": e.originator_id, "incident_id": e.incident_id, "project_id": e.project_id,
             "tenant_id": e.tenant_id},
        )

    def _scope(self, tx: Transaction, investigation_id: Any) -> dict[str, Any]:
        known = self._scopes.get(investigation_id)
        if known is not None:
            return known
        row = tx.fetch_one(
            "SELECT incident_id, project_id, tenant_id FROM analytics_investigations WHERE investigation_id = :id",
            {"id": investigation_id},
        )
        if row is None:  # the log always opens an investigation before it records anything for it
            raise LookupError(f"investigation {investigation_id} was never opened")
        return self._scopes.put(investigation_id, row)

    def _llm_request(self, tx: Transaction, e: Any) -> None:
        scope = self._scope(tx, e.originator_id)
        tx.execute(
            "INSERT INTO llm_requests (position, incident_id, run, project_id, tenant_id, model, request_type,"
            " prompt_tokens, completion_tokens, cost_usd, saved_usd, cached, success, latency_ms, occurred_at)"
            " VALUES (:position, :incident_id, :run, :project_id, :tenant_id, :model, :request_type,"
            " :prompt_tokens, :completion_tokens, :cost, :saved, :cached, :success, :latency_ms, :at)"
            " ON CONFLICT (position) DO NOTHING",
            {**scope, "position": self.position, "run": e.run, "model": e.model, "request_type": e.request_type,
             "prompt_tokens": e.prompt_tokens, "completion_tokens": e.completion_tokens, "cost": e.cost_usd,
             "saved": e.saved_usd, "cached": e.cached, "success": e.success, "latency_ms": e.latency_ms,
             "at": e.timestamp},
        )

    def _generated(self, tx: Transaction, e: Any) -> None:
        scope = self._scope(tx, e.originator_id)
        tx.execute(
            "INSERT INTO hypothesis_generations (position, incident_id, run, project_id, engine, cached, occurred_at)"
            " VALUES (:position, :incident_id, :run, :project_id, :engine, :cached, :at)"
            " ON CONFLICT (position) DO NOTHING",
            {"position": self.position, "incident_id": scope["incident_id"], "project_id": scope["project_id"],
             "run": e.run, "engine": e.engine, "cached": e.cached, "at": e.timestamp},
        )
