"""Readiness: can this process do its job right now? Each dependency answers for itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from copilot.bootstrap import Container
from copilot.ops.metrics import Metrics
from copilot.projections import all_projections
from copilot.projections.runner import read_positions

__all__ = ["MAX_PROJECTION_LAG", "readiness", "readiness_answer", "refresh_gauges"]

MAX_PROJECTION_LAG = 1000  # events; beyond it reads are too stale to call the process ready


def _log_state(container: Container) -> tuple[int, dict[str, int]]:
    return container.store.head(), read_positions(container.db)


async def readiness(
    container: Container | None, nats_connected: Callable[[], bool] | None
) -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {}
    if container is not None:
        try:
            head, positions = await asyncio.wait_for(asyncio.to_thread(_log_state, container), timeout=3)
            checks["event_store"] = {"ok": True, "head": head}
            names = [p.name for p in all_projections()]
            lag = max((head - positions.get(name, 0) for name in names), default=0)
            checks["projections"] = {"ok": lag <= MAX_PROJECTION_LAG, "lag": lag}
        except Exception as error:  # any failure to reach the store is "not ready", with why
            checks["event_store"] = {"ok": False, "detail": f"{type(error).__name__}: {error}"[:300]}
    if nats_connected is not None:
        checks["nats"] = {"ok": nats_connected()}
    return all(check["ok"] for check in checks.values()), checks


async def readiness_answer(
    container: Container | None, nats_connected: Callable[[], bool] | None
) -> tuple[int, dict[str, Any]]:
    """`/readyz` on every port: 200 or 503, and the checks that decided it."""
    ready, checks = await readiness(container, nats_connected)
    return (200 if ready else 503), {"status": "ready" if ready else "not_ready", "checks": checks}


def refresh_gauges(container: Container, metrics: Metrics) -> None:
    """Values read at scrape time: the log head, each projection's position and lag, the relay's lag."""
    head, positions = _log_state(container)
    metrics.log_head.set(head)
    for projection in all_projections():
        position = positions.get(projection.name, 0)
        metrics.projection_position.labels(projection.name).set(position)
        metrics.projection_lag.labels(projection.name).set(head - position)
    if "relay" in positions:
        metrics.relay_lag.set(head - positions["relay"])
