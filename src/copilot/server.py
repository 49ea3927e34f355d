"""Runs a copilot process: one role or all of them, until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from copilot.ops.memory import limit_malloc_arenas
from copilot.settings import Settings

__all__ = ["ROLES", "new_event_loop", "serve"]

log = logging.getLogger(__name__)

ROLES = ("all", "api", "stream", "projector", "relay", "investigator")
HEADLESS = ("projector", "relay", "investigator")  # roles whose port serves only /healthz, /readyz, /metrics


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us, so several share one loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop `serve` runs its servers on: uvloop's where it is installed (it comes with
    uvicorn[standard] on Linux and macOS), else asyncio's own. uvicorn would choose the same when
    it makes the loop itself; here several servers share one that `serve` makes. Per request it
    spends less in the loop (polling, callbacks, transports) than asyncio's Python selector loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _uvicorn(app: Any, settings: Settings, port: int) -> _Server:
    config = uvicorn.Config(
        app,
        host=settings.bind_host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep the process's logging (JSON lines or readable), configured by the CLI
        access_log=settings.log_level == "DEBUG",
        lifespan="on",
        ws="none",  # WebSockets are the gateway's (stream/gateway.py), on their own port
        timeout_graceful_shutdown=10,
    )
    return _Server(config)


def _build_bus(settings: Settings, container: Any) -> Any:
    from copilot.stream import InProcessBus, LogReader
    from copilot.stream.nats_bus import NatsBus

    if settings.nats_url:
        return NatsBus(settings.nats_url)
    if container is None:
        raise SystemExit("copilot: the stream role needs COPILOT_NATS_URL (embedded mode runs --role all)")
    reader = LogReader(container.store)

    async def replay_from_log(tenant_id: Any, project_id: Any, since: int) -> Any:
        return await asyncio.to_thread(reader.replay, tenant_id, project_id, since)

    return InProcessBus(replay_from_log)


async def _serve(settings: Settings, role: str, ports: dict[str, socket.socket]) -> None:
    from copilot.bootstrap import build_container
    from copilot.integrations.prometheus_poller import PrometheusPoller
    from copilot.investigation.workflow import Investigator
    from copilot.ops.metrics import Metrics
    from copilot.security import TokenIssuer
    from copilot.stream import Gateway, LogReader, Relay

    servers: list[_Server] = []
    sockets: dict[_Server, socket.socket] = {}
    tasks: list[asyncio.Task[None]] = []
    container = None
    stop = asyncio.Event()
    if role in ("all", "api", "projector", "relay", "investigator"):
        container = await asyncio.to_thread(
            build_container, settings, run_projections=role in ("all", "projector"))
        if container.runner is not None:
            container.runner.start()
    bus = _build_bus(settings, container) if role in ("all", "stream", "relay") else None
    if bus is not None:
        await bus.start()
    relay = None
    poller = None
    if role in ("all", "relay"):
        assert container is not None and bus is not None
        relay = Relay(LogReader(container.store), container.db, bus,
                      listen_conninfo=None if settings.embedded else settings.postgres.conninfo)
        container.store.on_append(relay.wake)
        tasks.append(asyncio.create_task(relay.run()))
        poller = PrometheusPoller(container.store, container.db, container.alert_commands)
        tasks.append(asyncio.create_task(poller.run()))
    investigator = None
    if role in ("all", "investigator"):
        assert container is not None
        llm = None
        if settings.llm_model != "builtin":
            from copilot.investigation.llm import LLMEngine

            llm = LLMEngine(settings.llm_model, settings.llm_api_base, settings.llm_api_key)
        investigator = Investigator(container.store, container.db, llm=llm, read_models=container.waiter,
                                    listen_conninfo=None if settings.embedded else settings.postgres.conninfo,
                                    partitions=settings.investigator_partitions)
        container.store.on_append(investigator.wake)
        tasks.append(asyncio.create_task(investigator.run()))
    nats_connected = (lambda: bool(bus.connected)) if bus is not None and settings.nats_url else None
    metrics = Metrics()
    if investigator is not None:
        investigator.metrics = metrics
    if relay is not None:
        relay.on_publish_error = metrics.publish_errors.inc
    if role in ("all", "api"):
        from copilot.api.app import create_api_app

        assert container is not None
        servers.append(_uvicorn(create_api_app(container, metrics, nats_connected), settings, settings.api_port))
        sockets[servers[-1]] = ports["api"]
    if role in HEADLESS:
        # Roles without an API still answer probes and scrapes, on COPILOT_API_PORT.
        from litestar import Litestar

        from copilot.ops.routes import ops_routes

        ops = Litestar(ops_routes(container, metrics, nats_connected), openapi_config=None, logging_config=None)
        servers.append(_uvicorn(ops, settings, settings.api_port))
        sockets[servers[-1]] = ports["api"]
    gateway = None
    if role in ("all", "stream"):
        assert bus is not None
        gateway = Gateway(TokenIssuer(settings.secret_key), bus, metrics=metrics, nats_connected=nats_connected)

    loop = asyncio.get_running_loop()

    def request_stop() -> None:
        log.info("stopping")
        stop.set()
        for server in servers:
            server.should_exit = True
        if relay is not None:
            relay.stop()
        if poller is not None:
            poller.stop()
        if investigator is not None:
            investigator.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)
    log.info(
        "copilot serving role=%s backend=%s bus=%s api=:%s ws=:%s", role,
        "sqlite" if settings.embedded else "postgresql", "nats" if settings.nats_url else "in-process",
        settings.api_port, settings.ws_port,
    )
    try:
        running = [asyncio.create_task(server.serve(sockets=[sockets[server]])) for server in servers]
        if gateway is not None:
            running.append(asyncio.create_task(gateway.serve(ports["ws"], stop)))
        # Until a signal, or until a server ends by itself: then everything stops.
        await asyncio.wait([*running, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        request_stop()
        await asyncio.gather(*running)
        for task in tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=5)
    finally:
        # uvloop leaves a closed loop's handlers bound (asyncio's loop restores the defaults):
        # a second Ctrl-C while the process waits for its threads at exit must still stop it.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if bus is not None:
            await bus.close()
        if container is not None:
            await asyncio.to_thread(container.close)


def _listen(host: str, port: int, variable: str) -> socket.socket:
    """Bind before anything else starts, so a busy port is one clear line, not a traceback.

    The protocol is named (IPPROTO_TCP, not 0): asyncio turns Nagle's algorithm off only on
    connections whose socket says TCP. Without it an answer's body, written after its headers,
    waited for the client's delayed ACK: 40 ms on every request after a connection's first.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # now, so a port taken by another listener fails here and not inside uvicorn
    except OSError as error:
        sock.close()
        raise SystemExit(f"copilot: cannot listen on {host}:{port} ({error.strerror}); "
                         f"is something else using it? Set {variable} to another port.") from None
    return sock


def _run_behind(nice: int) -> None:
    """Lower this process's CPU priority to `nice` (never raise it). On Linux a nice value is a
    thread's, inherited by the threads it starts: this runs before any is started."""
    if nice > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, nice)


def serve(settings: Settings, role: str = "all") -> None:
    limit_malloc_arenas()  # before any thread starts (see ops/memory.py)
    if role == "investigator":
        # Measured with the roles apart on two cores (session 10): the API answered 582-593
        # creates/s beside an investigator at nice 0, 1,101-1,104 at nice 10; the incidents were
        # investigated at 316/s instead of 344-373 (they catch up once the burst is over).
        _run_behind(settings.investigator_nice)
    ports = {}
    if role in ("all", "api", *HEADLESS):
        ports["api"] = _listen(settings.bind_host, settings.api_port, "COPILOT_API_PORT")
    if role in ("all", "stream"):
        ports["ws"] = _listen(settings.bind_host, settings.ws_port, "COPILOT_WS_PORT")
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(_serve(settings, role, ports))
    finally:
        for sock in ports.values():
            sock.close()
