"""Alert ingestion: deduplicate by fingerprint, resolve, and correlate firing alerts into incidents."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from uuid import UUID

from eventsourcing.domain import Aggregate

from copilot.commands.store import EventStore, with_retries
from copilot.domain import Alert, Incident, Integration, Project, ServiceCorrelation, UnauthorizedError
from copilot.domain.alert import SEVERITY_RANK
from copilot.integrations.alert_formats import IncomingAlert
from copilot.security import hash_secret

__all__ = ["AlertHandlers", "IngestionReport"]


@dataclass
class IngestionReport:
    """What one webhook delivery did, alert by alert."""

    received: int = 0
    fired: int = 0
    repeated: int = 0
    resolved: int = 0
    incidents_opened: list[UUID] = field(default_factory=list)
    incidents_joined: list[UUID] = field(default_factory=list)
    position: int = 0


class AlertHandlers:
    def __init__(self, store: EventStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.clock = clock

    def authenticate(self, integration_id: UUID, token: str) -> Integration:
        """The integration this webhook token belongs to; 401 for anything else (even a missing one)."""
        integration = self.store.find(Integration, integration_id)
        expected = integration.webhook_token_hash if integration and not integration.deleted else hash_secret("")
        if integration is None or integration.deleted or not hmac.compare_digest(expected, hash_secret(token)):
            raise UnauthorizedError("invalid webhook token for this integration")
        if not integration.enabled:
            raise UnauthorizedError("this integration is disabled")
        return integration

    def ingest(self, integration: Integration, alerts: Sequence[IncomingAlert]) -> IngestionReport:
        report = IngestionReport(received=len(alerts))
        project = self.store.get(Project, integration.project_id)
        for alert in alerts:
            # Each attempt reports into a fresh record, so a retried alert is counted once.
            outcome = with_retries(partial(self._one, integration, project, alert))
            report.fired += outcome.fired
            report.repeated += outcome.repeated
            report.resolved += outcome.resolved
            report.incidents_opened += outcome.incidents_opened
            report.incidents_joined += outcome.incidents_joined
            report.position = max(report.position, outcome.position)
        return report

    def _one(self, integration: Integration, project: Project, incoming: IncomingAlert) -> IngestionReport:
        report = IngestionReport()
        alert_id = Alert.create_id(project.id, incoming.fingerprint)
        alert = self.store.find(Alert, alert_id)
        if incoming.status == "resolved":
            if alert is not None and alert.resolve(incoming.ends_at or self.clock()):
                report.resolved += 1
                report.position = self.store.append(alert)
                return report
            report.repeated += 1
            return report
        if alert is None:
            alert = Alert(  # its id derives from project and fingerprint: the dedup key
                tenant_id=integration.tenant_id, project_id=project.id,
                integration_id=integration.id, fingerprint=incoming.fingerprint, name=incoming.name,
                severity=incoming.severity, service=incoming.service, description=incoming.description,
                labels=incoming.labels, annotations=incoming.annotations, starts_at=incoming.starts_at,
            )
        elif not alert.fire({
            "severity": incoming.severity, "description": incoming.description, "labels": incoming.labels,
            "annotations": incoming.annotations, "starts_at": incoming.starts_at,
        }):
            report.repeated += 1  # still firing: a repeat notification changes nothing
            return report
        report.fired += 1
        changed: list[Aggregate] = [alert]
        if SEVERITY_RANK[incoming.severity] >= SEVERITY_RANK[project.alert_min_severity]:
            changed += self._correlate(project, alert, incoming, report)
        report.position = self.store.append(*changed)
        return report

    def _correlate(self, project: Project, alert: Alert, incoming: IncomingAlert,
                   report: IngestionReport) -> list[Aggregate]:
        now = self.clock()
        slot = self.store.find(ServiceCorrelation, ServiceCorrelation.create_id(project.id, incoming.service))
        changed: list[Aggregate] = []
        if slot is None:
            slot = ServiceCorrelation(project_id=project.id, service=incoming.service)
        candidate_id = slot.joinable(now, timedelta(minutes=project.alert_window_minutes))
        incident = self.store.find(Incident, candidate_id) if candidate_id else None
        if incident is not None and incident.is_open:
            report.incidents_joined.append(incident.id)
        else:
            incident = Incident(
                tenant_id=project.tenant_id, project_id=project.id,
                title=f"{incoming.name} on {incoming.service}"[:500], description=incoming.description,
                service_name=incoming.service, severity=incoming.severity,
                detected_at=min(incoming.starts_at, now), detected_by=None,
            )
            slot.incident_opened(incident_id=incident.id, opened_at=now)
            changed.append(slot)
            report.incidents_opened.append(incident.id)
        incident.link_alert(alert.id, alert.fingerprint, alert.name, alert.severity)
        alert.link_to_incident(incident.id)
        changed.append(incident)
        return changed
