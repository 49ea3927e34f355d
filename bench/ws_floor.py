"""The delivery floor: the thinnest WebSocket server that does what the gateway must.

It speaks just enough of the gateway's protocol for bench/ws_clients.py (connect, subscribe,
each answered), and once CLIENTS are subscribed it sends RATE events a second for SECONDS, each
encoded once and written to every client with `websockets.broadcast`: no auth, no bus, no
per-client queue or filter. What 1,000 clients receive from it on this machine, measured by the
same client process, is what the copilot's delivery is compared with. It runs on uvloop, as the
copilot does.

    python bench/ws_floor.py PORT CLIENTS RATE SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import uvloop
import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve


async def main(port: int, clients: int, rate: float, seconds: float) -> None:
    subscribed: set[ServerConnection] = set()
    everyone = asyncio.Event()

    async def handler(socket: ServerConnection) -> None:
        try:
            async for raw in socket:
                message: dict[str, Any] = json.loads(raw)
                await socket.send(json.dumps({"type": f"{message.get('type')}ed"}))
                if message.get("type") == "subscribe":
                    subscribed.add(socket)
                    if len(subscribed) >= clients:
                        everyone.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            subscribed.discard(socket)

    async with serve(handler, "127.0.0.1", port, max_queue=None):
        print(json.dumps({"listening": port}), flush=True)
        await everyone.wait()
        started = time.monotonic()
        for n in range(int(rate * seconds)):
            # Always yield, even when behind: closed connections must be noticed and dropped.
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            if not subscribed:
                break
            event = {"type": "incident.updated", "position": n, "timestamp": datetime.now(UTC).isoformat(),
                     "data": {"id": "00000000-0000-0000-0000-000000000000", "state": "acknowledged"}}
            broadcast(subscribed, json.dumps(event))
        await asyncio.sleep(5)  # let the last frames drain before the clients stop listening


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
