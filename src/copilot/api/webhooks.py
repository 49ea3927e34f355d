"""Alert ingestion: `POST /api/v1/webhooks/{type}/{integration_id}` with the integration's webhook token.

Alertmanager (and Prometheus, through Alertmanager) and Grafana send their own webhook
bodies; everything else sends the generic shape. The token, not a user session,
authenticates: it is compared in constant time with the stored hash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Controller, Request, post

from copilot.api.context import blocking, read_your_writes
from copilot.api.schemas import IngestionResult
from copilot.bootstrap import Container
from copilot.domain import Integration, NotFoundError, UnauthorizedError
from copilot.integrations.alert_formats import (
    AlertmanagerPayload,
    GenericPayload,
    IncomingAlert,
    from_alertmanager,
    from_generic,
)

__all__ = ["WebhooksController"]

# Which integration types a payload format may be delivered to.
_ALERTMANAGER_KINDS = frozenset({"alertmanager", "prometheus"})


def bearer_token(request: Request[Any, Any, Any]) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("send the integration's webhook token as Authorization: Bearer <token>")
    return token.strip()


async def _ingest(
    request: Request[Any, Any, Any],
    container: Container,
    integration_id: UUID,
    accepted_kinds: frozenset[str],
    parse: Callable[[Integration, datetime], Sequence[IncomingAlert]],
) -> IngestionResult:
    integration = await blocking(container.alert_commands.authenticate, integration_id, bearer_token(request))
    if integration.kind not in accepted_kinds:
        raise NotFoundError(f"this integration is of type {integration.kind}; use its own webhook URL")
    alerts = parse(integration, datetime.now(UTC))
    report = await blocking(container.alert_commands.ingest, integration, alerts)
    await read_your_writes(container, report.position)
    return IngestionResult(
        received=report.received, fired=report.fired, repeated=report.repeated, resolved=report.resolved,
        incidents_opened=report.incidents_opened, incidents_joined=report.incidents_joined,
    )


def _label(integration: Integration) -> str | None:
    label = integration.config.get("service_label")
    return str(label) if label else None


class WebhooksController(Controller):
    path = "/webhooks"
    tags = ["Alert ingestion"]
    status_code = 200

    @post("/alertmanager/{integration_id:uuid}", operation_id="ingestAlertmanager", status_code=200,
          summary="Alertmanager webhook_config receiver (version 4)")
    async def alertmanager(
        self, request: Request[Any, Any, Any], integration_id: UUID, data: AlertmanagerPayload, container: Container
    ) -> IngestionResult:
        return await _ingest(request, container, integration_id, _ALERTMANAGER_KINDS,
                             lambda i, now: from_alertmanager(data, _label(i), now))

    @post("/prometheus/{integration_id:uuid}", operation_id="ingestPrometheus", status_code=200,
          summary="Prometheus alerts, as Alertmanager forwards them")
    async def prometheus(
        self, request: Request[Any, Any, Any], integration_id: UUID, data: AlertmanagerPayload, container: Container
    ) -> IngestionResult:
        return await _ingest(request, container, integration_id, _ALERTMANAGER_KINDS,
                             lambda i, now: from_alertmanager(data, _label(i), now))

    @post("/grafana/{integration_id:uuid}", operation_id="ingestGrafana", status_code=200,
          summary="Grafana alerting webhook contact point")
    async def grafana(
        self, request: Request[Any, Any, Any], integration_id: UUID, data: AlertmanagerPayload, container: Container
    ) -> IngestionResult:
        return await _ingest(request, container, integration_id, frozenset({"grafana"}),
                             lambda i, now: from_alertmanager(data, _label(i), now))

    @post("/{kind:str}/{integration_id:uuid}", operation_id="ingestGeneric", status_code=200,
          summary="The generic alert shape, for webhook, datadog and pagerduty integrations")
    async def generic(
        self, request: Request[Any, Any, Any], kind: str, integration_id: UUID, data: GenericPayload,
        container: Container,
    ) -> IngestionResult:
        if kind not in ("webhook", "datadog", "pagerduty"):
            raise NotFoundError(f"no webhook for type {kind!r}")
        return await _ingest(request, container, integration_id, frozenset({kind}),
                             lambda i, now: from_generic(data, _label(i), now))
