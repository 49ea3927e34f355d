"""Commands of monitoring integrations: create, update, delete, rotate the webhook token, record a test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import msgspec

from copilot.commands.access import RoleLookup, require_role
from copilot.commands.store import EventStore, with_retries
from copilot.domain import ConflictError, Integration, NotFoundError, Project, Role
from copilot.domain.events import event_type
from copilot.domain.integration import validate_config
from copilot.security import hash_secret, new_secret
from copilot.security.credentials import CredentialCipher

__all__ = [
    "ChangeCorrelationRule",
    "CreateIntegration",
    "DeleteIntegration",
    "IntegrationCreated",
    "IntegrationHandlers",
    "RecordConnectionTest",
    "RotateWebhookToken",
    "UpdateIntegration",
]


class CreateIntegration(msgspec.Struct, frozen=True):
    actor: UUID
    tenant_id: UUID
    project_id: UUID
    name: str
    kind: str
    config: dict[str, Any]
    credentials: dict[str, Any] | None
    enabled: bool = True


class UpdateIntegration(msgspec.Struct, frozen=True):
    actor: UUID
    integration_id: UUID
    name: str | None = None
    config: dict[str, Any] | None = None
    credentials: dict[str, Any] | None = None
    enabled: bool | None = None


class DeleteIntegration(msgspec.Struct, frozen=True):
    actor: UUID
    integration_id: UUID


class RotateWebhookToken(msgspec.Struct, frozen=True):
    actor: UUID
    integration_id: UUID


class RecordConnectionTest(msgspec.Struct, frozen=True):
    actor: UUID
    integration_id: UUID
    success: bool
    latency_ms: float | None
    version: str | None
    detail: str


class ChangeCorrelationRule(msgspec.Struct, frozen=True):
    actor: UUID
    project_id: UUID
    min_severity: str
    window_minutes: int


@dataclass(frozen=True)
class IntegrationCreated:
    integration_id: UUID
    webhook_token: str  # shown once; only its hash is kept
    position: int


class IntegrationHandlers:
    """Admins write integrations, members test them; credentials are sealed before they reach an event."""

    def __init__(self, store: EventStore, role_of: RoleLookup, cipher: CredentialCipher) -> None:
        self.store = store
        self.role_of = role_of
        self.cipher = cipher

    def _require(self, project_id: UUID, actor: UUID, minimum: Role, what: str = "integration") -> None:
        require_role(self.role_of, project_id, actor, minimum, what)

    def _load(self, integration_id: UUID, actor: UUID, minimum: Role) -> Integration:
        integration = self.store.get(Integration, integration_id)
        if integration.deleted:
            raise NotFoundError("integration not found")
        self._require(integration.project_id, actor, minimum)
        return integration

    def create(self, cmd: CreateIntegration) -> IntegrationCreated:
        self._require(cmd.project_id, cmd.actor, Role.ADMIN, "project")
        integration_id = uuid4()
        token = new_secret("whk")
        sealed = self.cipher.encrypt(integration_id, cmd.credentials) if cmd.credentials else None
        # The id exists before the event, because the sealed credentials are bound to it.
        integration = Integration._create(
            event_type(Integration, "Created"),  # type: ignore[arg-type]
            id=integration_id, tenant_id=cmd.tenant_id, project_id=cmd.project_id, name=cmd.name, kind=cmd.kind,
            config=validate_config(cmd.kind, cmd.config),  # the event records what the server will use
            credentials=sealed, enabled=cmd.enabled, webhook_token_hash=hash_secret(token), created_by=cmd.actor,
        )
        return IntegrationCreated(integration.id, token, self.store.append(integration))

    def update(self, cmd: UpdateIntegration) -> int:
        def attempt() -> int:
            integration = self._load(cmd.integration_id, cmd.actor, Role.ADMIN)
            sealed = self.cipher.encrypt(integration.id, cmd.credentials) if cmd.credentials else None
            integration.update(cmd.actor, name=cmd.name, config=cmd.config, credentials=sealed, enabled=cmd.enabled)
            return self.store.append(integration)

        return with_retries(attempt)

    def delete(self, cmd: DeleteIntegration) -> int:
        def attempt() -> int:
            integration = self._load(cmd.integration_id, cmd.actor, Role.ADMIN)
            integration.delete(cmd.actor)
            return self.store.append(integration)

        return with_retries(attempt)

    def rotate_token(self, cmd: RotateWebhookToken) -> tuple[str, int]:
        token = new_secret("whk")

        def attempt() -> int:
            integration = self._load(cmd.integration_id, cmd.actor, Role.ADMIN)
            integration.rotate_webhook_token(hash_secret(token), cmd.actor)
            return self.store.append(integration)

        return token, with_retries(attempt)

    def credentials_of(self, integration_id: UUID, actor: UUID) -> tuple[Integration, dict[str, Any]]:
        """The integration and its opened credentials, for a member about to test it."""
        integration = self._load(integration_id, actor, Role.MEMBER)
        if not integration.credentials:
            return integration, {}
        try:
            return integration, self.cipher.decrypt(integration.id, integration.credentials)
        except ValueError:
            raise ConflictError("the stored credentials do not open with this server's COPILOT_ENCRYPTION_KEY; "
                                "set them again") from None

    def record_test(self, cmd: RecordConnectionTest) -> int:
        def attempt() -> int:
            integration = self._load(cmd.integration_id, cmd.actor, Role.MEMBER)
            integration.record_connection_test(cmd.success, cmd.latency_ms, cmd.version, cmd.detail, cmd.actor)
            return self.store.append(integration)

        return with_retries(attempt)

    def change_correlation_rule(self, cmd: ChangeCorrelationRule) -> int:
        def attempt() -> int:
            project = self.store.get(Project, cmd.project_id)
            project.change_correlation_rule(cmd.actor, cmd.min_severity, cmd.window_minutes)
            return self.store.append(project)

        return with_retries(attempt)
