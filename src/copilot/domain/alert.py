"""An alert from a monitoring tool: one aggregate per (project, fingerprint), so repeats deduplicate."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

__all__ = ["SEVERITY_RANK", "Alert"]

SEVERITY_RANK: Final = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class Alert(Aggregate):
    @staticmethod
    def create_id(project_id: UUID, fingerprint: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/projects/{project_id}/alerts/{fingerprint}")

    @event("Fired")
    def __init__(
        self,
        tenant_id: UUID,
        project_id: UUID,
        integration_id: UUID,
        fingerprint: str,
        name: str,
        severity: str,
        service: str,
        description: str,
        labels: dict[str, str],
        annotations: dict[str, str],
        starts_at: datetime,
    ) -> None:
        self.tenant_id = tenant_id
        self.project_id = project_id
        self.integration_id = integration_id
        self.fingerprint = fingerprint
        self.name = name
        self.severity = severity
        self.service = service
        self.description = description
        self.labels = labels
        self.annotations = annotations
        self.starts_at = starts_at
        self.ends_at: datetime | None = None
        self.status = "firing"
        self.incident_id: UUID | None = None

    def fire(self, notification: dict[str, Any]) -> bool:
        """A firing notification: True when it starts a new episode (it was resolved), else a repeat."""
        if self.status == "firing":
            return False
        self._refire(
            severity=notification["severity"], description=notification["description"],
            labels=notification["labels"], annotations=notification["annotations"],
            starts_at=notification["starts_at"],
        )
        return True

    @event("Refired")
    def _refire(
        self, severity: str, description: str, labels: dict[str, str], annotations: dict[str, str],
        starts_at: datetime,
    ) -> None:
        self.severity = severity
        self.description = description
        self.labels = labels
        self.annotations = annotations
        self.starts_at = starts_at
        self.ends_at = None
        self.status = "firing"
        self.incident_id = None  # a new episode is correlated afresh

    def resolve(self, ends_at: datetime) -> bool:
        if self.status == "resolved":
            return False
        self._resolve(ends_at=ends_at)
        return True

    @event("Resolved")
    def _resolve(self, ends_at: datetime) -> None:
        self.status = "resolved"
        self.ends_at = ends_at

    def link_to_incident(self, incident_id: UUID) -> None:
        if self.incident_id != incident_id:
            self._link(incident_id=incident_id)

    @event("LinkedToIncident")
    def _link(self, incident_id: UUID) -> None:
        self.incident_id = incident_id
