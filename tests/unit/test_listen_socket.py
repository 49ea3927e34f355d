"""The listening socket `copilot serve` binds: connections it accepts send without Nagle's delay."""

from __future__ import annotations

import asyncio
import socket

from copilot.server import _listen


def test_accepted_connections_have_nagle_off() -> None:
    # With Nagle on, a response written as headers then body waits for the client's delayed
    # ACK: every keep-alive request after the first took 40 ms more.
    async def accepted_nodelay() -> int:
        listener = _listen("127.0.0.1", 0, "COPILOT_API_PORT")
        port = listener.getsockname()[1]
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            value = await asyncio.wait_for(seen, 5)
            writer.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0
