"""Aggregates and their events: pure, no I/O, invariants raise named errors."""

from copilot.domain.alert import Alert
from copilot.domain.correlation import ServiceCorrelation
from copilot.domain.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)
from copilot.domain.incident import Incident
from copilot.domain.indexes import EmailIndex, TenantSlugIndex
from copilot.domain.integration import Integration
from copilot.domain.project import Project
from copilot.domain.roles import Role
from copilot.domain.session import Session
from copilot.domain.tenant import Tenant
from copilot.domain.user import User

__all__ = [
    "Alert",
    "ConflictError",
    "DomainError",
    "EmailIndex",
    "ForbiddenError",
    "Incident",
    "Integration",
    "InvalidInputError",
    "NotFoundError",
    "Project",
    "Role",
    "ServiceCorrelation",
    "Session",
    "Tenant",
    "TenantSlugIndex",
    "UnauthorizedError",
    "User",
]
