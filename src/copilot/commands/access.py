"""The role check commands share: resolved from the read model, 404 for outsiders, 403 for the too junior."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from copilot.domain import ForbiddenError, NotFoundError, Role

__all__ = ["AsyncRoleLookup", "RoleLookup", "check_role", "require_role"]

RoleLookup = Callable[[UUID, UUID], Role | None]
AsyncRoleLookup = Callable[[UUID, UUID], Awaitable[Role | None]]


def require_role(role_of: RoleLookup, project_id: UUID, actor: UUID, minimum: Role, what: str) -> Role:
    return check_role(role_of(project_id, actor), minimum, what)


def check_role(role: Role | None, minimum: Role, what: str) -> Role:
    """The caller's role (None for an outsider) if it is at least `minimum`; else 404 or 403."""
    if role is None:
        raise NotFoundError(f"{what} not found")  # outsiders learn nothing, not even that it exists
    if not role.at_least(minimum):
        raise ForbiddenError(f"this needs the {minimum.value} role or higher; you are {role.value}")
    return role
