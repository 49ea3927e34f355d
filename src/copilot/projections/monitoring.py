"""Integrations and alerts as the API lists them."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEvent

from copilot.domain import Alert, Integration
from copilot.projections.base import Handler, Projection, event_type
from copilot.projections.base import json_text as _text
from copilot.projections.db import Transaction

__all__ = ["MonitoringProjection"]

class MonitoringProjection(Projection):
    name = "monitoring"
    tables = ("integrations", "alerts")

    def handlers(self) -> dict[type[DomainEvent], Handler]:
        return {
            event_type(Integration, "Created"): self._integration_created,
            event_type(Integration, "Updated"): self._integration_updated,
            event_type(Integration, "Deleted"): self._integration_deleted,
            event_type(Integration, "WebhookTokenRotated"): self._touched,
            event_type(Integration, "ConnectionTested"): self._integration_tested,
            event_type(Alert, "Fired"): self._alert_fired,
            event_type(Alert, "Refired"): self._alert_refired,
            event_type(Alert, "Resolved"): self._alert_resolved,
            event_type(Alert, "LinkedToIncident"): self._alert_linked,
        }

    # -- integrations ------------------------------------------------------------------------

    def _integration_created(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "INSERT INTO integrations (id, tenant_id, project_id, name, type, config, has_credentials, enabled,"
            " created_by, created_at, updated_at) VALUES (:id, :tenant_id, :project_id, :name, :type, :config,"
            " :has_credentials, :enabled, :by, :at, :at) ON CONFLICT (id) DO NOTHING",
            {"id": e.originator_id, "tenant_id": e.tenant_id, "project_id": e.project_id, "name": e.name,
             "type": e.kind, "config": _text(e.config), "has_credentials": e.credentials is not None,
             "enabled": e.enabled, "by": e.created_by, "at": e.timestamp},
        )

    def _integration_updated(self, tx: Transaction, e: Any) -> None:
        changes = e.changes
        sets = ["updated_at = :at"]
        params: dict[str, Any] = {"id": e.originator_id, "at": e.timestamp}
        if "name" in changes:
            sets.append("name = :name")
            params["name"] = changes["name"]
        if "config" in changes:
            sets.append("config = :config")
            params["config"] = _text(changes["config"])
        if "credentials" in changes:
            sets.append("has_credentials = :has_credentials")
            params["has_credentials"] = changes["credentials"] is not None
        if "enabled" in changes:
            sets.append("enabled = :enabled")
            params["enabled"] = changes["enabled"]
        tx.execute(f"UPDATE integrations SET {', '.join(sets)} WHERE id = :id", params)

    def _integration_deleted(self, tx: Transaction, e: Any) -> None:
        tx.execute("UPDATE integrations SET deleted_at = :at, updated_at = :at WHERE id = :id",
                   {"id": e.originator_id, "at": e.timestamp})

    def _touched(self, tx: Transaction, e: Any) -> None:
        tx.execute("UPDATE integrations SET updated_at = :at WHERE id = :id",
                   {"id": e.originator_id, "at": e.timestamp})

    def _integration_tested(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "UPDATE integrations SET last_test_at = :at, last_test_success = :success, last_test_detail = :detail"
            " WHERE id = :id",
            {"id": e.originator_id, "at": e.timestamp, "success": e.success, "detail": e.detail},
        )

    # -- alerts ------------------------------------------------------------------------------

    def _alert_fired(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "INSERT INTO alerts (id, tenant_id, project_id, integration_id, fingerprint, name, severity, service,"
            " description, labels, annotations, status, starts_at, created_at, updated_at) VALUES (:id, :tenant_id,"
            " :project_id, :integration_id, :fingerprint, :name, :severity, :service, :description, :labels,"
            " :annotations, 'firing', :starts_at, :at, :at) ON CONFLICT (id) DO NOTHING",
            {"id": e.originator_id, "tenant_id": e.tenant_id, "project_id": e.project_id,
             "integration_id": e.integration_id, "fingerprint": e.fingerprint, "name": e.name,
             "severity": e.severity, "service": e.service, "description": e.description,
             "labels": _text(e.labels), "annotations": _text(e.annotations), "starts_at": e.starts_at,
             "at": e.timestamp},
        )

    def _alert_refired(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "UPDATE alerts SET status = 'firing', severity = :severity, description = :description,"
            " labels = :labels, annotations = :annotations, starts_at = :starts_at, ends_at = NULL,"
            " incident_id = NULL, fired_count = fired_count + 1, updated_at = :at WHERE id = :id",
            {"id": e.originator_id, "severity": e.severity, "description": e.description,
             "labels": _text(e.labels), "annotations": _text(e.annotations), "starts_at": e.starts_at,
             "at": e.timestamp},
        )

    def _alert_resolved(self, tx: Transaction, e: Any) -> None:
        tx.execute("UPDATE alerts SET status = 'resolved', ends_at = :ends_at, updated_at = :at WHERE id = :id",
                   {"id": e.originator_id, "ends_at": e.ends_at, "at": e.timestamp})

    def _alert_linked(self, tx: Transaction, e: Any) -> None:
        tx.execute("UPDATE alerts SET incident_id = :incident_id, updated_at = :at WHERE id = :id",
                   {"id": e.originator_id, "incident_id": e.incident_id, "at": e.timestamp})
