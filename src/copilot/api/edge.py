"""The one ASGI layer every HTTP request passes on its way in and out.

It gives the request an id (the caller's X-Request-ID, or a new one) that every log line
written while serving it carries and the answer echoes; spends one unit of the caller's request
budget, announced in X-RateLimit-* headers (429 when it is spent); and counts and times the
request by its route template for /metrics. Three separate middlewares did this before, each
wrapping `send` and reading the headers again; one layer costs a request a third of that.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import msgspec

from copilot.api.throttle import FixedWindowCounter
from copilot.ops.logs import log_context
from copilot.ops.metrics import Metrics
from copilot.security import TokenError, TokenIssuer

__all__ = ["EdgeMiddleware"]

_UNLIMITED_PREFIXES = ("/docs", "/redoc", "/openapi", "/healthz", "/readyz", "/metrics")
_REQUEST_ID = re.compile(r"[\w.-]{1,64}")


def _caller_key(headers: dict[bytes, bytes], scope: dict[str, Any], tokens: TokenIssuer) -> str:
    """The verified token's user when a valid one is presented, else the client address.

    Verifying matters: an unverified subject would let anyone spend a victim's budget, or
    dodge the limit with a fresh made-up subject per request.
    """
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


class EdgeMiddleware:
    """Request id, request budget and request metrics (see the module doc). Litestar builds one
    middleware per route, so the budget's counter and the metrics are passed in and shared."""

    def __init__(self, app: Any, metrics: Metrics, counter: FixedWindowCounter, tokens: TokenIssuer) -> None:
        self.app = app
        self.metrics = metrics
        self.counter = counter
        self.tokens = tokens

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        context = log_context.set({"request_id": request_id})
        added = [(b"x-request-id", request_id.encode())]
        status = 500

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        self.metrics.requests_in_flight += 1
        try:
            if not scope["path"].startswith(_UNLIMITED_PREFIXES):
                allowed, limit, remaining, reset = self.counter.hit(_caller_key(headers, scope, self.tokens))
                added += [(b"x-ratelimit-limit", str(limit).encode()),
                          (b"x-ratelimit-remaining", str(remaining).encode()),
                          (b"x-ratelimit-reset", str(reset).encode())]
                if not allowed:
                    body = msgspec.json.encode({"detail": f"rate limit of {limit} requests per minute exceeded"})
                    await send_with_headers({"type": "http.response.start", "status": 429, "headers": [
                        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(reset).encode())]})
                    await send_with_headers({"type": "http.response.body", "body": body})
                    return
            await self.app(scope, receive, send_with_headers)
        finally:
            self.metrics.requests_in_flight -= 1
            route = str(scope.get("path_template") or "unmatched")  # the template, so ids do not multiply series
            self.metrics.record_request(scope["method"], route, status, time.perf_counter() - started)
            log_context.reset(context)
