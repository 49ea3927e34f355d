"""The bus on a NATS server of the test's own: a batch JetStream does not acknowledge in time
fails within the bus's timeout, whatever its size, and sent again is stored once."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from copilot.stream.events import PublicEvent
from copilot.stream.nats_bus import NatsBus
from tests.e2e.server import free_port
from tests.own_nats import own_nats

ACK_TIMEOUT = 1.0


def test_a_batch_not_acknowledged_in_time_fails_in_time_and_sent_again_is_stored_once(tmp_path: Path) -> None:
    port = free_port()
    tenant, project = uuid4(), uuid4()
    # Positions 201-300 carry 200 KB each: 20 MB, past nats-py's 2 MiB buffer, where the client
    # forces a flush in the middle of publishing (and swallows a cancellation while it waits).
    batch = [PublicEvent(type="incident.created", data={"n": n, "pad": "x" * (200_000 if n > 200 else 10)},
                         timestamp=datetime.now(UTC), position=n, tenant_id=tenant, project_id=project,
                         channel="incidents") for n in range(1, 301)]

    async def refused_within_the_timeout(bus: NatsBus, events: list[PublicEvent]) -> None:
        started = time.monotonic()
        try:
            await bus.publish(events, "store")
        except TimeoutError:
            assert time.monotonic() - started < ACK_TIMEOUT + 1.5, "the bus waited past its timeout"
        else:
            raise AssertionError("a batch nobody acknowledged counted as published")

    async def publish_through_pauses(server_pid: int) -> list[int]:
        bus = NatsBus(f"nats://127.0.0.1:{port}", ack_timeout=ACK_TIMEOUT)
        await bus.start()
        try:
            await bus.publish(batch[:100], "store")
            os.kill(server_pid, signal.SIGSTOP)  # NATS takes bytes while its buffers last, answers nothing
            # Should the bus wait past its timeout, NATS comes back after 10 s and the wait is
            # measured, instead of the test hanging on a server that never answers.
            watchdog = threading.Timer(10, os.kill, (server_pid, signal.SIGCONT))
            watchdog.start()
            try:
                await refused_within_the_timeout(bus, batch[100:200])
                # The unanswered publishes gave their places in the client's window back: a bus
                # that keeps failing does not end up unable to publish at all.
                assert bus._js.publish_async_pending() == 0
                await refused_within_the_timeout(bus, batch[200:])
            finally:
                watchdog.cancel()
                os.kill(server_pid, signal.SIGCONT)
            await bus.publish(batch[100:], "store")  # the relay's retry of the same positions
            return [event.position for event in await bus.replay(tenant, project, 0)]
        finally:
            await bus.close()

    with own_nats(tmp_path / "nats", port) as server:
        stored = asyncio.run(publish_through_pauses(server.pid))

    assert stored == list(range(1, 301))  # every event, in order, once: the retries were de-duplicated
