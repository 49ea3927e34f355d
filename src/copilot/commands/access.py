"""The role check commands share: resolved from the read model, 404 for outsiders, 403 for the too junior."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from copilot.domain import ForbiddenError, NotFoundError, Role

__all__ = ["RoleLookup", "require_role"]

RoleLookup = Callable[[UUID, UUID], Role | None]


def require_role(role_of: RoleLookup, project_id: UUID, actor: UUID, minimum: Role, what: str) -> Role:
    role = role_of(project_id, actor)
    if role is None:
        raise NotFoundError(f"{what} not found")  # outsiders learn nothing, not even that it exists
    if not role.at_least(minimum):
        raise ForbiddenError(f"this needs the {minimum.value} role or higher; you are {role.value}")
    return role
