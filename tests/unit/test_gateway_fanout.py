"""The gateway's fan-out without sockets: routing by tenant and project, one write per client per
turn, slow clients, replay joins."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from websockets.protocol import State

from copilot.security import TokenClaims
from copilot.stream.events import PublicEvent
from copilot.stream.gateway import MAX_UNSENT_BYTES, Hub, _Client


def claims(tenant: UUID, project: UUID) -> TokenClaims:
    return TokenClaims(typ="ws", sub=uuid4(), tid=tenant, sid=uuid4(), pid=project, jti="j", iat=0, exp=0)


def event(position: int, tenant: UUID, project: UUID, channel: str = "incidents") -> PublicEvent:
    return PublicEvent(type="incident.created", data={"id": str(uuid4())}, timestamp=datetime.now(UTC),
                       position=position, tenant_id=tenant, project_id=project, channel=channel)


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.unsent = 0  # what the socket has not taken yet

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.unsent


class FakeConnection:
    def __init__(self) -> None:
        self.transport = FakeTransport()
        self.protocol = type("Protocol", (), {"state": State.OPEN})()


def messages(c: _Client) -> list[dict[str, Any]]:
    """The text frames written to a client, decoded (server frames: unmasked, payload < 64 KiB)."""
    data = b"".join(c.connection.transport.writes)
    found, at = [], 0
    while at < len(data):
        size, at = data[at + 1] & 0x7F, at + 2
        if size == 126:
            size, at = int.from_bytes(data[at:at + 2]), at + 2
        found.append(json.loads(data[at:at + size]))
        at += size
    return found


def client(tenant: UUID, project: UUID, channels: set[str]) -> _Client:
    c = _Client(FakeConnection(), claims(tenant, project))  # type: ignore[arg-type]
    c.channels = channels
    return c


def hub_of(*clients: _Client) -> Hub:
    hub = Hub()
    for c in clients:
        hub.add(c)
    return hub


def dispatch_in_one_turn(hub: Hub, *events: PublicEvent) -> None:
    async def turn() -> None:
        for e in events:
            hub.dispatch(e)
        await asyncio.sleep(0)  # the turn ends: the hub writes what each client is due

    asyncio.run(turn())


def test_events_reach_only_clients_of_their_tenant_and_project_and_channel() -> None:
    tenant, project, other = uuid4(), uuid4(), uuid4()
    mine = client(tenant, project, {"incidents"})
    other_project = client(tenant, other, {"incidents"})
    other_tenant = client(other, project, {"incidents"})
    alerts_only = client(tenant, project, {"alerts"})
    hub = hub_of(mine, other_project, other_tenant, alerts_only)
    dispatch_in_one_turn(hub, event(1, tenant, project))
    assert [m["position"] for m in messages(mine)] == [1]
    assert messages(other_project) == messages(other_tenant) == messages(alerts_only) == []


def test_the_events_of_one_turn_leave_in_one_write_per_client_in_order() -> None:
    tenant, project = uuid4(), uuid4()
    a, b = client(tenant, project, {"incidents"}), client(tenant, project, {"incidents"})
    hub = hub_of(a, b)
    dispatch_in_one_turn(hub, *(event(p, tenant, project) for p in (1, 2, 3)))
    for c in (a, b):
        assert len(c.connection.transport.writes) == 1
        assert [m["position"] for m in messages(c)] == [1, 2, 3]


def test_a_client_that_cannot_keep_up_is_flagged_without_blocking_others() -> None:
    tenant, project = uuid4(), uuid4()
    slow, fast = client(tenant, project, {"incidents"}), client(tenant, project, {"incidents"})
    hub = hub_of(slow, fast)
    slow.connection.transport.unsent = MAX_UNSENT_BYTES + 1
    dispatch_in_one_turn(hub, event(1, tenant, project))
    assert slow.too_slow.is_set() and messages(slow) == []
    assert not fast.too_slow.is_set() and [m["position"] for m in messages(fast)] == [1]


def test_replay_then_live_has_no_gap_and_no_duplicate() -> None:
    tenant, project = uuid4(), uuid4()
    c = client(tenant, project, {"incidents"})
    c.sent = 2

    class Bus:
        async def replay(self, tenant_id: UUID, project_id: UUID, since: int) -> list[PublicEvent]:
            # While the replay is fetched, live events 4 and 5 arrive; 4 is also in the replay.
            hub.dispatch(event(4, tenant, project))
            hub.dispatch(event(5, tenant, project))
            return [event(3, tenant, project), event(4, tenant, project)]

    hub = hub_of(c)

    async def scenario() -> None:
        await c.replay_then_go_live(Bus(), 2)  # type: ignore[arg-type]
        hub.dispatch(event(6, tenant, project))
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert [m["position"] for m in messages(c)] == [3, 4, 5, 6]
