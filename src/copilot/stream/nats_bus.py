"""The bus on NATS JetStream: one stream, subjects per tenant, project and channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec

from copilot.stream.bus import LiveHandler
from copilot.stream.events import SUBJECT_PREFIX, PublicEvent, subject_for

__all__ = ["STREAM_NAME", "NatsBus"]

log = logging.getLogger(__name__)

STREAM_NAME = "COPILOT"
# Nats-Msg-Id de-duplication covers relay retries within this window.
DUPLICATE_WINDOW_SECONDS = 300
RETENTION_SECONDS = 7 * 24 * 3600


class NatsBus:
    def __init__(self, url: str, *, name: str = "copilot", ack_timeout: float = 10.0) -> None:
        self.url = url
        self.name = name
        self.ack_timeout = ack_timeout  # for a published batch's acknowledgements, all of them
        self._nc: Any = None
        self._js: Any = None
        self._decoder = msgspec.json.Decoder(PublicEvent)
        self._encoder = msgspec.json.Encoder()
        self._subscriptions: list[Any] = []
        self._ready = asyncio.Event()
        self._connecting: asyncio.Task[None] | None = None
        self._live_handler: LiveHandler | None = None
        self._live_subscription: Any = None
        self._last_stream_seq = 0  # of the last live message, to resume after a reconnect

    async def start(self) -> None:
        """Connect in the background: the server starts (and commands succeed) while NATS is down."""
        self._connecting = asyncio.create_task(self._connect_until_up())

    async def _connect_until_up(self) -> None:
        import nats

        async def on_error(error: Exception) -> None:
            log.warning("NATS: %s", error)

        async def on_reconnect() -> None:
            log.info("reconnected to NATS")
            try:
                await self._ensure_stream()  # a NATS that lost its store lost the stream too
                if self._live_handler is not None:
                    await self._subscribe_live()
            except Exception:
                log.exception("could not resume the live subscription after reconnecting")

        delay = 0.2
        while True:
            try:
                self._nc = await nats.connect(
                    self.url, name=self.name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                    error_cb=on_error, reconnected_cb=on_reconnect, connect_timeout=3, allow_reconnect=True,
                )
                self._js = self._nc.jetstream(timeout=5)
                await self._ensure_stream()
                self._ready.set()
                log.info("connected to NATS at %s", self.url)
                return
            except Exception as error:
                log.warning("NATS at %s unavailable (%s); retrying", self.url, error)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _wait_ready(self, timeout: float | None = None) -> None:
        if not self._ready.is_set():
            await asyncio.wait_for(self._ready.wait(), timeout)

    async def _ensure_stream(self) -> None:
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        config = StreamConfig(
            name=STREAM_NAME, subjects=[f"{SUBJECT_PREFIX}.>"], duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=RETENTION_SECONDS,
        )
        try:
            await self._js.stream_info(STREAM_NAME)
        except NotFoundError:
            await self._js.add_stream(config)

    @property
    def connected(self) -> bool:
        return bool(self._nc is not None and self._nc.is_connected)

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self._nc is not None:
            for subscription in self._subscriptions:
                try:
                    await subscription.unsubscribe()
                except Exception:  # closing anyway
                    log.debug("unsubscribe failed", exc_info=True)
            try:
                await self._nc.drain()
            except Exception:  # reconnecting or closed: nothing left to flush
                await self._nc.close()
            self._nc = None

    async def publish(self, events: Sequence[PublicEvent], source: str) -> None:
        """Publish a batch and wait until JetStream has acknowledged every message (`ack_timeout`).

        The batch goes out as one socket write: no publish waits on anything (`wait_stall=None`
        awaits the library's window of unacknowledged publishes without a timeout task, and a
        batch of at most a few hundred never fills its 4,000 places), so the client's flusher runs
        once, after the last. With a timeout each publish yielded to the loop, the flusher wrote
        every message by itself, and the write was a third of the relay's time.

        The sending is waited for, not cancelled into: nats-py swallows a cancellation while it
        forces a flush (a batch past its 2 MiB buffer), so a timeout wrapped around the publishes
        could be lost, and the relay would wait for ever on a NATS that takes bytes and answers
        nothing. On a timeout the batch is given up (a send still under way may finish later;
        Nats-Msg-Id makes the relay's retry harmless either way)."""
        await self._wait_ready(timeout=1.0)
        if not self.connected:
            raise ConnectionError("NATS is not connected")
        futures: list[asyncio.Future[Any]] = []
        sending = asyncio.ensure_future(self._send(events, source, futures))
        sending.add_done_callback(_retrieved)
        try:
            done, _ = await asyncio.wait({sending}, timeout=self.ack_timeout)
        finally:
            if not sending.done():
                sending.cancel()
                for future in futures:
                    future.cancel()  # gives its place in the window back; a late acknowledgement is dropped
        if not done:
            await asyncio.sleep(0)  # the cancelled futures' callbacks give their places back first
            raise TimeoutError(f"NATS did not acknowledge {len(events)} events within {self.ack_timeout} s")
        sending.result()  # what the sending raised, if anything

    async def _send(self, events: Sequence[PublicEvent], source: str, futures: list[asyncio.Future[Any]]) -> None:
        try:
            for event in events:
                futures.append(await self._js.publish_async(
                    event.subject, self._encoder.encode(event),
                    headers={"Nats-Msg-Id": f"{source}-{event.position}"}, wait_stall=None))
            # Raises if any publish was not acknowledged; the relay then retries the batch and
            # Nats-Msg-Id makes the retry harmless.
            for outcome in await asyncio.gather(*futures, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    async def subscribe(self, handler: LiveHandler) -> None:
        self._live_handler = handler
        await self._wait_ready()
        await self._subscribe_live()

    async def _subscribe_live(self) -> None:
        """(Re)create the live consumer, resuming after the last message seen, if the stream still has it."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        if self._live_subscription is not None:
            with contextlib.suppress(Exception):
                await self._live_subscription.unsubscribe()
            self._live_subscription = None
        info = await self._js.stream_info(STREAM_NAME)
        if self._last_stream_seq and info.state.last_seq >= self._last_stream_seq:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                    opt_start_seq=self._last_stream_seq + 1)
        else:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
        handler = self._live_handler
        assert handler is not None

        async def on_message(msg: Any) -> None:
            self._last_stream_seq = msg.metadata.sequence.stream
            try:
                handler(self._decoder.decode(msg.data))
            except Exception:
                log.exception("dropping an undecodable or unhandled message on %s", msg.subject)

        self._live_subscription = await self._js.subscribe(
            f"{SUBJECT_PREFIX}.>", cb=on_message, ordered_consumer=True, config=config, stream=STREAM_NAME,
            idle_heartbeat=2.0,
        )

    async def replay(self, tenant_id: UUID, project_id: UUID, since: int) -> list[PublicEvent]:
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import DeliverPolicy

        await self._wait_ready(timeout=5.0)
        subject = subject_for(tenant_id, project_id, "*")
        subscription = await self._js.subscribe(
            subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL, stream=STREAM_NAME,
        )
        events: list[PublicEvent] = []
        try:
            while True:
                try:
                    msg = await subscription.next_msg(timeout=1.0)
                except NatsTimeout:
                    break  # nothing stored for this project (or nothing more)
                event = self._decoder.decode(msg.data)
                if event.position > since:
                    events.append(event)
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await subscription.unsubscribe()
        return events


def _retrieved(task: asyncio.Future[None]) -> None:
    """A batch's sending given up on may still end in an error; it was reported already."""
    if not task.cancelled():
        task.exception()
