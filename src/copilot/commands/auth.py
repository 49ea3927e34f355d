"""Commands of accounts and sessions: register, log in, refresh, log out, switch project."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import msgspec

from copilot.commands.store import EventStore, with_retries
from copilot.domain import (
    ConflictError,
    EmailIndex,
    InvalidInputError,
    NotFoundError,
    Project,
    Session,
    Tenant,
    TenantSlugIndex,
    UnauthorizedError,
    User,
)
from copilot.domain.tenant import slugify
from copilot.security import PasswordHasher, hash_secret
from copilot.security.tokens import REFRESH_TTL

__all__ = [
    "AuthHandlers",
    "LogIn",
    "LogOut",
    "RefreshSession",
    "RegisterUser",
    "SessionStarted",
    "SwitchProject",
]

FIRST_PROJECT_NAME = "Production"


class RegisterUser(msgspec.Struct, frozen=True):
    email: str
    password: str
    full_name: str
    tenant_name: str | None = None
    invite_token: str | None = None


class LogIn(msgspec.Struct, frozen=True):
    email: str
    password: str


class RefreshSession(msgspec.Struct, frozen=True):
    session_id: UUID
    refresh_id: str


class LogOut(msgspec.Struct, frozen=True):
    session_id: UUID


class SwitchProject(msgspec.Struct, frozen=True):
    session_id: UUID
    user_id: UUID
    project_id: UUID


@dataclass(frozen=True)
class SessionStarted:
    """What the API needs to mint tokens: who, where, which session, and the log position."""

    user_id: UUID
    tenant_id: UUID
    project_id: UUID | None
    session_id: UUID
    refresh_id: str
    position: int


def _new_refresh_id() -> str:
    return secrets.token_urlsafe(24)


class AuthHandlers:
    """Load → decide → append for every account and session command."""

    def __init__(
        self,
        store: EventStore,
        hasher: PasswordHasher,
        default_project: Callable[[UUID], UUID | None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.default_project = default_project  # a read-model query: the user's first project
        self.clock = clock

    # -- register -------------------------------------------------------------------------

    def register(self, cmd: RegisterUser) -> SessionStarted:
        # Hash outside the retry loop: it is the slow part and does not depend on state.
        password_hash = self.hasher.hash(cmd.password)
        if cmd.invite_token:
            return with_retries(lambda: self._accept_invite(cmd, password_hash))
        if not cmd.tenant_name:
            raise InvalidInputError("tenant_name is required unless you register with an invite_token")
        return with_retries(lambda: self._register_tenant(cmd, password_hash))

    def _register_tenant(self, cmd: RegisterUser, password_hash: str) -> SessionStarted:
        if self.store.find(EmailIndex, EmailIndex.create_id(cmd.email)) is not None:
            raise ConflictError("a user with this email already exists")
        assert cmd.tenant_name is not None
        user_id = uuid4()
        slug = self._free_slug(slugify(cmd.tenant_name))
        tenant = Tenant(name=cmd.tenant_name, slug=slug, registered_by=user_id)
        user = User.register(tenant.id, cmd.email, cmd.full_name, password_hash, user_id=user_id)
        email_claim = EmailIndex(email=cmd.email, user_id=user.id)
        slug_claim = TenantSlugIndex(slug=slug, tenant_id=tenant.id)
        project = Project(tenant_id=tenant.id, name=FIRST_PROJECT_NAME, description="", created_by=user.id)
        session = self._new_session(user.id, tenant.id, project.id)
        position = self.store.append(email_claim, slug_claim, tenant, user, project, session)
        return _started(session, position)

    def _free_slug(self, base: str) -> str:
        for n in range(1, 100):
            slug = base if n == 1 else f"{base}-{n}"
            if self.store.find(TenantSlugIndex, TenantSlugIndex.create_id(slug)) is None:
                return slug
        return f"{base}-{secrets.token_hex(3)}"

    def _accept_invite(self, cmd: RegisterUser, password_hash: str) -> SessionStarted:
        assert cmd.invite_token is not None
        claim = self.store.find(EmailIndex, EmailIndex.create_id(cmd.email))
        user = self.store.find(User, claim.user_id) if claim else None
        if user is None:
            raise InvalidInputError("invite_token is not valid for this email")
        user.accept_invite(hash_secret(cmd.invite_token), self.clock(), cmd.full_name, password_hash)
        session = self._new_session(user.id, user.tenant_id, user.invited_to)
        position = self.store.append(user, session)
        return _started(session, position)

    # -- sessions ---------------------------------------------------------------------------

    def log_in(self, cmd: LogIn) -> SessionStarted:
        claim = self.store.find(EmailIndex, EmailIndex.create_id(cmd.email))
        user = self.store.find(User, claim.user_id) if claim else None
        # Verify even when there is no such user, so timing does not reveal which emails exist.
        if not self.hasher.verify(user.password_hash if user else None, cmd.password) or user is None:
            raise UnauthorizedError("invalid email or password")
        assert user.password_hash is not None
        if self.hasher.needs_rehash(user.password_hash):
            user.change_password(self.hasher.hash(cmd.password))
        session = self._new_session(user.id, user.tenant_id, self.default_project(user.id))
        position = self.store.append(user, session)
        return _started(session, position)

    def refresh(self, cmd: RefreshSession) -> SessionStarted:
        def attempt() -> SessionStarted:
            session = self.store.find(Session, cmd.session_id)
            if session is None:
                raise UnauthorizedError("session not found; log in again")
            new_id = _new_refresh_id()
            if not session.rotate(cmd.refresh_id, new_id, session.project_id, self.clock()):
                position = self.store.append(session)
                raise UnauthorizedError("refresh token was already used; the session is revoked", position)
            return _started(session, self.store.append(session))

        return with_retries(attempt)

    def log_out(self, cmd: LogOut) -> int:
        def attempt() -> int:
            session = self.store.find(Session, cmd.session_id)
            if session is None:
                raise UnauthorizedError("session not found")
            session.revoke("logout")
            return self.store.append(session)

        return with_retries(attempt)

    def switch_project(self, cmd: SwitchProject) -> SessionStarted:
        project = self.store.find(Project, cmd.project_id)
        if project is None or project.role_of(cmd.user_id) is None:
            raise NotFoundError("project not found")

        def attempt() -> SessionStarted:
            session = self.store.find(Session, cmd.session_id)
            if session is None or session.user_id != cmd.user_id:
                raise UnauthorizedError("session not found; log in again")
            session.switch_project(cmd.project_id, _new_refresh_id(), self.clock())
            return _started(session, self.store.append(session))

        return with_retries(attempt)

    def _new_session(self, user_id: UUID, tenant_id: UUID, project_id: UUID | None) -> Session:
        return Session(
            user_id=user_id,
            tenant_id=tenant_id,
            project_id=project_id,
            refresh_id=_new_refresh_id(),
            expires_at=self.clock() + REFRESH_TTL,
        )


def _started(session: Session, position: int) -> SessionStarted:
    return SessionStarted(
        user_id=session.user_id,
        tenant_id=session.tenant_id,
        project_id=session.project_id,
        session_id=session.id,
        refresh_id=session.refresh_id,
        position=position,
    )
