"""The gateway's fan-out without sockets: routing by tenant and project, bounded queues, replay joins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from copilot.security import TokenClaims
from copilot.stream.events import PublicEvent
from copilot.stream.gateway import QUEUE_SIZE, Hub, _Client


def claims(tenant: UUID, project: UUID) -> TokenClaims:
    return TokenClaims(typ="ws", sub=uuid4(), tid=tenant, sid=uuid4(), pid=project, jti="j", iat=0, exp=0)


def event(position: int, tenant: UUID, project: UUID, channel: str = "incidents") -> PublicEvent:
    return PublicEvent(type="incident.created", data={"id": str(uuid4())}, timestamp=datetime.now(UTC),
                       position=position, tenant_id=tenant, project_id=project, channel=channel)


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)


def client(tenant: UUID, project: UUID, channels: set[str]) -> _Client:
    c = _Client(FakeSocket(), claims(tenant, project))  # type: ignore[arg-type]
    c.channels = channels
    return c


def test_events_reach_only_clients_of_their_tenant_and_project_and_channel() -> None:
    tenant, project, other = uuid4(), uuid4(), uuid4()
    mine = client(tenant, project, {"incidents"})
    other_project = client(tenant, other, {"incidents"})
    other_tenant = client(other, project, {"incidents"})
    alerts_only = client(tenant, project, {"alerts"})
    hub = Hub()
    for c in (mine, other_project, other_tenant, alerts_only):
        hub.add(c)
    hub.dispatch(event(1, tenant, project))
    assert mine.queue.qsize() == 1
    assert other_project.queue.qsize() == other_tenant.queue.qsize() == alerts_only.queue.qsize() == 0


def test_a_client_that_cannot_keep_up_is_flagged_without_blocking_others() -> None:
    tenant, project = uuid4(), uuid4()
    slow, fast = client(tenant, project, {"incidents"}), client(tenant, project, {"incidents"})
    hub = Hub()
    hub.add(slow)
    hub.add(fast)
    for position in range(1, QUEUE_SIZE + 2):
        hub.dispatch(event(position, tenant, project))
        if fast.queue.qsize():
            fast.queue.get_nowait()  # the fast one drains as it goes
    assert slow.too_slow.is_set()
    assert not fast.too_slow.is_set()


def test_replay_then_live_has_no_gap_and_no_duplicate() -> None:
    tenant, project = uuid4(), uuid4()
    c = client(tenant, project, {"incidents"})
    c.sent = 2

    class Bus:
        async def replay(self, tenant_id: UUID, project_id: UUID, since: int) -> list[PublicEvent]:
            # While the replay is fetched, live events 4 and 5 arrive; 4 is also in the replay.
            c.offer(event(4, tenant, project))
            c.offer(event(5, tenant, project))
            return [event(3, tenant, project), event(4, tenant, project)]

    async def scenario() -> list[int]:
        await c.replay_then_go_live(Bus(), 2)  # type: ignore[arg-type]
        writer = asyncio.create_task(c.write_events())
        await asyncio.sleep(0.05)
        writer.cancel()
        import json

        socket: Any = c.socket
        return [json.loads(text)["position"] for text in socket.sent]

    assert asyncio.run(scenario()) == [3, 4, 5]
