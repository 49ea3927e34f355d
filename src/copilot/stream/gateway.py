"""The WebSocket gateway: the spec's protocol (connect, subscribe, unsubscribe, ping).

Clients authenticate with a ws-token from `GET /auth/ws-token` and a `tenantId` that must
be the token's. Delivery of events to subscribers arrives with the relay and bus of the
live-stream issue; this module owns the protocol and the per-connection state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

import msgspec
from litestar import Litestar, WebSocket, get, websocket
from litestar.exceptions import WebSocketDisconnect

from copilot.security import TokenClaims, TokenError, TokenIssuer

__all__ = ["CHANNELS", "create_gateway_app"]

log = logging.getLogger(__name__)

CHANNELS = frozenset({"incidents", "hypotheses", "alerts"})
CONNECT_TIMEOUT_SECONDS = 10.0
CLOSE_UNAUTHORIZED = 4401


class ClientMessage(msgspec.Struct, forbid_unknown_fields=False):
    type: str
    token: str | None = None
    tenantId: str | None = None
    channels: list[str] | None = None
    since: int | None = None


def _error(detail: str) -> dict[str, str]:
    return {"type": "error", "detail": detail}


class _Connection:
    def __init__(self, socket: WebSocket[Any, Any, Any], tokens: TokenIssuer) -> None:
        self.socket = socket
        self.tokens = tokens
        self.claims: TokenClaims | None = None
        self.channels: set[str] = set()

    async def authenticate(self) -> bool:
        try:
            raw = await asyncio.wait_for(self.socket.receive_text(), CONNECT_TIMEOUT_SECONDS)
        except TimeoutError:
            await self.socket.close(code=CLOSE_UNAUTHORIZED, reason="no connect message within 10 s")
            return False
        try:
            message = msgspec.json.decode(raw, type=ClientMessage)
        except msgspec.DecodeError as error:
            await self.socket.send_json(_error(f"malformed message: {error}"))
            await self.socket.close(code=CLOSE_UNAUTHORIZED, reason="expected a connect message")
            return False
        if message.type != "connect" or not message.token:
            await self.socket.close(code=CLOSE_UNAUTHORIZED, reason="first message must be connect with a token")
            return False
        try:
            claims = self.tokens.decode(message.token, "ws")
        except TokenError:
            await self.socket.close(code=CLOSE_UNAUTHORIZED, reason="invalid or expired ws token")
            return False
        if message.tenantId is not None and _as_uuid(message.tenantId) != claims.tid:
            await self.socket.close(code=CLOSE_UNAUTHORIZED, reason="tenantId does not match the token")
            return False
        self.claims = claims
        await self.socket.send_json({
            "type": "connected", "tenantId": str(claims.tid),
            "projectId": str(claims.pid) if claims.pid else None,
        })
        return True

    async def serve(self) -> None:
        while True:
            raw = await self.socket.receive_text()
            try:
                message = msgspec.json.decode(raw, type=ClientMessage)
            except msgspec.DecodeError as error:
                await self.socket.send_json(_error(f"malformed message: {error}"))
                continue
            await self.handle(message)

    async def handle(self, message: ClientMessage) -> None:
        if message.type == "ping":
            await self.socket.send_json({"type": "pong"})
        elif message.type in ("subscribe", "unsubscribe"):
            requested = message.channels or []
            unknown = sorted(set(requested) - CHANNELS)
            if unknown or not requested:
                await self.socket.send_json(_error(
                    f"unknown channels {unknown}; choose from {sorted(CHANNELS)}" if unknown
                    else "channels must name at least one channel"))
                return
            if message.type == "subscribe":
                self.channels.update(requested)
            else:
                self.channels.difference_update(requested)
            await self.socket.send_json({"type": f"{message.type}d", "channels": sorted(self.channels)})
        elif message.type == "connect":
            await self.socket.send_json(_error("already connected"))
        else:
            await self.socket.send_json(_error(f"unknown message type {message.type!r}"))


def _as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def create_gateway_app(tokens: TokenIssuer) -> Litestar:
    @websocket("/ws")
    async def ws_endpoint(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        connection = _Connection(socket, tokens)
        try:
            if await connection.authenticate():
                await connection.serve()
        except WebSocketDisconnect:
            pass

    @get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[ws_endpoint, healthz], openapi_config=None)
