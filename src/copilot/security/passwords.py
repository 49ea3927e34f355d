"""argon2id password hashing, with parameters at or above OWASP's recommendation."""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["PasswordHasher"]

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1 is the minimum.
_OWASP = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}
# A valid hash of a random password: verifying against it when the email is unknown keeps
# the response time of "no such user" equal to that of "wrong password".
_DUMMY_PASSWORD = "not-a-real-password-7Ue2"


class PasswordHasher:
    def __init__(self, time_cost: int = 2, memory_cost: int = 19 * 1024, parallelism: int = 1) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=max(time_cost, _OWASP["time_cost"]),
            memory_cost=max(memory_cost, _OWASP["memory_cost"]),
            parallelism=max(parallelism, _OWASP["parallelism"]),
            type=argon2.Type.ID,
        )
        self._dummy = self._hasher.hash(_DUMMY_PASSWORD)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
