"""JWTs (HS256, algorithm pinned) for access, refresh and WebSocket use, each typed."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import jwt
import msgspec

__all__ = ["ACCESS_TTL", "REFRESH_TTL", "WS_TTL", "TokenClaims", "TokenError", "TokenIssuer"]

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=7)
WS_TTL = timedelta(seconds=60)

TokenType = Literal["access", "refresh", "ws"]
_ALGORITHM = "HS256"
_VERIFIED_CACHE_SIZE = 4096


class TokenError(Exception):
    """The token is malformed, forged, expired or of the wrong type."""


class TokenClaims(msgspec.Struct, frozen=True):
    typ: TokenType
    sub: UUID  # user
    tid: UUID  # tenant
    sid: UUID  # session
    pid: UUID | None  # active project
    jti: str
    iat: int
    exp: int


class TokenIssuer:
    def __init__(self, secret_key: str, issuer: str = "sre-copilot") -> None:
        self._key = secret_key
        self._issuer = issuer
        # Tokens whose signature and claims were verified, by their exact text. A client sends
        # the same access token on every request for 15 minutes; checking the signature once
        # is enough, and only the expiry must be looked at again. Bounded; oldest out first.
        self._verified: dict[str, TokenClaims] = {}

    def issue(
        self,
        typ: TokenType,
        *,
        user_id: UUID,
        tenant_id: UUID,
        session_id: UUID,
        project_id: UUID | None,
        now: datetime | None = None,
        jti: str | None = None,
    ) -> tuple[str, TokenClaims]:
        now = now or datetime.now(UTC)
        ttl = {"access": ACCESS_TTL, "refresh": REFRESH_TTL, "ws": WS_TTL}[typ]
        claims = TokenClaims(
            typ=typ,
            sub=user_id,
            tid=tenant_id,
            sid=session_id,
            pid=project_id,
            jti=jti or secrets.token_urlsafe(16),
            iat=int(now.timestamp()),
            exp=int((now + ttl).timestamp()),
        )
        payload = msgspec.to_builtins(claims)
        payload["iss"] = self._issuer
        return jwt.encode(payload, self._key, algorithm=_ALGORITHM), claims

    def decode(self, token: str, expected: TokenType) -> TokenClaims:
        claims = self._verified.get(token)
        if claims is None or claims.exp <= time.time():
            claims = self._verify(token)
        if claims.typ != expected:
            raise TokenError(f"expected a {expected} token, got {claims.typ}")
        return claims

    def _verify(self, token: str) -> TokenClaims:
        self._verified.pop(token, None)
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                issuer=self._issuer,
                options={"require": ["exp", "iat", "typ", "sub", "tid", "sid", "jti", "iss"]},
            )
            claims = msgspec.convert(payload, TokenClaims, strict=False)
        except (jwt.PyJWTError, msgspec.ValidationError, ValueError, TypeError) as error:
            raise TokenError(f"invalid token: {error}") from None
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            try:
                self._verified.pop(next(iter(self._verified)), None)
            except (RuntimeError, StopIteration):  # another thread changed it meanwhile
                self._verified.clear()
        self._verified[token] = claims
        return claims
