"""The one place where failures become HTTP answers, always as `{"detail": …}`."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from copilot.domain import (
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)

__all__ = ["TooManyRequestsError", "exception_handlers"]

log = logging.getLogger(__name__)

_DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    ForbiddenError: 403,
    UnauthorizedError: 401,
    InvalidInputError: 400,
}


class TooManyRequestsError(DomainError):
    """Raised by throttles; carries how long to wait."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response({"detail": detail}, status_code=status, media_type=MediaType.JSON, headers=headers)


def _domain(_: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    if isinstance(exc, TooManyRequestsError):
        return _json(429, exc.detail, {"Retry-After": str(exc.retry_after)})
    status = next((code for cls, code in _DOMAIN_STATUS.items() if isinstance(exc, cls)), 400)
    return _json(status, exc.detail)


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Unreadable JSON and missing fields are 400; well-formed but invalid values are 422."""
    messages = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            where = item.get("key")
            text = str(item.get("message", ""))
            messages.append(f"{where}: {text}" if where and where not in text else text)
    if "'data'" in messages:  # litestar's way of saying the body was empty
        return _json(400, "a JSON request body is required")
    detail = "; ".join(m for m in messages if m) or str(exc.detail)
    lowered = f"{exc.detail} {detail}".lower()
    status = 400 if ("malformed" in lowered or "missing required" in lowered or "decode" in lowered) else 422
    return _json(status, detail)


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    headers = dict(exc.headers or {})
    return _json(exc.status_code, str(exc.detail), headers or None)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # Raised while decoding a request body: the client's mistake, not ours.
    if isinstance(exc, RecursionError):
        return _json(400, "JSON is nested too deeply")
    if isinstance(exc, UnicodeDecodeError):
        return _json(400, "the request body is not valid UTF-8")
    if _is_database_down(exc):
        log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
        return _json(503, "the event store is unavailable; retry shortly", {"Retry-After": "1"})
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return _json(HTTP_500_INTERNAL_SERVER_ERROR, "internal server error")


def _is_database_down(exc: Exception) -> bool:
    import sqlite3

    import psycopg
    import psycopg_pool
    from eventsourcing.persistence import InterfaceError, OperationalError

    return isinstance(
        exc, psycopg.OperationalError | psycopg_pool.PoolTimeout | OperationalError | InterfaceError
        | sqlite3.OperationalError
    )


exception_handlers: dict[Any, Any] = {
    DomainError: _domain,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _unexpected,
}
