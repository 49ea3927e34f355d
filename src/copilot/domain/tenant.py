"""A tenant: the organisation that owns users and projects."""

from __future__ import annotations

import re
import unicodedata
from uuid import UUID

from eventsourcing.domain import Aggregate, event

__all__ = ["Tenant", "slugify"]


def slugify(name: str) -> str:
    """'Acme Corporation' -> 'acme-corporation'; never empty."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:48].strip("-") or "tenant"


class Tenant(Aggregate):
    @event("Registered")
    def __init__(self, name: str, slug: str, registered_by: UUID) -> None:
        self.name = name
        self.slug = slug
        self.registered_by = registered_by
