"""Runs a copilot process: one role or all of them, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

from copilot.settings import Settings

__all__ = ["ROLES", "serve"]

log = logging.getLogger(__name__)

ROLES = ("all", "api", "stream", "projector")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us, so several share one loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn(app: Any, settings: Settings, port: int) -> _Server:
    config = uvicorn.Config(
        app,
        host=settings.bind_host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level == "DEBUG",
        lifespan="on",
        ws_max_size=64 * 1024,
        timeout_graceful_shutdown=10,
    )
    return _Server(config)


async def _serve(settings: Settings, role: str) -> None:
    from copilot.bootstrap import build_container
    from copilot.security import TokenIssuer

    servers: list[_Server] = []
    container = None
    stop = asyncio.Event()
    if role in ("all", "api", "projector"):
        container = await asyncio.to_thread(build_container, settings, run_projections=role != "api")
        if container.runner is not None:
            container.runner.start()
    if role in ("all", "api"):
        from copilot.api.app import create_api_app

        assert container is not None
        servers.append(_uvicorn(create_api_app(container), settings, settings.api_port))
    if role in ("all", "stream"):
        from copilot.stream import create_gateway_app

        servers.append(_uvicorn(create_gateway_app(TokenIssuer(settings.secret_key)), settings, settings.ws_port))

    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        log.info("stopping")
        stop.set()
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)
    log.info(
        "copilot serving role=%s backend=%s api=:%s ws=:%s", role,
        "sqlite" if settings.embedded else "postgresql", settings.api_port, settings.ws_port,
    )
    try:
        if servers:
            await asyncio.gather(*(server.serve() for server in servers))
        else:
            await stop.wait()
    finally:
        if container is not None:
            await asyncio.to_thread(container.close)
    if any(not server.started for server in servers) and not stop.is_set():
        raise SystemExit("a server failed to start (is the port in use?)")


def serve(settings: Settings, role: str = "all") -> None:
    asyncio.run(_serve(settings, role))
