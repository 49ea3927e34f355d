"""Incidents as the API lists them, the seconds spent in each state, and the audit trail."""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.domain import DomainEvent

from copilot.domain.incident import STATE_TIMESTAMPS, Incident
from copilot.projections.base import Handler, Projection, event_type
from copilot.projections.db import Transaction

__all__ = ["IncidentsProjection"]

_AUDIT = (
    "INSERT INTO incident_events (position, incident_id, type, occurred_at, actor_id, change) "
    "VALUES (:position, :incident_id, :type, :at, :actor, :change) ON CONFLICT (position) DO NOTHING"
)


class IncidentsProjection(Projection):
    name = "incidents"
    tables = ("incidents", "incident_state_time", "incident_events")

    def handlers(self) -> dict[type[DomainEvent], Handler]:
        return {
            event_type(Incident, "Detected"): self._detected,
            event_type(Incident, "StateChanged"): self._state_changed,
            event_type(Incident, "SeverityChanged"): self._severity_changed,
            event_type(Incident, "AlertLinked"): self._alert_linked,
        }

    def _audit(self, tx: Transaction, e: Any, actor: Any, change: dict[str, Any]) -> None:
        tx.execute(_AUDIT, {
            "position": self.position, "incident_id": e.originator_id, "type": f"Incident.{type(e).__name__}",
            "at": e.timestamp, "actor": actor, "change": msgspec.json.encode(change).decode(),
        })

    def _detected(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "INSERT INTO incidents (id, tenant_id, project_id, title, description, service_name, severity, state,"
            " detected_at, detected_by, state_since, created_at, updated_at, position) VALUES (:id, :tenant_id,"
            " :project_id, :title, :description, :service_name, :severity, 'detected', :detected_at, :by,"
            " :detected_at, :at, :at, :position) ON CONFLICT (id) DO NOTHING",
            {"id": e.originator_id, "tenant_id": e.tenant_id, "project_id": e.project_id, "title": e.title,
             "description": e.description, "service_name": e.service_name, "severity": e.severity,
             "detected_at": e.detected_at, "by": e.detected_by, "at": e.timestamp, "position": self.position},
        )
        self._audit(tx, e, e.detected_by, {
            "title": e.title, "description": e.description, "service_name": e.service_name,
            "severity": e.severity, "detected_at": e.detected_at.isoformat(),
        })

    def _state_changed(self, tx: Transaction, e: Any) -> None:
        row = tx.fetch_one("SELECT state_since FROM incidents WHERE id = :id", {"id": e.originator_id})
        if row is not None:
            # Time in a state is measured between events, never against the wall clock.
            seconds = max((e.timestamp - row["state_since"]).total_seconds(), 0.0)
            tx.execute(
                "INSERT INTO incident_state_time (incident_id, state, seconds) VALUES (:id, :state, :seconds) "
                "ON CONFLICT (incident_id, state) DO UPDATE SET seconds = incident_state_time.seconds"
                " + excluded.seconds",
                {"id": e.originator_id, "state": e.from_state, "seconds": seconds},
            )
        timestamp_column = STATE_TIMESTAMPS.get(e.to_state)
        first_entry = (
            f", {timestamp_column} = COALESCE({timestamp_column}, :at)" if timestamp_column else ""
        )
        reopened = int(e.to_state == "investigating" and e.from_state in ("resolved", "inconclusive"))
        tx.execute(
            f"UPDATE incidents SET state = :state, state_since = :at, updated_at = :at{first_entry},"
            " state_changes = state_changes + 1, reopen_count = reopen_count + :reopened WHERE id = :id",
            {"id": e.originator_id, "state": e.to_state, "at": e.timestamp, "reopened": reopened},
        )
        self._audit(tx, e, e.by, {"from": e.from_state, "to": e.to_state})

    def _severity_changed(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "UPDATE incidents SET severity = :severity, updated_at = :at WHERE id = :id",
            {"id": e.originator_id, "severity": e.to_severity, "at": e.timestamp},
        )
        self._audit(tx, e, e.by, {"from": e.from_severity, "to": e.to_severity})

    def _alert_linked(self, tx: Transaction, e: Any) -> None:
        tx.execute("UPDATE incidents SET updated_at = :at WHERE id = :id", {"id": e.originator_id, "at": e.timestamp})
        self._audit(tx, e, None, {
            "alert_id": str(e.alert_id), "fingerprint": e.fingerprint, "alert_name": e.alert_name,
            "severity": e.severity,
        })
