"""A change to a running system (deploy, config, feature flag, infrastructure): evidence for investigations."""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import UUID

from eventsourcing.domain import Aggregate, event

__all__ = ["CHANGE_TYPES", "Change"]

CHANGE_TYPES: Final = ("deploy", "config", "feature_flag", "infra")


class Change(Aggregate):
    @event("Recorded")
    def __init__(
        self,
        tenant_id: UUID,
        project_id: UUID,
        service_name: str,
        kind: str,
        description: str,
        release: str | None,  # the deployed version; `version` is the aggregate's own
        occurred_at: datetime,
        recorded_by: UUID | None,
        integration_id: UUID | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.project_id = project_id
        self.service_name = service_name
        self.kind = kind
        self.description = description
        self.release = release
        self.occurred_at = occurred_at
