"""The WebSocket gateway: the spec's protocol, and fan-out of live events to each client.

A client authenticates with `connect` (a ws-token from `GET /auth/ws-token`, and a
`tenantId` that must be the token's), then `subscribe`s to channels. It receives only
events of its token's tenant and project. `since` on `subscribe` replays what it missed
and then goes live with no gap and no duplicate: live events are held while the replay is
fetched, and every event passes a per-connection "position above the last sent" check.

Fan-out is the gateway's whole job, so it is served by the websockets library directly
rather than through ASGI: the library does the handshake, reads and answers the client's
frames, keeps the connection alive with pings and closes it; the gateway writes the
outgoing frames itself. Each event is framed once, not once per client, and the frames a
client is due in one turn of the event loop leave in one socket write. With 1,000 clients
a write per event per client was the gateway's largest cost (a system call each, and as
many reads for every client); under load more events arrive per turn and the writes grow,
not their number. A client whose unsent bytes pass `MAX_UNSENT_BYTES` cannot keep up and is
closed (4008) without delaying anyone else; it reconnects with `since`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import msgspec
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from copilot.api.security import API_CSP, COMMON_HEADERS
from copilot.ops.health import readiness_answer
from copilot.ops.metrics import Metrics
from copilot.security import TokenClaims, TokenError, TokenIssuer
from copilot.stream.bus import EventBus
from copilot.stream.events import CHANNELS, CONTROL, PublicEvent

__all__ = ["CLOSE_TOO_SLOW", "CLOSE_UNAUTHORIZED", "Gateway", "Hub"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4008
CLOSE_REVOKED = 4403
# Bytes written to a client that its socket has not taken yet (past what the kernel buffers):
# about a thousand events. A client further behind is closed and resumes with `since`.
MAX_UNSENT_BYTES = 1 << 20
HELD_EVENTS = 1000  # live events held while one client's replay is fetched
MAX_MESSAGE_BYTES = 64 * 1024  # what a client may send in one message


class ClientMessage(msgspec.Struct, forbid_unknown_fields=False):
    type: str
    token: str | None = None
    tenantId: str | None = None  # the spec's field name
    channels: list[str] | None = None
    since: int | None = None


def _error(detail: str) -> dict[str, str]:
    return {"type": "error", "detail": detail}


_encode = msgspec.json.Encoder().encode


def _frame(message: Any) -> bytes:
    """A server's text frame of a message, as it goes on the wire (unmasked, uncompressed)."""
    return Frame(Opcode.TEXT, _encode(message)).serialize(mask=False)


class _Client:
    """One WebSocket connection after `connect`: its scope, channels and frames not yet written."""

    def __init__(self, connection: ServerConnection, claims: TokenClaims) -> None:
        self.connection = connection
        self.claims = claims
        self.scope = (claims.tid, claims.pid)
        self.channels: set[str] = set()
        self.sent = 0  # position of the last event sent
        self.held: list[PublicEvent] | None = None  # live events held during a replay
        self.pending: list[bytes] = []  # frames due in this turn of the loop
        self.too_slow = asyncio.Event()
        self.revoked = asyncio.Event()

    def offer(self, event: PublicEvent, frame: bytes) -> bool:
        """Take a live event of a subscribed channel; True if a frame now waits for `flush`."""
        if self.held is not None:
            self.held.append(event)
            if len(self.held) > HELD_EVENTS:
                self.too_slow.set()
            return False
        return self._take(event, frame)

    def _take(self, event: PublicEvent, frame: bytes | None = None) -> bool:
        if event.position <= self.sent or event.channel not in self.channels:
            return False
        self.sent = event.position
        self.pending.append(frame or _frame(event.for_client()))
        return True

    def send(self, message: Any) -> None:
        """A reply: written now, after whatever this client was already due."""
        self.pending.append(_frame(message))
        self.flush()

    def flush(self) -> None:
        frames, self.pending = self.pending, []
        if not frames or self.too_slow.is_set() or self.connection.protocol.state is not State.OPEN:
            return
        transport = self.connection.transport
        if transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
            self.too_slow.set()
            return
        transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    async def replay_then_go_live(self, bus: EventBus, since: int) -> None:
        self.held = []
        missed: list[PublicEvent] = []
        try:
            tenant, project = self.scope
            missed = await bus.replay(tenant, project, since) if project is not None else []
        finally:
            # No await from here on: the replay, then what arrived meanwhile, then live.
            held, self.held = self.held, None
            for event in (*missed, *held):
                self._take(event)
            self.flush()


