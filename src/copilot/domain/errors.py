"""Named errors the domain raises; the API maps each family to one status code."""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "DomainError",
    "ForbiddenError",
    "InvalidInputError",
    "NotFoundError",
    "UnauthorizedError",
]


class DomainError(Exception):
    """Base of every rule the domain refuses to break."""

    def __init__(self, detail: str, position: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.position = position  # set when refusing still recorded something (say, a revocation)


class NotFoundError(DomainError):
    """The thing does not exist, or the caller may not know that it does."""


class ConflictError(DomainError):
    """The request contradicts the current state (duplicate, illegal move, last owner)."""


class ForbiddenError(DomainError):
    """The caller can see the thing but their role does not allow this change."""


class UnauthorizedError(DomainError):
    """The caller could not be identified (bad credentials, bad or revoked token)."""


class InvalidInputError(DomainError):
    """A value is well-formed JSON but makes no sense for the domain."""
