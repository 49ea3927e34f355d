"""The WebSocket gateway: the spec's protocol, and fan-out of live events to each client.

A client authenticates with `connect` (a ws-token from `GET /auth/ws-token`, and a
`tenantId` that must be the token's), then `subscribe`s to channels. It receives only
events of its token's tenant and project. `since` on `subscribe` replays what it missed
and then goes live with no gap and no duplicate: live events are held while the replay is
fetched, and every event passes a per-connection "position above the last sent" check.
Each connection has a bounded queue; a client that cannot keep up is closed (4008)
without delaying anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec
from litestar import Litestar, WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from copilot.api.security import SecurityHeaders
from copilot.ops.metrics import Metrics
from copilot.ops.routes import ops_routes
from copilot.security import TokenClaims, TokenError, TokenIssuer
from copilot.stream.bus import EventBus
from copilot.stream.events import CHANNELS, CONTROL, PublicEvent

__all__ = ["CLOSE_TOO_SLOW", "CLOSE_UNAUTHORIZED", "Hub", "create_gateway_app"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4008
CLOSE_REVOKED = 4403
QUEUE_SIZE = 1000


class ClientMessage(msgspec.Struct, forbid_unknown_fields=False):
    type: str
    token: str | None = None
    tenantId: str | None = None  # the spec's field name
    channels: list[str] | None = None
    since: int | None = None


def _error(detail: str) -> dict[str, str]:
    return {"type": "error", "detail": detail}


_encode = msgspec.json.Encoder().encode


class _Client:
    """One WebSocket connection after `connect`: its scope, channels and outgoing queue."""

    def __init__(self, socket: WebSocket[Any, Any, Any], claims: TokenClaims) -> None:
        self.socket = socket
        self.claims = claims
        self.scope = (claims.tid, claims.pid)
        self.channels: set[str] = set()
        self.queue: asyncio.Queue[tuple[PublicEvent, str]] = asyncio.Queue(QUEUE_SIZE)
        self.sent = 0  # position of the last event sent
        self.held: list[PublicEvent] | None = None  # live events held during a replay
        self.too_slow = asyncio.Event()
        self.revoked = asyncio.Event()
        self._send_lock = asyncio.Lock()  # replies and events come from two tasks

    def offer(self, event: PublicEvent, text: str | None = None) -> None:
        if event.channel not in self.channels:
            return
        if self.held is not None:
            self.held.append(event)
            if len(self.held) > QUEUE_SIZE:
                self.too_slow.set()
            return
        self._enqueue(event, text)

    def _enqueue(self, event: PublicEvent, text: str | None = None) -> None:
        try:
            self.queue.put_nowait((event, text or _encode(event.for_client()).decode()))
        except asyncio.QueueFull:
            self.too_slow.set()

    async def send(self, message: Any) -> None:
        async with self._send_lock:
            await self.socket.send_text(_encode(message).decode())

    async def write_events(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():  # whatever else is waiting goes out in the same turn
                batch.append(self.queue.get_nowait())
            async with self._send_lock:
                for event, text in batch:
                    if event.position > self.sent and event.channel in self.channels:
                        self.sent = event.position
                        await self.socket.send_text(text)

    async def replay_then_go_live(self, bus: EventBus, since: int) -> None:
        self.held = []
        try:
            tenant, project = self.scope
            missed = await bus.replay(tenant, project, since) if project is not None else []
            for event in missed:
                if event.channel in self.channels:
                    self._enqueue(event)
        finally:
            held, self.held = self.held, None
            for event in held or []:
                self._enqueue(event)


class Hub:
    """Routes each live event to the clients of its tenant and project."""

    def __init__(self) -> None:
        self._clients: dict[tuple[UUID, UUID | None], set[_Client]] = {}
        self.dropped_slow_clients = 0

    def add(self, client: _Client) -> None:
        self._clients.setdefault(client.scope, set()).add(client)

    def remove(self, client: _Client) -> None:
        clients = self._clients.get(client.scope)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._clients[client.scope]

    @property
    def connections(self) -> int:
        return sum(len(clients) for clients in self._clients.values())

    async def close_all(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """On shutdown: tell every client it is going away, so it reconnects elsewhere with `since`."""
        for clients in list(self._clients.values()):
            for client in list(clients):
                with contextlib.suppress(Exception):
                    await client.socket.close(code=code, reason=reason)

    def dispatch(self, event: PublicEvent) -> None:
        clients = self._clients.get((event.tenant_id, event.project_id), ())
        if event.channel == CONTROL:
            for client in clients:
                if _revokes(event, client):
                    client.revoked.set()
            return
        text = _encode(event.for_client()).decode()  # once per event, not once per client
        for client in clients:
            client.offer(event, text)


def _revokes(event: PublicEvent, client: _Client) -> bool:
    data = event.data
    return bool(data.get("project_deleted")) or str(data.get("user_id")) == str(client.claims.sub) \
        or str(data.get("session_id")) == str(client.claims.sid)


async def _authenticate(socket: WebSocket[Any, Any, Any], tokens: TokenIssuer) -> TokenClaims | None:
    try:
        raw = await asyncio.wait_for(socket.receive_text(), CONNECT_TIMEOUT_SECONDS)
    except TimeoutError:
        await socket.close(code=CLOSE_UNAUTHORIZED, reason="no connect message within 10 s")
        return None
    try:
        message = msgspec.json.decode(raw, type=ClientMessage)
    except msgspec.DecodeError as error:
        await socket.send_json(_error(f"malformed message: {error}"))
        await socket.close(code=CLOSE_UNAUTHORIZED, reason="expected a connect message")
        return None
    if message.type != "connect" or not message.token:
        await socket.close(code=CLOSE_UNAUTHORIZED, reason="first message must be connect with a token")
        return None
    try:
        claims = tokens.decode(message.token, "ws")
    except TokenError:
        await socket.close(code=CLOSE_UNAUTHORIZED, reason="invalid or expired ws token")
        return None
    if message.tenantId is None or _as_uuid(message.tenantId) != claims.tid:
        await socket.close(code=CLOSE_UNAUTHORIZED, reason="tenantId is missing or is not the token's")
        return None
    return claims


async def _handle(client: _Client, message: ClientMessage, bus: EventBus) -> None:
    if message.type == "ping":
        await client.send({"type": "pong"})
    elif message.type in ("subscribe", "unsubscribe"):
        requested = message.channels or []
        unknown = sorted(set(requested) - set(CHANNELS))
        if unknown or not requested:
            await client.send(_error(
                f"unknown channels {unknown}; choose from {list(CHANNELS)}" if unknown
                else "channels must name at least one channel"))
            return
        if message.type == "unsubscribe":
            client.channels.difference_update(requested)
            await client.send({"type": "unsubscribed", "channels": sorted(client.channels)})
            return
        client.channels.update(requested)
        await client.send({"type": "subscribed", "channels": sorted(client.channels)})
        if message.since is not None:
            if message.since < 0:
                await client.send(_error("since must be a log position (0 or more)"))
                return
            client.sent = max(client.sent, message.since)
            await client.replay_then_go_live(bus, message.since)
    elif message.type == "connect":
        await client.send(_error("already connected"))
    else:
        await client.send(_error(f"unknown message type {message.type!r}"))


async def _serve_client(client: _Client, bus: EventBus) -> None:
    while True:
        raw = await client.socket.receive_text()
        try:
            message = msgspec.json.decode(raw, type=ClientMessage)
        except msgspec.DecodeError as error:
            await client.send(_error(f"malformed message: {error}"))
            continue
        await _handle(client, message, bus)


def _as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def create_gateway_app(tokens: TokenIssuer, bus: EventBus, hub: Hub, metrics: Metrics | None = None,
                       nats_connected: Callable[[], bool] | None = None) -> Litestar:
    @websocket("/ws")
    async def ws_endpoint(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        try:
            claims = await _authenticate(socket, tokens)
        except WebSocketDisconnect:
            return
        if claims is None:
            return
        client = _Client(socket, claims)
        await client.send({
            "type": "connected", "tenantId": str(claims.tid), "projectId": str(claims.pid) if claims.pid else None,
        })
        hub.add(client)
        tasks = [
            asyncio.create_task(_serve_client(client, bus)),
            asyncio.create_task(client.write_events()),
            asyncio.create_task(client.too_slow.wait()),
            asyncio.create_task(client.revoked.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[2] in done:
                hub.dropped_slow_clients += 1
                with contextlib.suppress(Exception):
                    await socket.close(code=CLOSE_TOO_SLOW, reason="client too slow; reconnect with since")
            elif tasks[3] in done:
                with contextlib.suppress(Exception):
                    await socket.close(code=CLOSE_REVOKED, reason="access to this project or session has ended")
            for task in done:
                if not task.cancelled() and task.exception() and not isinstance(
                        task.exception(), WebSocketDisconnect):
                    log.debug("websocket task ended: %r", task.exception())
        finally:
            hub.remove(client)
            for task in tasks:
                task.cancel()

    metrics = metrics or Metrics()

    def before_scrape() -> None:
        metrics.ws_connections.set(hub.connections)
        metrics.ws_dropped.set(hub.dropped_slow_clients)

    background: set[asyncio.Task[None]] = set()

    async def subscribe_hub() -> None:
        # In the background: with NATS down the gateway still starts, and subscribes once it is up.
        task = asyncio.create_task(bus.subscribe(hub.dispatch))
        background.add(task)
        task.add_done_callback(background.discard)

    async def close_clients() -> None:
        await hub.close_all()

    return Litestar(route_handlers=[ws_endpoint, *ops_routes(None, metrics, nats_connected, before_scrape)],
                    openapi_config=None, on_startup=[subscribe_hub], on_shutdown=[close_clients],
                    before_send=[SecurityHeaders()], logging_config=None)