class Hub:
    """Routes each live event to the clients of its tenant and project."""

    def __init__(self) -> None:
        self._clients: dict[tuple[UUID, UUID | None], set[_Client]] = {}
        self._due: set[_Client] = set()  # clients with frames waiting for the end of this turn
        self.dropped_slow_clients = 0

    def add(self, client: _Client) -> None:
        self._clients.setdefault(client.scope, set()).add(client)

    def remove(self, client: _Client) -> None:
        clients = self._clients.get(client.scope)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._clients[client.scope]
        self._due.discard(client)

    @property
    def connections(self) -> int:
        return sum(len(clients) for clients in self._clients.values())

    def dispatch(self, event: PublicEvent) -> None:
        clients = self._clients.get((event.tenant_id, event.project_id), ())
        if event.channel == CONTROL:
            for client in clients:
                if _revokes(event, client):
                    client.revoked.set()
            return
        frame = None
        for client in clients:
            if event.channel in client.channels:
                frame = frame or _frame(event.for_client())  # once per event, not once per client
                if client.offer(event, frame):
                    if not self._due:
                        asyncio.get_running_loop().call_soon(self.flush)
                    self._due.add(client)

    def flush(self) -> None:
        """Every client's frames of this turn, one write each."""
        due, self._due = self._due, set()
        for client in due:
            client.flush()


def _revokes(event: PublicEvent, client: _Client) -> bool:
    data = event.data
    return bool(data.get("project_deleted")) or str(data.get("user_id")) == str(client.claims.sub) \
        or str(data.get("session_id")) == str(client.claims.sid)


async def _authenticate(connection: ServerConnection, tokens: TokenIssuer) -> TokenClaims | None:
    try:
        raw = await asyncio.wait_for(connection.recv(), CONNECT_TIMEOUT_SECONDS)
    except TimeoutError:
        await connection.close(CLOSE_UNAUTHORIZED, "no connect message within 10 s")
        return None
    try:
        message = msgspec.json.decode(raw, type=ClientMessage)
    except msgspec.DecodeError as error:
        await connection.send(_encode(_error(f"malformed message: {error}")).decode())
        await connection.close(CLOSE_UNAUTHORIZED, "expected a connect message")
        return None
    if message.type != "connect" or not message.token:
        await connection.close(CLOSE_UNAUTHORIZED, "first message must be connect with a token")
        return None
    try:
        claims = tokens.decode(message.token, "ws")
    except TokenError:
        await connection.close(CLOSE_UNAUTHORIZED, "invalid or expired ws token")
        return None
    if message.tenantId is None or _as_uuid(message.tenantId) != claims.tid:
        await connection.close(CLOSE_UNAUTHORIZED, "tenantId is missing or is not the token's")
        return None
    return claims


async def _handle(client: _Client, message: ClientMessage, bus: EventBus) -> None:
    if message.type == "ping":
        client.send({"type": "pong"})
    elif message.type in ("subscribe", "unsubscribe"):
        requested = message.channels or []
        unknown = sorted(set(requested) - set(CHANNELS))
        if unknown or not requested:
            client.send(_error(
                f"unknown channels {unknown}; choose from {list(CHANNELS)}" if unknown
                else "channels must name at least one channel"))
            return
        if message.type == "unsubscribe":
            client.channels.difference_update(requested)
            client.send({"type": "unsubscribed", "channels": sorted(client.channels)})
            return
        client.channels.update(requested)
        client.send({"type": "subscribed", "channels": sorted(client.channels)})
        if message.since is not None:
            if message.since < 0:
                client.send(_error("since must be a log position (0 or more)"))
                return
            client.sent = max(client.sent, message.since)
            await client.replay_then_go_live(bus, message.since)
    elif message.type == "connect":
        client.send(_error("already connected"))
    else:
        client.send(_error(f"unknown message type {message.type!r}"))


