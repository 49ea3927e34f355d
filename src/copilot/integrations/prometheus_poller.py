"""Polls Prometheus integrations that ask for it (`config.poll_interval_seconds`) for firing alerts.

An alert Prometheus reports as firing is ingested like a webhook's (deduplicated by a
fingerprint of its labels); one this integration had firing that Prometheus no longer
reports is resolved. Prefer one path per integration: Alertmanager fingerprints differ
from these, so the same alert polled and pushed through Alertmanager would count twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import msgspec

from copilot.commands.alerts import AlertHandlers
from copilot.commands.store import EventStore
from copilot.domain import Integration
from copilot.integrations.alert_formats import AlertmanagerAlert, AlertmanagerPayload, IncomingAlert, from_alertmanager
from copilot.integrations.probes import forbidden_target
from copilot.projections.db import ReadDatabase

__all__ = ["PrometheusPoller"]

log = logging.getLogger(__name__)


class _PromAlert(msgspec.Struct, forbid_unknown_fields=False):
    labels: dict[str, str]
    state: str
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    activeAt: datetime | None = None  # Prometheus's field name


class _PromData(msgspec.Struct, forbid_unknown_fields=False):
    alerts: list[_PromAlert]


class _PromAlerts(msgspec.Struct, forbid_unknown_fields=False):
    status: str
    data: _PromData


class PrometheusPoller:
    def __init__(self, store: EventStore, db: ReadDatabase, alerts: AlertHandlers, tick_seconds: float = 2.0) -> None:
        self.store = store
        self.db = db
        self.alerts = alerts
        self.tick_seconds = tick_seconds
        self._last_poll: dict[UUID, float] = {}
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    def _due(self) -> list[tuple[UUID, dict[str, Any]]]:
        rows = self.db.fetch_all(
            "SELECT id, config FROM integrations WHERE type = 'prometheus' AND deleted_at IS NULL"
            " AND enabled = :enabled", {"enabled": True})
        now = time.monotonic()
        due = []
        for row in rows:
            config = msgspec.json.decode(row["config"])
            interval = config.get("poll_interval_seconds")
            if interval and now - self._last_poll.get(row["id"], 0.0) >= interval:
                due.append((row["id"], config))
        return due

    def _firing_fingerprints(self, integration_id: UUID) -> set[str]:
        rows = self.db.fetch_all(
            "SELECT fingerprint FROM alerts WHERE integration_id = :id AND status = 'firing'", {"id": integration_id})
        return {row["fingerprint"] for row in rows}

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                for integration_id, config in await asyncio.to_thread(self._due):
                    self._last_poll[integration_id] = time.monotonic()
                    await self.poll(integration_id, config)
            except Exception:
                log.exception("polling Prometheus integrations failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.tick_seconds)

    async def poll(self, integration_id: UUID, config: dict[str, Any]) -> int:
        """Poll one integration now; return how many alerts it reported firing (-1 when unreachable)."""
        url = f"{config['url']}/api/v1/alerts"
        refusal = await forbidden_target(httpx.URL(url).host)
        if refusal:
            log.warning("not polling integration %s: %s", integration_id, refusal)
            return -1
        try:
            async with httpx.AsyncClient(timeout=5.0, follow_redirects=False, trust_env=False,
                                         verify=bool(config.get("verify_tls", True))) as client:
                response = await client.get(url)
            body = msgspec.json.decode(response.content, type=_PromAlerts)
        except (httpx.HTTPError, msgspec.DecodeError) as error:
            log.warning("polling %s failed: %s", url, error)
            return -1
        now = datetime.now(UTC)
        firing = [a for a in body.data.alerts if a.state == "firing"]
        payload = AlertmanagerPayload(alerts=[
            AlertmanagerAlert(status="firing", labels=a.labels, annotations=a.annotations, starts_at=a.activeAt)
            for a in firing
        ])
        incoming = from_alertmanager(payload, config.get("service_label"), now)
        await asyncio.to_thread(self._ingest, integration_id, incoming, now)
        return len(incoming)

    def _ingest(self, integration_id: UUID, firing: list[IncomingAlert], now: datetime) -> None:
        integration = self.store.find(Integration, integration_id)
        if integration is None or integration.deleted or not integration.enabled:
            return
        still = {a.fingerprint for a in firing}
        gone = self._firing_fingerprints(integration_id) - still
        resolved = [
            IncomingAlert(fingerprint=fp, name="", status="resolved", severity="info", service="", description="",
                          labels={}, annotations={}, starts_at=now, ends_at=now)
            for fp in sorted(gone)
        ]
        self.alerts.ingest(integration, [*firing, *resolved])
