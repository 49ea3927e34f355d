"""Request-scoped helpers: who is calling, running blocking work, waiting for read models."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from litestar import Request

from copilot.bootstrap import Container
from copilot.domain import UnauthorizedError
from copilot.ops.logs import log_context
from copilot.security import TokenError

__all__ = ["Principal", "blocking", "principal_from_request", "read_your_writes", "token_from_request"]

T = TypeVar("T")

ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: user, tenant, session and active project."""

    user_id: UUID
    tenant_id: UUID
    session_id: UUID
    project_id: UUID | None


# Database and hashing work runs here, off the event loop. A plain executor hop costs a
# fraction of anyio.to_thread's (capacity limiter, cancel scopes, checkpoints), which showed
# as the largest single item in profiles of a list request. The workers are bounded like
# anyio's default limiter, and each call carries the request's context (its log fields).
_WORKERS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="blocking")


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run database or hashing work off the event loop."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_WORKERS, context.run, fn, *args)


async def read_your_writes(container: Container, position: int) -> bool:
    """Hold the answer until the read models include this write (bounded); False if they did not."""
    return await container.waiter.wait_for(position, timeout=5.0)


def token_from_request(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(ACCESS_COOKIE) or None


async def principal_from_request(request: Request[Any, Any, Any], container: Container) -> Principal:
    token = token_from_request(request)
    if not token:
        raise UnauthorizedError("not authenticated: send a Bearer token or the access_token cookie")
    try:
        claims = container.tokens.decode(token, "access")
    except TokenError as error:
        raise UnauthorizedError(str(error)) from None
    if not await container.accounts.session_is_active(claims.sid):
        raise UnauthorizedError("session has ended; log in again")
    log_context.set({**(log_context.get() or {}), "tenant_id": str(claims.tid), "project_id": str(claims.pid or "")})
    return Principal(user_id=claims.sub, tenant_id=claims.tid, session_id=claims.sid, project_id=claims.pid)
