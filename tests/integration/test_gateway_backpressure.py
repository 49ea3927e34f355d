"""A dashboard that stops reading, over real sockets: it is closed with 4008 without holding up the
others, and resuming with `since` gives it the rest with no gap and no duplicate."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import UUID, uuid4

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from copilot.security import TokenIssuer
from copilot.stream import Gateway, InProcessBus, PublicEvent
from copilot.stream.gateway import CLOSE_TOO_SLOW
from tests.gateway_server import running_gateway

TENANT, PROJECT = uuid4(), uuid4()
BODY = "x" * 32_000  # a large event, so the sockets fill in a few hundred


def event(position: int) -> PublicEvent:
    return PublicEvent(type="incident.updated", data={"id": str(uuid4()), "note": BODY}, timestamp=datetime.now(UTC),
                       position=position, tenant_id=TENANT, project_id=PROJECT, channel="incidents")


@contextmanager
def subscribed(url: str, token: str, since: int | None = None, max_queue: int = 16) -> Iterator[ClientConnection]:
    with connect(url, open_timeout=5, max_queue=max_queue) as ws:
        ws.send(json.dumps({"type": "connect", "token": token, "tenantId": str(TENANT)}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connected"
        ws.send(json.dumps({"type": "subscribe", "channels": ["incidents"],
                            **({"since": since} if since is not None else {})}))
        assert json.loads(ws.recv(timeout=5))["type"] == "subscribed"
        yield ws


def positions_until_closed(ws: ClientConnection, got: list[int] | None = None) -> tuple[list[int], int | None]:
    got = [] if got is None else got
    try:
        while True:
            got.append(json.loads(ws.recv(timeout=15))["position"])
    except ConnectionClosed as closed:
        return got, closed.rcvd.code if closed.rcvd is not None else None


def test_a_client_that_stops_reading_is_closed_and_resumes_with_since() -> None:
    tokens = TokenIssuer("a-test-secret-of-at-least-32-bytes!!")
    token, _ = tokens.issue("ws", user_id=uuid4(), tenant_id=TENANT, session_id=uuid4(), project_id=PROJECT)
    published: list[PublicEvent] = []

    async def replay(tenant: UUID, project: UUID, since: int) -> list[PublicEvent]:
        return [e for e in published if e.position > since]

    bus = InProcessBus(replay)
    gateway = Gateway(tokens, bus)
    with running_gateway(gateway) as served, subscribed(served.url, token) as reader, \
            subscribed(served.url, token, max_queue=1) as stalled:  # the library stops reading when it holds one
        read: list[int] = []
        reading = threading.Thread(target=positions_until_closed, args=(reader, read))
        reading.start()

        async def publish(position: int) -> None:
            published.append(event(position))
            await bus.publish(published[-1:], "test")

        position = 0
        while gateway.hub.dropped_slow_clients == 0:
            assert position < 3000, "a client that reads nothing was never closed"
            position += 1
            served.run(publish(position))
        for _ in range(20):  # and the others go on receiving
            position += 1
            served.run(publish(position))

        got, code = positions_until_closed(stalled)
        assert code == CLOSE_TOO_SLOW
        assert got == list(range(1, len(got) + 1)) and len(got) < position  # a prefix, in order

        with subscribed(served.url, token, since=got[-1]) as resumed:
            rest = [json.loads(resumed.recv(timeout=5))["position"] for _ in range(position - got[-1])]
        assert rest == list(range(got[-1] + 1, position + 1))

        deadline = time.monotonic() + 15
        while len(read) < position and time.monotonic() < deadline:
            time.sleep(0.05)
        assert read == list(range(1, position + 1))
