"""Integration credentials at rest: AES-256-GCM with COPILOT_ENCRYPTION_KEY, bound to their integration."""

from __future__ import annotations

import base64
import os
from typing import Any
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from copilot.domain import InvalidInputError

__all__ = ["CredentialCipher"]

_VERSION = b"\x01"


class CredentialCipher:
    """Encrypts a credentials object into text that only this key can open, for this integration only."""

    def __init__(self, key: bytes | None) -> None:
        self._aead = AESGCM(key) if key else None

    @property
    def available(self) -> bool:
        return self._aead is not None

    def encrypt(self, integration_id: UUID, credentials: dict[str, Any]) -> str:
        if self._aead is None:
            raise InvalidInputError("this server has no COPILOT_ENCRYPTION_KEY, so it cannot store credentials")
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, msgspec.json.encode(credentials), integration_id.bytes)
        return base64.urlsafe_b64encode(_VERSION + nonce + sealed).decode()

    def decrypt(self, integration_id: UUID, token: str) -> dict[str, Any]:
        if self._aead is None:
            raise InvalidInputError("this server has no COPILOT_ENCRYPTION_KEY, so it cannot read credentials")
        raw = base64.urlsafe_b64decode(token)
        if raw[:1] != _VERSION:
            raise ValueError("unknown credentials format")
        try:
            plain = self._aead.decrypt(raw[1:13], raw[13:], integration_id.bytes)
        except InvalidTag:
            raise ValueError("credentials do not open with this key") from None
        decoded: dict[str, Any] = msgspec.json.decode(plain)
        return decoded
