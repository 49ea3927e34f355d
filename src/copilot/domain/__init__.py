"""Aggregates and their events: pure, no I/O, invariants raise named errors."""

from copilot.domain.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)
from copilot.domain.indexes import EmailIndex, TenantSlugIndex
from copilot.domain.project import Project
from copilot.domain.roles import Role
from copilot.domain.session import Session
from copilot.domain.tenant import Tenant
from copilot.domain.user import User

__all__ = [
    "ConflictError",
    "DomainError",
    "EmailIndex",
    "ForbiddenError",
    "InvalidInputError",
    "NotFoundError",
    "Project",
    "Role",
    "Session",
    "Tenant",
    "TenantSlugIndex",
    "UnauthorizedError",
    "User",
]
