"""Correlation of alerts into incidents: one incident per outage of a service, not one per alert.

A `ServiceCorrelation` per (project, service) remembers the incident its alerts last opened.
Two alerts of one service arriving at once race on this aggregate's version, so exactly one
of them opens the incident and the other joins it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from copilot.domain.alert import SEVERITY_RANK
from copilot.domain.errors import InvalidInputError

__all__ = ["DEFAULT_MIN_SEVERITY", "DEFAULT_WINDOW_MINUTES", "OPEN_STATES", "ServiceCorrelation",
           "validate_rule"]

DEFAULT_MIN_SEVERITY: Final = "high"
DEFAULT_WINDOW_MINUTES: Final = 30
OPEN_STATES: Final = frozenset({"detected", "acknowledged", "investigating", "mitigated"})


def validate_rule(min_severity: str, window_minutes: int) -> None:
    if min_severity not in SEVERITY_RANK:
        raise InvalidInputError(f"min_severity must be one of {', '.join(SEVERITY_RANK)}")
    if not 1 <= window_minutes <= 24 * 60:
        raise InvalidInputError("window_minutes must be from 1 to 1440")


class ServiceCorrelation(Aggregate):
    @staticmethod
    def create_id(project_id: UUID, service: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/projects/{project_id}/services/{service}/correlation")

    @event("Started")
    def __init__(self, project_id: UUID, service: str) -> None:
        self.project_id = project_id
        self.service = service
        self.incident_id: UUID | None = None
        self.opened_at: datetime | None = None

    def joinable(self, now: datetime, window: timedelta) -> UUID | None:
        """The incident an alert arriving `now` should join, if one was opened within the window."""
        if self.incident_id is None or self.opened_at is None:
            return None
        return self.incident_id if now - self.opened_at <= window else None

    @event("IncidentOpened")
    def incident_opened(self, incident_id: UUID, opened_at: datetime) -> None:
        self.incident_id = incident_id
        self.opened_at = opened_at
