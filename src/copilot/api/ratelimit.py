"""ASGI middleware: a request budget per caller, announced in X-RateLimit-* headers."""

from __future__ import annotations

from typing import Any

import msgspec

from copilot.api.throttle import FixedWindowCounter
from copilot.security import TokenError, TokenIssuer

__all__ = ["RateLimitMiddleware"]

_EXEMPT_PREFIXES = ("/docs", "/redoc", "/openapi", "/healthz", "/readyz", "/metrics")


def _caller_key(scope: dict[str, Any], tokens: TokenIssuer) -> str:
    """The verified token's user when a valid one is presented, else the client address.

    Verifying matters: an unverified subject would let anyone spend a victim's budget, or
    dodge the limit with a fresh made-up subject per request.
    """
    headers = dict(scope.get("headers") or [])
    token = ""
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    if not token:
        for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "access_token":
                token = value
    if token:
        try:
            return f"user:{tokens.decode(token, 'access').sub}"
        except TokenError:
            pass
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


class RateLimitMiddleware:
    """Litestar builds one middleware per route, so the counter is passed in and shared by all."""

    def __init__(self, app: Any, counter: FixedWindowCounter, tokens: TokenIssuer) -> None:
        self.app = app
        self.counter = counter
        self.tokens = tokens

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        allowed, limit, remaining, reset = self.counter.hit(_caller_key(scope, self.tokens))
        headers = [
            (b"x-ratelimit-limit", str(limit).encode()),
            (b"x-ratelimit-remaining", str(remaining).encode()),
            (b"x-ratelimit-reset", str(reset).encode()),
        ]
        if not allowed:
            body = msgspec.json.encode({"detail": f"rate limit of {limit} requests per minute exceeded"})
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(reset).encode()), *headers]})
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
