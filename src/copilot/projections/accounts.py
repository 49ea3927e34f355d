"""Tenants, users and sessions as the API reads them."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import DomainEvent

from copilot.domain import Session, Tenant, User
from copilot.projections.base import Handler, Projection, event_type
from copilot.projections.db import Transaction

__all__ = ["AccountsProjection"]


class AccountsProjection(Projection):
    name = "accounts"
    tables = ("tenants", "users", "sessions")

    def handlers(self) -> dict[type[DomainEvent], Handler]:
        return {
            event_type(Tenant, "Registered"): self._tenant_registered,
            event_type(User, "Registered"): self._user_registered,
            event_type(User, "Invited"): self._user_invited,
            event_type(User, "InviteAccepted"): self._invite_accepted,
            event_type(Session, "Started"): self._session_started,
            event_type(Session, "Revoked"): self._session_revoked,
        }

    def _tenant_registered(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "INSERT INTO tenants (id, name, slug, created_at) VALUES (:id, :name, :slug, :at) "
            "ON CONFLICT (id) DO NOTHING",
            {"id": e.originator_id, "name": e.name, "slug": e.slug, "at": e.timestamp},
        )

    def _insert_user(self, tx: Transaction, e: Any, full_name: str, status: str) -> None:
        tx.execute(
            "INSERT INTO users (id, tenant_id, email, full_name, status, created_at, updated_at) "
            "VALUES (:id, :tenant_id, :email, :full_name, :status, :at, :at) ON CONFLICT (id) DO NOTHING",
            {"id": e.originator_id, "tenant_id": e.tenant_id, "email": e.email, "full_name": full_name,
             "status": status, "at": e.timestamp},
        )

    def _user_registered(self, tx: Transaction, e: Any) -> None:
        self._insert_user(tx, e, e.full_name, "active")

    def _user_invited(self, tx: Transaction, e: Any) -> None:
        self._insert_user(tx, e, "", "invited")

    def _invite_accepted(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "UPDATE users SET full_name = :full_name, status = 'active', updated_at = :at WHERE id = :id",
            {"id": e.originator_id, "full_name": e.full_name, "at": e.timestamp},
        )

    def _session_started(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "INSERT INTO sessions (id, user_id, started_at) VALUES (:id, :user_id, :at) "
            "ON CONFLICT (id) DO NOTHING",
            {"id": e.originator_id, "user_id": e.user_id, "at": e.timestamp},
        )

    def _session_revoked(self, tx: Transaction, e: Any) -> None:
        tx.execute(
            "UPDATE sessions SET revoked_at = :at, revoked_reason = :reason WHERE id = :id",
            {"id": e.originator_id, "at": e.timestamp, "reason": e.reason},
        )
