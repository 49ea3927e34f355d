"""Access tokens: a verified token is remembered, but never beyond its expiry or its type."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from uuid import uuid4

import jwt
import pytest

from copilot.security import TokenError, TokenIssuer
from copilot.security.tokens import ACCESS_TTL

SECRET = "unit-test-secret-key-0123456789-0123456789"


def _issue(issuer: TokenIssuer, typ: str = "access", now: datetime | None = None) -> str:
    token, _ = issuer.issue(typ, user_id=uuid4(), tenant_id=uuid4(), session_id=uuid4(),  # type: ignore[arg-type]
                            project_id=None, now=now)
    return token


def test_a_remembered_token_still_expires() -> None:
    issuer = TokenIssuer(SECRET)
    expires_soon = datetime.fromtimestamp(time.time() + 1.2 - ACCESS_TTL.total_seconds(), UTC)
    token = _issue(issuer, now=expires_soon)
    assert issuer.decode(token, "access").typ == "access"
    assert issuer.decode(token, "access").typ == "access"  # the second answer comes from memory
    time.sleep(1.5)
    with pytest.raises(TokenError):
        issuer.decode(token, "access")


def test_a_remembered_token_keeps_its_type() -> None:
    issuer = TokenIssuer(SECRET)
    token = _issue(issuer, "refresh")
    issuer.decode(token, "refresh")
    with pytest.raises(TokenError, match="expected a access token"):
        issuer.decode(token, "access")


def test_tokens_of_another_key_or_algorithm_are_refused() -> None:
    issuer = TokenIssuer(SECRET)
    forged = _issue(TokenIssuer("another-secret-key-0123456789-0123456789"))
    with pytest.raises(TokenError):
        issuer.decode(forged, "access")
    claims = jwt.decode(_issue(issuer), options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(TokenError):
        issuer.decode(unsigned, "access")
