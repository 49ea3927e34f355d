"""N WebSocket clients of one project, in one process: each records how long every event took
from its timestamp (the moment the event was recorded) to its arrival. Prints a JSON summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from datetime import datetime

import websockets

_TIMESTAMP = re.compile(r'"timestamp"\s*:\s*"([^"]+)"')


async def client(url: str, token: str, tenant: str, latencies: list[float], ready: asyncio.Event,
                 counter: list[int], total: int) -> None:
    async with websockets.connect(url, max_queue=4096, open_timeout=60) as socket:
        await socket.send(json.dumps({"type": "connect", "token": token, "tenantId": tenant}))
        await socket.recv()
        await socket.send(json.dumps({"type": "subscribe", "channels": ["incidents"]}))
        await socket.recv()
        counter[0] += 1
        if counter[0] == total:
            ready.set()
        # Read until main cancels, with as little work per message as can be: a thousand clients
        # in one process are the instrument, and it must stay faster than what it measures.
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in socket:
                arrived = time.time()
                stamp = _TIMESTAMP.search(raw if isinstance(raw, str) else raw.decode())
                if stamp is not None:
                    sent = datetime.fromisoformat(stamp.group(1).replace("Z", "+00:00")).timestamp()
                    latencies.append(arrived - sent)


async def main(url: str, token: str, tenant: str, clients: int, seconds: float) -> None:
    latencies: list[float] = []
    ready = asyncio.Event()
    counter = [0]
    tasks = []
    for _ in range(clients):
        tasks.append(asyncio.create_task(client(url, token, tenant, latencies, ready, counter, clients)))
        await asyncio.sleep(0.002)  # do not stampede the accept queue
    await asyncio.wait_for(ready.wait(), 120)
    print(json.dumps({"connected": counter[0]}), flush=True)  # the producer starts now
    await asyncio.sleep(seconds + 3)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    print(json.dumps({"messages": len(latencies), "p50_ms": pct(0.5), "p99_ms": pct(0.99)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
