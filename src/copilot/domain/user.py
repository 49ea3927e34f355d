"""A user of one tenant: registered directly, or invited and then registered."""

from __future__ import annotations

import hmac
from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from copilot.domain.errors import ConflictError, InvalidInputError
from copilot.domain.indexes import normalize_email

__all__ = ["User"]


class User(Aggregate):
    class Registered(Aggregate.Created):
        tenant_id: UUID
        email: str
        full_name: str
        password_hash: str

    class Invited(Aggregate.Created):
        tenant_id: UUID
        email: str
        invited_by: UUID
        project_id: UUID
        invite_token_hash: str
        invite_expires_at: datetime

    def __init__(
        self,
        *,
        tenant_id: UUID,
        email: str,
        full_name: str | None = None,
        password_hash: str | None = None,
        invited_by: UUID | None = None,
        project_id: UUID | None = None,
        invite_token_hash: str | None = None,
        invite_expires_at: datetime | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.email = normalize_email(email)
        self.full_name = full_name or ""
        self.password_hash = password_hash
        self.invited_by = invited_by
        self.invited_to = project_id
        self.invite_token_hash = invite_token_hash
        self.invite_expires_at = invite_expires_at

    @classmethod
    def register(
        cls, tenant_id: UUID, email: str, full_name: str, password_hash: str, user_id: UUID | None = None
    ) -> User:
        return cls._create(
            cls.Registered,
            id=user_id or uuid4(),
            tenant_id=tenant_id,
            email=normalize_email(email),
            full_name=full_name,
            password_hash=password_hash,
        )

    @classmethod
    def invite(
        cls,
        tenant_id: UUID,
        email: str,
        invited_by: UUID,
        project_id: UUID,
        invite_token_hash: str,
        invite_expires_at: datetime,
    ) -> User:
        return cls._create(
            cls.Invited,
            id=uuid4(),
            tenant_id=tenant_id,
            email=normalize_email(email),
            invited_by=invited_by,
            project_id=project_id,
            invite_token_hash=invite_token_hash,
            invite_expires_at=invite_expires_at,
        )

    @property
    def is_pending_invite(self) -> bool:
        return self.password_hash is None

    def accept_invite(self, token_hash: str, now: datetime, full_name: str, password_hash: str) -> None:
        if not self.is_pending_invite:
            raise ConflictError("this email is already registered")
        if (
            self.invite_token_hash is None
            or self.invite_expires_at is None
            or not hmac.compare_digest(self.invite_token_hash, token_hash)
        ):
            raise InvalidInputError("invite_token is not valid for this email")
        if now >= self.invite_expires_at:
            raise InvalidInputError("invite_token has expired; ask for a new invitation")
        self._accept_invite(full_name=full_name, password_hash=password_hash)

    @event("InviteAccepted")
    def _accept_invite(self, full_name: str, password_hash: str) -> None:
        self.full_name = full_name
        self.password_hash = password_hash
        self.invite_token_hash = None

    def reinvite(
        self, invited_by: UUID, project_id: UUID, invite_token_hash: str, invite_expires_at: datetime
    ) -> None:
        if not self.is_pending_invite:
            raise ConflictError("this user has already registered")
        self._reinvite(invited_by, project_id, invite_token_hash, invite_expires_at)

    @event("Reinvited")
    def _reinvite(
        self, invited_by: UUID, project_id: UUID, invite_token_hash: str, invite_expires_at: datetime
    ) -> None:
        self.invited_by = invited_by
        self.invited_to = project_id
        self.invite_token_hash = invite_token_hash
        self.invite_expires_at = invite_expires_at

    @event("PasswordChanged")
    def change_password(self, password_hash: str) -> None:
        self.password_hash = password_hash
