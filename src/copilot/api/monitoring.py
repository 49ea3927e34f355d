"""Monitoring endpoints of a project: integrations, connection tests, alerts, the correlation rule."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.params import Parameter

from copilot.api.context import Principal, blocking, read_your_writes
from copilot.api.schemas import (
    AlertRead,
    ConnectionTestRequest,
    ConnectionTestResult,
    CorrelationRule,
    IntegrationCreate,
    IntegrationRead,
    IntegrationUpdate,
    LastTest,
    Severity,
    WebhookToken,
)
from copilot.bootstrap import Container
from copilot.commands.integrations import (
    ChangeCorrelationRule,
    CreateIntegration,
    DeleteIntegration,
    RecordConnectionTest,
    RotateWebhookToken,
    UpdateIntegration,
)
from copilot.domain import NotFoundError
from copilot.domain.integration import validate_config
from copilot.integrations.probes import probe

__all__ = ["MonitoringController"]


def webhook_url(request: Request[Any, Any, Any], kind: str, integration_id: UUID) -> str:
    return f"{str(request.base_url).rstrip('/')}/api/v1/webhooks/{kind}/{integration_id}"


def _integration(row: dict[str, Any], request: Request[Any, Any, Any], token: str | None = None) -> IntegrationRead:
    last_test = None
    if row["last_test_at"] is not None:
        last_test = LastTest(at=row["last_test_at"], success=bool(row["last_test_success"]),
                             detail=row["last_test_detail"] or "")
    return IntegrationRead(
        id=row["id"], project_id=row["project_id"], name=row["name"], type=row["type"],
        config=msgspec.json.decode(row["config"]), has_credentials=bool(row["has_credentials"]),
        enabled=bool(row["enabled"]), webhook_url=webhook_url(request, row["type"], row["id"]),
        created_at=row["created_at"], updated_at=row["updated_at"], last_test=last_test, webhook_token=token,
    )


def _alert(row: dict[str, Any]) -> AlertRead:
    return AlertRead(
        id=row["id"], integration_id=row["integration_id"], fingerprint=row["fingerprint"], name=row["name"],
        severity=row["severity"], service=row["service"], description=row["description"],
        labels=msgspec.json.decode(row["labels"]), annotations=msgspec.json.decode(row["annotations"]),
        status=row["status"], starts_at=row["starts_at"], ends_at=row["ends_at"], incident_id=row["incident_id"],
        fired_count=row["fired_count"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


class MonitoringController(Controller):
    path = "/projects/{project_id:uuid}/monitoring"
    tags = ["Monitoring Integrations"]

    @staticmethod
    async def _project(container: Container, project_id: UUID, principal: Principal) -> None:
        if await blocking(container.projects.visible, project_id, principal.user_id) is None:
            raise NotFoundError("project not found")

    @staticmethod
    async def _read(container: Container, project_id: UUID, integration_id: UUID) -> dict[str, Any]:
        row = await blocking(container.monitoring.integration, project_id, integration_id)
        if row is None:
            raise NotFoundError("integration not found")
        return row

    # -- integrations -------------------------------------------------------------------------

    @get("/integrations", operation_id="listIntegrations", summary="The project's integrations")
    async def list_integrations(
        self, request: Request[Any, Any, Any], project_id: UUID, principal: Principal, container: Container
    ) -> list[IntegrationRead]:
        await self._project(container, project_id, principal)
        rows = await blocking(container.monitoring.integrations, project_id)
        return [_integration(row, request) for row in rows]

    @post("/integrations", operation_id="createIntegration", summary="Add an integration (admin)")
    async def create_integration(
        self, request: Request[Any, Any, Any], project_id: UUID, data: IntegrationCreate, principal: Principal,
        container: Container,
    ) -> Response[IntegrationRead]:
        cmd = CreateIntegration(
            actor=principal.user_id, tenant_id=principal.tenant_id, project_id=project_id, name=data.name,
            kind=data.type, config=dict(data.config), credentials=dict(data.credentials or {}) or None,
            enabled=data.enabled,
        )
        created = await blocking(container.integration_commands.create, cmd)
        await read_your_writes(container, created.position)
        row = await self._read(container, project_id, created.integration_id)
        return Response(_integration(row, request, created.webhook_token), status_code=201)

    @post("/integrations/test-connection", operation_id="testConnection", status_code=200,
          summary="Test an integration before saving it")
    async def test_connection(
        self, project_id: UUID, data: ConnectionTestRequest, principal: Principal, container: Container
    ) -> ConnectionTestResult:
        await self._project(container, project_id, principal)
        config = validate_config(data.type, dict(data.config))
        result = await probe(data.type, config, dict(data.credentials or {}))
        return ConnectionTestResult(success=result.success, latency_ms=result.latency_ms, detail=result.detail,
                                    version=result.version)

    @get("/integrations/{integration_id:uuid}", operation_id="getIntegration", summary="An integration")
    async def get_integration(
        self, request: Request[Any, Any, Any], project_id: UUID, integration_id: UUID, principal: Principal,
        container: Container,
    ) -> IntegrationRead:
        await self._project(container, project_id, principal)
        return _integration(await self._read(container, project_id, integration_id), request)

    @patch("/integrations/{integration_id:uuid}", operation_id="updateIntegration",
           summary="Change an integration (admin)")
    async def update_integration(
        self, request: Request[Any, Any, Any], project_id: UUID, integration_id: UUID, data: IntegrationUpdate,
        principal: Principal, container: Container,
    ) -> IntegrationRead:
        await self._read(container, project_id, integration_id)
        cmd = UpdateIntegration(
            actor=principal.user_id, integration_id=integration_id, name=data.name,
            config=None if data.config is None else dict(data.config),
            credentials=None if data.credentials is None else dict(data.credentials), enabled=data.enabled,
        )
        await read_your_writes(container, await blocking(container.integration_commands.update, cmd))
        return _integration(await self._read(container, project_id, integration_id), request)

    @delete("/integrations/{integration_id:uuid}", operation_id="deleteIntegration",
            summary="Remove an integration (admin)")
    async def delete_integration(
        self, project_id: UUID, integration_id: UUID, principal: Principal, container: Container
    ) -> None:
        await self._read(container, project_id, integration_id)
        cmd = DeleteIntegration(actor=principal.user_id, integration_id=integration_id)
        await read_your_writes(container, await blocking(container.integration_commands.delete, cmd))

    @post("/integrations/{integration_id:uuid}/test", operation_id="testIntegration", status_code=200,
          summary="Test a saved integration")
    async def test_integration(
        self, project_id: UUID, integration_id: UUID, principal: Principal, container: Container
    ) -> ConnectionTestResult:
        await self._read(container, project_id, integration_id)
        integration, credentials = await blocking(
            container.integration_commands.credentials_of, integration_id, principal.user_id)
        result = await probe(integration.kind, integration.config, credentials)
        position = await blocking(container.integration_commands.record_test, RecordConnectionTest(
            actor=principal.user_id, integration_id=integration_id, success=result.success,
            latency_ms=result.latency_ms, version=result.version, detail=result.detail,
        ))
        await read_your_writes(container, position)
        return ConnectionTestResult(success=result.success, latency_ms=result.latency_ms, detail=result.detail,
                                    version=result.version)

    @post("/integrations/{integration_id:uuid}/rotate-token", operation_id="rotateWebhookToken", status_code=200,
          summary="Issue a new webhook token; the old one stops working (admin)")
    async def rotate_token(
        self, request: Request[Any, Any, Any], project_id: UUID, integration_id: UUID, principal: Principal,
        container: Container,
    ) -> WebhookToken:
        row = await self._read(container, project_id, integration_id)
        token, position = await blocking(container.integration_commands.rotate_token,
                                         RotateWebhookToken(actor=principal.user_id, integration_id=integration_id))
        await read_your_writes(container, position)
        return WebhookToken(webhook_token=token, webhook_url=webhook_url(request, row["type"], integration_id))

    # -- alerts and correlation ----------------------------------------------------------------

    @get("/alerts", operation_id="listAlerts", summary="Alerts received by the project's integrations")
    async def list_alerts(
        self,
        project_id: UUID,
        principal: Principal,
        container: Container,
        skip: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 10,
        status: Literal["firing", "resolved"] | None = None,
        severity: Severity | None = None,
        service: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> list[AlertRead]:
        await self._project(container, project_id, principal)
        rows = await blocking(lambda: container.monitoring.alerts(
            project_id, skip=skip, limit=limit, status=status, severity=severity, service=service))
        return [_alert(row) for row in rows]

    @staticmethod
    async def _rule(container: Container, project_id: UUID) -> CorrelationRule:
        row = await blocking(container.monitoring.correlation_rule, project_id)
        if row is None:
            raise NotFoundError("project not found")
        return CorrelationRule(min_severity=row["alert_min_severity"], window_minutes=row["alert_window_minutes"])

    @get("/correlation-rule", operation_id="getCorrelationRule",
         summary="Which firing alerts open incidents, and how long they group")
    async def get_rule(self, project_id: UUID, principal: Principal, container: Container) -> CorrelationRule:
        await self._project(container, project_id, principal)
        return await self._rule(container, project_id)

    @put("/correlation-rule", operation_id="setCorrelationRule", summary="Change the correlation rule (admin)")
    async def set_rule(
        self, project_id: UUID, data: CorrelationRule, principal: Principal, container: Container
    ) -> CorrelationRule:
        cmd = ChangeCorrelationRule(actor=principal.user_id, project_id=project_id, min_severity=data.min_severity,
                                    window_minutes=data.window_minutes)
        await read_your_writes(container, await blocking(container.integration_commands.change_correlation_rule, cmd))
        return await self._rule(container, project_id)
