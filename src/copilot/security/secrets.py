"""Opaque random secrets (invite and webhook tokens) and how they are stored: hashed."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["hash_secret", "new_secret"]


def new_secret(prefix: str) -> str:
    """A random token with a readable prefix, e.g. `inv_…`, so a leaked one is recognisable."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_secret(token: str) -> str:
    """What is stored instead of the token: its SHA-256 (the token itself has 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()
