"""A login session: one refresh-token chain; reuse of a rotated-out token revokes it."""

from __future__ import annotations

import hmac
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from copilot.domain.errors import UnauthorizedError

__all__ = ["Session"]


class Session(Aggregate):
    @event("Started")
    def __init__(
        self, user_id: UUID, tenant_id: UUID, project_id: UUID | None, refresh_id: str, expires_at: datetime
    ) -> None:
        self.user_id = user_id
        self.tenant_id = tenant_id
        self.project_id = project_id
        self.refresh_id = refresh_id
        self.expires_at = expires_at
        self.revoked_reason: str | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_reason is not None

    def rotate(
        self, presented_refresh_id: str, new_refresh_id: str, project_id: UUID | None, now: datetime
    ) -> bool:
        """Swap the refresh token; False (and the session revoked) when a stale one is replayed."""
        if self.is_revoked:
            raise UnauthorizedError("session has ended; log in again")
        if now >= self.expires_at:
            raise UnauthorizedError("session has expired; log in again")
        if not hmac.compare_digest(self.refresh_id, presented_refresh_id):
            # Somebody holds an old token: the chain is compromised, end it for everyone.
            self.revoke("refresh token reused")
            return False
        self._rotate(refresh_id=new_refresh_id, project_id=project_id)
        return True

    @event("Refreshed")
    def _rotate(self, refresh_id: str, project_id: UUID | None) -> None:
        self.refresh_id = refresh_id
        self.project_id = project_id

    def switch_project(self, project_id: UUID, new_refresh_id: str, now: datetime) -> None:
        if self.is_revoked or now >= self.expires_at:
            raise UnauthorizedError("session has ended; log in again")
        self._rotate(refresh_id=new_refresh_id, project_id=project_id)

    def revoke(self, reason: str) -> None:
        if not self.is_revoked:
            self._revoke(reason=reason)

    @event("Revoked")
    def _revoke(self, reason: str) -> None:
        self.revoked_reason = reason
