"""N WebSocket clients of one project, in one process: each records how long every event took
from its timestamp (the moment the event was recorded) to its arrival. Prints a JSON summary.

The clients are the instrument, and at 1,000 clients x 200 events/s they must read 200,000
messages a second on a machine whose other core runs the server. A WebSocket library spends
tens of microseconds per message (a frame object, a queue, a task switch, a decode); these
clients speak the protocol themselves on an asyncio Protocol (RFC 6455: the handshake, masked
frames out, unmasked frames in, pong for ping) and, per message, read its frame header and
find its timestamp in the received bytes without copying them. A timestamp is parsed once per
event, not once per client. They run on uvloop, as the servers they measure do (the copilot and
bench/ws_floor.py): its transports read in C.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import sys
import time
from datetime import datetime
from typing import cast
from urllib.parse import urlsplit

import uvloop

_STAMP = b'"timestamp":'
_TEXT, _CLOSE, _PING = 0x1, 0x8, 0x9


def _frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: FIN, masked (RFC 6455 5.3), payload under 64 KiB."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    size = len(payload)
    header = bytes([0x80 | opcode]) + (bytes([0x80 | size]) if size < 126 else b"\xfe" + struct.pack("!H", size))
    return header + mask + masked


class Stamps:
    """Arrival minus event time, for every message every client of this process received."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self._sent: dict[bytes, float] = {}  # timestamp text -> seconds since the epoch

    def sent(self, text: bytes) -> float:
        value = self._sent.get(text)
        if value is None:
            value = self._sent[text] = datetime.fromisoformat(text.decode().replace("Z", "+00:00")).timestamp()
        return value


class Client(asyncio.Protocol):
    def __init__(self, host: str, path: str, hello: list[dict[str, object]], stamps: Stamps) -> None:
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.hello = list(hello)  # sent one at a time, each after the previous one's answer
        self.stamps = stamps
        self.buffer = b""
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport subclasses
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before subscribing: {exc!r}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _next_hello(self) -> None:
        assert self.transport is not None
        if self.hello:
            self.transport.write(_frame(_TEXT, json.dumps(self.hello.pop(0)).encode()))
        elif not self.ready.done():
            self.ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(buffer[:end].decode(errors="replace"))
            self.upgraded = True
            buffer = buffer[end + 4:]
            self._next_hello()
        arrived = time.time()
        latencies, sent, size, at = self.stamps.latencies, self.stamps.sent, len(buffer), 0
        while size - at >= 2:
            opcode, length = buffer[at] & 0x0F, buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if size - at < 4:
                    break
                length, start = int.from_bytes(buffer[at + 2:at + 4]), at + 4
            elif length == 127:
                if size - at < 10:
                    break
                length, start = int.from_bytes(buffer[at + 2:at + 10]), at + 10
            end = start + length
            if end > size:
                break
            at = end
            if opcode == _TEXT:
                stamp = buffer.find(_STAMP, start, end)
                if stamp >= 0:
                    stamp = buffer.find(b'"', stamp + len(_STAMP), end) + 1  # the value, after any space
                    latencies.append(arrived - sent(buffer[stamp:buffer.find(b'"', stamp, end)]))
                elif not self.ready.done():
                    self._next_hello()  # the answer to a hello message
            elif opcode == _PING:
                assert self.transport is not None
                self.transport.write(_frame(0xA, buffer[start:end]))
            elif opcode == _CLOSE:
                assert self.transport is not None
                self.transport.close()
        self.buffer = buffer[at:]


async def main(url: str, token: str, tenant: str, clients: int, seconds: float) -> None:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    stamps = Stamps()
    hello: list[dict[str, object]] = [{"type": "connect", "token": token, "tenantId": tenant},
                                      {"type": "subscribe", "channels": ["incidents"]}]
    connected: list[Client] = []
    for _ in range(clients):
        _, protocol = await loop.create_connection(
            lambda: Client(parts.netloc, parts.path or "/", hello, stamps), parts.hostname, parts.port)
        connected.append(protocol)
        await asyncio.sleep(0.002)  # do not stampede the accept queue
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in connected)), 120)
    print(json.dumps({"connected": len(connected)}), flush=True)  # the producer starts now
    await asyncio.sleep(seconds + 3)
    for c in connected:
        if c.transport is not None:
            c.transport.close()
    latencies = sorted(stamps.latencies)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    print(json.dumps({"messages": len(latencies), "p50_ms": pct(0.5), "p99_ms": pct(0.99)}), flush=True)


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
