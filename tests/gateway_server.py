"""A gateway served for real on a loopback port, from a thread with its own event loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from copilot.server import new_event_loop
from copilot.stream import Gateway

T = TypeVar("T")


@dataclass(frozen=True)
class Served:
    port: int
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the gateway's loop (as its bus would) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@contextmanager
def running_gateway(gateway: Gateway) -> Iterator[Served]:
    """Serve `gateway` on a free port of 127.0.0.1 until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    loop = new_event_loop()  # the one `copilot serve` runs on
    stop: list[asyncio.Event] = []
    listening = threading.Event()

    async def main() -> None:
        stop.append(asyncio.Event())
        loop.call_soon(listening.set)
        await gateway.serve(sock, stop[0])

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="gateway", daemon=True)
    thread.start()
    assert listening.wait(10), "the gateway did not start"
    try:
        yield Served(sock.getsockname()[1], loop)
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(15)
        loop.close()
