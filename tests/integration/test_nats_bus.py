"""The bus on a NATS server of the test's own: a batch JetStream does not acknowledge in time is
the relay's to send again, and it is stored once."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from copilot.stream.events import PublicEvent
from copilot.stream.nats_bus import NatsBus
from tests.e2e.server import free_port
from tests.own_nats import own_nats


def test_a_batch_not_acknowledged_in_time_fails_whole_and_sent_again_is_stored_once(tmp_path: Path) -> None:
    port = free_port()
    tenant, project = uuid4(), uuid4()
    batch = [PublicEvent(type="incident.created", data={"n": n}, timestamp=datetime.now(UTC), position=n,
                         tenant_id=tenant, project_id=project, channel="incidents") for n in range(1, 301)]

    async def publish_through_a_pause(server_pid: int) -> list[int]:
        bus = NatsBus(f"nats://127.0.0.1:{port}", ack_timeout=1.0)
        await bus.start()
        try:
            await bus.publish(batch[:100], "store")
            os.kill(server_pid, signal.SIGSTOP)  # NATS takes the bytes but answers nothing
            try:
                try:
                    await bus.publish(batch[100:], "store")
                    raise AssertionError("a batch nobody acknowledged counted as published")
                except TimeoutError:
                    pass
                # The unanswered publishes gave their places in the client's window back: a bus
                # that keeps failing does not end up unable to publish at all.
                assert bus._js.publish_async_pending() == 0
            finally:
                os.kill(server_pid, signal.SIGCONT)
            await bus.publish(batch[100:], "store")  # the relay's retry of the same positions
            return [event.position for event in await bus.replay(tenant, project, 0)]
        finally:
            await bus.close()

    with own_nats(tmp_path / "nats", port) as server:
        stored = asyncio.run(publish_through_a_pause(server.pid))

    assert stored == list(range(1, 301))  # every event, in order, once: the retry was de-duplicated
