"""Uniqueness claims: an aggregate whose id derives from the unique value.

Two commands claiming the same email or slug race on creating the same aggregate id,
and the event store lets exactly one of them win.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

__all__ = ["EmailIndex", "TenantSlugIndex", "normalize_email"]


def normalize_email(email: str) -> str:
    return email.strip().lower()


class EmailIndex(Aggregate):
    """Claims one email address (case-insensitively) for one user."""

    @staticmethod
    def create_id(email: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/emails/{normalize_email(email)}")

    @event("Claimed")
    def __init__(self, email: str, user_id: UUID) -> None:
        self.email = normalize_email(email)
        self.user_id = user_id


class TenantSlugIndex(Aggregate):
    """Claims one tenant slug for one tenant."""

    @staticmethod
    def create_id(slug: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/tenant-slugs/{slug}")

    @event("Claimed")
    def __init__(self, slug: str, tenant_id: UUID) -> None:
        self.slug = slug
        self.tenant_id = tenant_id