async def _serve_client(client: _Client, bus: EventBus) -> None:
    async for raw in client.connection:
        try:
            message = msgspec.json.decode(raw, type=ClientMessage)
        except msgspec.DecodeError as error:
            client.send(_error(f"malformed message: {error}"))
            continue
        await _handle(client, message, bus)


def _as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def _response(status: int, body: Any, content_type: str = "application/json") -> Response:
    payload = body if isinstance(body, bytes) else _encode(body)
    phrase = http.HTTPStatus(status).phrase
    return Response(status, phrase, Headers([("Content-Type", content_type), ("Content-Length", str(len(payload)))]),
                    payload)


class Gateway:
    """The gateway's port: `/ws`, and `/healthz`, `/readyz`, `/metrics` like every role's port."""

    def __init__(self, tokens: TokenIssuer, bus: EventBus, hub: Hub | None = None, metrics: Metrics | None = None,
                 nats_connected: Callable[[], bool] | None = None) -> None:
        self.tokens = tokens
        self.bus = bus
        self.hub = hub or Hub()
        self.metrics = metrics or Metrics()
        self.nats_connected = nats_connected

    async def serve(self, sock: socket.socket, stop: asyncio.Event) -> None:
        """Serve on a listening socket until `stop` is set; then close every client with 1001
        (going away), so it reconnects elsewhere with `since`."""
        # In the background: with NATS down the gateway still starts, and subscribes once it is up.
        subscribing = asyncio.create_task(self.bus.subscribe(self.hub.dispatch))
        try:
            async with serve(self._connection, sock=sock, process_request=self._http,
                             process_response=self._headers, compression=None, max_size=MAX_MESSAGE_BYTES,
                             server_header=None, logger=log):
                await stop.wait()
        finally:
            subscribing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await subscribing

    async def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/ws":
            return None  # the WebSocket handshake
        if path == "/healthz":
            return _response(200, {"status": "ok"})
        if path == "/readyz":
            return _response(*await readiness_answer(None, self.nats_connected))
        if path == "/metrics":
            self.metrics.ws_connections.set(self.hub.connections)
            self.metrics.ws_dropped.set(self.hub.dropped_slow_clients)
            return _response(200, self.metrics.render(), "text/plain; version=0.0.4")
        return _response(404, {"detail": f"no such path: {path}; the WebSocket is at /ws"})

    def _headers(self, connection: ServerConnection, request: Request, response: Response) -> None:
        for name, value in (*COMMON_HEADERS, ("content-security-policy", API_CSP)):
            response.headers[name] = value

    async def _connection(self, connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            claims = await _authenticate(connection, self.tokens)
            if claims is not None:
                await self._stream(connection, claims)

    async def _stream(self, connection: ServerConnection, claims: TokenClaims) -> None:
        client = _Client(connection, claims)
        client.send({
            "type": "connected", "tenantId": str(claims.tid), "projectId": str(claims.pid) if claims.pid else None,
        })
        self.hub.add(client)
        tasks = [
            asyncio.create_task(_serve_client(client, self.bus)),
            asyncio.create_task(client.too_slow.wait()),
            asyncio.create_task(client.revoked.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if tasks[1] in done:
                self.hub.dropped_slow_clients += 1
                await connection.close(CLOSE_TOO_SLOW, "client too slow; reconnect with since")
            elif tasks[2] in done:
                await connection.close(CLOSE_REVOKED, "access to this project or session has ended")
            elif not tasks[0].cancelled() and (error := tasks[0].exception()) is not None \
                    and not isinstance(error, ConnectionClosed):
                log.warning("websocket client ended: %r", error)
        finally:
            self.hub.remove(client)
            for task in tasks:
                task.cancel()
