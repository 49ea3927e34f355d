"""Commands of projects and their members."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec

from copilot.commands.store import EventStore, with_retries
from copilot.domain import ConflictError, EmailIndex, Project, Role, User
from copilot.security import hash_secret, new_secret

__all__ = [
    "AddMember",
    "ChangeMemberRole",
    "CreateProject",
    "DeleteProject",
    "MemberAdded",
    "ProjectHandlers",
    "RemoveMember",
    "UpdateProject",
]

INVITE_TTL = timedelta(days=7)


class CreateProject(msgspec.Struct, frozen=True):
    actor: UUID
    tenant_id: UUID
    name: str
    description: str = ""


class UpdateProject(msgspec.Struct, frozen=True):
    actor: UUID
    project_id: UUID
    name: str | None = None
    description: str | None = None


class DeleteProject(msgspec.Struct, frozen=True):
    actor: UUID
    project_id: UUID


class AddMember(msgspec.Struct, frozen=True):
    actor: UUID
    project_id: UUID
    email: str
    role: Role


class ChangeMemberRole(msgspec.Struct, frozen=True):
    actor: UUID
    project_id: UUID
    user_id: UUID
    role: Role


class RemoveMember(msgspec.Struct, frozen=True):
    actor: UUID
    project_id: UUID
    user_id: UUID


@dataclass(frozen=True)
class MemberAdded:
    user_id: UUID
    position: int
    invite_token: str | None  # shown once, only when the email was new to the tenant


class ProjectHandlers:
    """Load → decide → append for every project command; the aggregate checks roles."""

    def __init__(self, store: EventStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.clock = clock

    def create(self, cmd: CreateProject) -> tuple[UUID, int]:
        project = Project(tenant_id=cmd.tenant_id, name=cmd.name, description=cmd.description,
                          created_by=cmd.actor)
        return project.id, self.store.append(project)

    def update(self, cmd: UpdateProject) -> int:
        def attempt() -> int:
            project = self.store.get(Project, cmd.project_id)
            project.update(cmd.actor, cmd.name, cmd.description)
            return self.store.append(project)

        return with_retries(attempt)

    def delete(self, cmd: DeleteProject) -> int:
        def attempt() -> int:
            project = self.store.get(Project, cmd.project_id)
            project.delete(cmd.actor)
            return self.store.append(project)

        return with_retries(attempt)

    def add_member(self, cmd: AddMember) -> MemberAdded:
        return with_retries(lambda: self._add_member(cmd))

    def _add_member(self, cmd: AddMember) -> MemberAdded:
        project = self.store.get(Project, cmd.project_id)
        # Check the actor's rights before revealing anything about the email.
        project.require(cmd.actor, Role.ADMIN)
        claim = self.store.find(EmailIndex, EmailIndex.create_id(cmd.email))
        token: str | None = None
        if claim is None:
            token = new_secret("inv")
            user = User.invite(project.tenant_id, cmd.email, cmd.actor, project.id,
                               hash_secret(token), self.clock() + INVITE_TTL)
            new_claim: EmailIndex | None = EmailIndex(email=cmd.email, user_id=user.id)
        else:
            user = self.store.get(User, claim.user_id)
            new_claim = None
            if user.tenant_id != project.tenant_id:
                raise ConflictError("this email belongs to a user of another organisation")
        project.add_member(cmd.actor, user.id, cmd.role)
        if claim is not None and user.is_pending_invite:
            # Invited before but never registered: a fresh token replaces the old one.
            token = new_secret("inv")
            user.reinvite(cmd.actor, project.id, hash_secret(token), self.clock() + INVITE_TTL)
        aggregates = [a for a in (new_claim, user, project) if a is not None]
        return MemberAdded(user_id=user.id, position=self.store.append(*aggregates), invite_token=token)

    def change_member_role(self, cmd: ChangeMemberRole) -> int:
        def attempt() -> int:
            project = self.store.get(Project, cmd.project_id)
            project.change_member_role(cmd.actor, cmd.user_id, cmd.role)
            return self.store.append(project)

        return with_retries(attempt)

    def remove_member(self, cmd: RemoveMember) -> int:
        def attempt() -> int:
            project = self.store.get(Project, cmd.project_id)
            project.remove_member(cmd.actor, cmd.user_id)
            return self.store.append(project)

        return with_retries(attempt)


