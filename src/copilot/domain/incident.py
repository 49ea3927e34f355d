"""An incident and its lifecycle: the state machine of DESIGN.md, nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from copilot.domain.errors import ConflictError, InvalidInputError

__all__ = ["SEVERITIES", "STATES", "STATE_TIMESTAMPS", "TRANSITIONS", "Incident"]

SEVERITIES: Final = ("critical", "high", "medium", "low", "info")
STATES: Final = ("detected", "acknowledged", "investigating", "mitigated", "resolved", "inconclusive", "learned")

# The allowed moves; anything else is refused, a move to the current state is a no-op.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "detected": frozenset({"acknowledged", "investigating", "mitigated", "resolved", "inconclusive"}),
    "acknowledged": frozenset({"investigating", "mitigated", "resolved", "inconclusive"}),
    "investigating": frozenset({"mitigated", "resolved", "inconclusive"}),
    "mitigated": frozenset({"investigating", "resolved", "inconclusive"}),
    "resolved": frozenset({"learned", "investigating"}),
    "inconclusive": frozenset({"investigating", "learned"}),
    "learned": frozenset(),
}

# The timestamp set by the first entry into a state.
STATE_TIMESTAMPS: Final[dict[str, str]] = {
    "acknowledged": "acknowledged_at",
    "investigating": "investigating_started_at",
    "mitigated": "mitigated_at",
    "resolved": "resolved_at",
    "learned": "learned_at",
}

# Moving back to investigating from a closed state reopens the incident.
_REOPENING_FROM: Final = frozenset({"resolved", "inconclusive"})


class Incident(Aggregate):
    @event("Detected")
    def __init__(
        self,
        tenant_id: UUID,
        project_id: UUID,
        title: str,
        description: str,
        service_name: str,
        severity: str,
        detected_at: datetime,
        detected_by: UUID | None,
    ) -> None:
        if severity not in SEVERITIES:
            raise InvalidInputError(f"severity must be one of {', '.join(SEVERITIES)}")
        self.tenant_id = tenant_id
        self.project_id = project_id
        self.title = title
        self.description = description
        self.service_name = service_name
        self.severity = severity
        self.detected_at = detected_at
        self.detected_by = detected_by
        self.state = "detected"
        self.acknowledged_at: datetime | None = None
        self.investigating_started_at: datetime | None = None
        self.mitigated_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.learned_at: datetime | None = None
        self.reopen_count = 0
        self.alert_ids: list[UUID] = []

    def change_state(self, to_state: str, by: UUID | None) -> bool:
        """Move to `to_state`; False when already there (nothing recorded)."""
        if to_state not in STATES:
            raise InvalidInputError(f"state must be one of {', '.join(STATES)}")
        if to_state == self.state:
            return False
        if to_state not in TRANSITIONS[self.state]:
            raise ConflictError(f"cannot move an incident from {self.state} to {to_state}")
        self.trigger_event(self.StateChanged, from_state=self.state, to_state=to_state, by=by)
        return True

    class StateChanged(Aggregate.Event):
        from_state: str
        to_state: str
        by: UUID | None

        def apply(self, aggregate: Incident) -> None:
            if self.to_state == "investigating" and self.from_state in _REOPENING_FROM:
                aggregate.reopen_count += 1
            aggregate.state = self.to_state
            field = STATE_TIMESTAMPS.get(self.to_state)
            if field is not None and getattr(aggregate, field) is None:
                setattr(aggregate, field, self.timestamp)

    def change_severity(self, severity: str, by: UUID | None) -> bool:
        if severity not in SEVERITIES:
            raise InvalidInputError(f"severity must be one of {', '.join(SEVERITIES)}")
        if severity == self.severity:
            return False
        self._change_severity(from_severity=self.severity, to_severity=severity, by=by)
        return True

    @event("SeverityChanged")
    def _change_severity(self, from_severity: str, to_severity: str, by: UUID | None) -> None:
        self.severity = to_severity

    def link_alert(self, alert_id: UUID, fingerprint: str, alert_name: str, severity: str) -> bool:
        """Attach an alert as evidence; False when it already is."""
        if alert_id in self.alert_ids:
            return False
        self._link_alert(alert_id=alert_id, fingerprint=fingerprint, alert_name=alert_name, severity=severity)
        return True

    @event("AlertLinked")
    def _link_alert(self, alert_id: UUID, fingerprint: str, alert_name: str, severity: str) -> None:
        self.alert_ids.append(alert_id)

    @property
    def is_open(self) -> bool:
        return self.state in ("detected", "acknowledged", "investigating", "mitigated")
