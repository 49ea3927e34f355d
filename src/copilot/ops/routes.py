"""/healthz, /readyz and /metrics: served on every role's port, outside /api/v1, unauthenticated."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from litestar import Response, get

from copilot.bootstrap import Container
from copilot.ops.health import readiness_answer, refresh_gauges
from copilot.ops.metrics import Metrics

__all__ = ["ops_routes"]


@get("/healthz", operation_id="healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """The process is alive (and nothing more)."""
    return {"status": "ok"}


def ops_routes(container: Container | None, metrics: Metrics, nats_connected: Callable[[], bool] | None,
               before_scrape: Callable[[], None] | None = None) -> list[Any]:
    """/healthz, /readyz and /metrics, served on every role's port, outside /api/v1, unauthenticated."""

    @get("/readyz", include_in_schema=False)
    async def readyz() -> Response[dict[str, Any]]:
        status, answer = await readiness_answer(container, nats_connected)
        return Response(answer, status_code=status)

    @get("/metrics", include_in_schema=False, media_type="text/plain; version=0.0.4")
    async def metrics_endpoint() -> bytes:
        if container is not None:
            with contextlib.suppress(Exception):  # a scrape still answers while the database is down
                await asyncio.to_thread(refresh_gauges, container, metrics)
        if before_scrape is not None:
            before_scrape()
        return metrics.render()

    return [healthz, readyz, metrics_endpoint]
