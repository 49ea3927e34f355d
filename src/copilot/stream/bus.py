"""The fan-out between the relay and the gateways: NATS JetStream, or in-process when embedded."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol
from uuid import UUID

from copilot.stream.events import PublicEvent

__all__ = ["EventBus", "InProcessBus", "LiveHandler", "ReplaySource"]

log = logging.getLogger(__name__)

LiveHandler = Callable[[PublicEvent], None]
ReplaySource = Callable[[UUID, UUID, int], Awaitable[list[PublicEvent]]]


class EventBus(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, events: Sequence[PublicEvent], source: str) -> None:
        """Publish in order; return only once every event is accepted (raise otherwise).

        `source` names the event store, so "<source>-<position>" names each event uniquely.
        """
    async def subscribe(self, handler: LiveHandler) -> None:
        """Call `handler` for every event published from now on, in order."""
    async def replay(self, tenant_id: UUID, project_id: UUID, since: int) -> list[PublicEvent]:
        """The tenant-project's events after position `since`, in order."""


class InProcessBus:
    """Embedded mode: hands events straight to the gateway in this process; replays from the log."""

    def __init__(self, replay_source: ReplaySource) -> None:
        self._handlers: list[LiveHandler] = []
        self._replay_source = replay_source
        self._last_position = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()

    async def publish(self, events: Sequence[PublicEvent], source: str) -> None:
        for event in events:
            if event.position <= self._last_position:
                continue  # the relay re-sent it after a restart: like Nats-Msg-Id, deliver once
            self._last_position = event.position
            for handler in self._handlers:
                try:
                    handler(event)
                except Exception:  # one broken subscriber must not stop the others
                    log.exception("event handler failed")

    async def subscribe(self, handler: LiveHandler) -> None:
        self._handlers.append(handler)

    async def replay(self, tenant_id: UUID, project_id: UUID, since: int) -> list[PublicEvent]:
        return await self._replay_source(tenant_id, project_id, since)
