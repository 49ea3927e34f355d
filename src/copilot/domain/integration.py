"""A monitoring integration of a project: where alerts come from and how to reach the tool."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from copilot.domain.errors import InvalidInputError, NotFoundError

__all__ = ["INTEGRATION_TYPES", "Integration", "validate_config"]

INTEGRATION_TYPES: Final = ("prometheus", "alertmanager", "grafana", "datadog", "pagerduty", "webhook")

# Types whose API the copilot calls, and the URL it calls when the config names none.
_NEEDS_URL: Final = {"prometheus", "alertmanager", "grafana"}
_DEFAULT_URLS: Final = {"datadog": "https://api.datadoghq.com", "pagerduty": "https://api.pagerduty.com"}
_KNOWN_KEYS: Final = {"url", "service_label", "poll_interval_seconds", "verify_tls"}


def _validate_url(url: Any) -> str:
    if not isinstance(url, str) or len(url) > 2048:
        raise InvalidInputError("config.url must be a string of at most 2048 characters")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError("config.url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise InvalidInputError("config.url must not embed credentials; put them in credentials")
    return url.strip().rstrip("/")


def validate_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config normalized for its type, or InvalidInputError naming what is wrong."""
    if kind not in INTEGRATION_TYPES:
        raise InvalidInputError(f"type must be one of {', '.join(INTEGRATION_TYPES)}")
    unknown = sorted(set(config) - _KNOWN_KEYS)
    if unknown:
        raise InvalidInputError(f"config has unknown keys {unknown}; known: {sorted(_KNOWN_KEYS)}")
    clean: dict[str, Any] = {}
    if "url" in config or kind in _NEEDS_URL:
        if "url" not in config:
            raise InvalidInputError(f"config.url is required for a {kind} integration")
        clean["url"] = _validate_url(config["url"])
    elif kind in _DEFAULT_URLS:
        clean["url"] = _DEFAULT_URLS[kind]
    if "service_label" in config:
        label = config["service_label"]
        if not isinstance(label, str) or not label.replace("_", "").isalnum() or len(label) > 100:
            raise InvalidInputError("config.service_label must be a Prometheus label name")
        clean["service_label"] = label
    if "poll_interval_seconds" in config:
        interval = config["poll_interval_seconds"]
        if kind != "prometheus":
            raise InvalidInputError("config.poll_interval_seconds applies to prometheus integrations only")
        if not isinstance(interval, int) or isinstance(interval, bool) or not 10 <= interval <= 3600:
            raise InvalidInputError("config.poll_interval_seconds must be a whole number from 10 to 3600")
        clean["poll_interval_seconds"] = interval
    if "verify_tls" in config:
        if not isinstance(config["verify_tls"], bool):
            raise InvalidInputError("config.verify_tls must be true or false")
        clean["verify_tls"] = config["verify_tls"]
    return clean


class Integration(Aggregate):
    @event("Created")
    def __init__(
        self,
        tenant_id: UUID,
        project_id: UUID,
        name: str,
        kind: str,
        config: dict[str, Any],
        credentials: str | None,
        enabled: bool,
        webhook_token_hash: str,
        created_by: UUID,
    ) -> None:
        self.tenant_id = tenant_id
        self.project_id = project_id
        self.name = name
        self.kind = kind
        self.config = validate_config(kind, config)
        self.credentials = credentials  # ciphertext only; the domain never sees secrets
        self.enabled = enabled
        self.webhook_token_hash = webhook_token_hash
        self.deleted = False

    def _require_live(self) -> None:
        if self.deleted:
            raise NotFoundError("integration not found")

    def update(
        self,
        by: UUID,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        credentials: str | None = None,
        enabled: bool | None = None,
    ) -> bool:
        self._require_live()
        changes: dict[str, Any] = {}
        if name is not None and name != self.name:
            changes["name"] = name
        if config is not None:
            clean = validate_config(self.kind, config)
            if clean != self.config:
                changes["config"] = clean
        if credentials is not None:
            changes["credentials"] = credentials
        if enabled is not None and enabled != self.enabled:
            changes["enabled"] = enabled
        if not changes:
            return False
        self._update(changes=changes, by=by)
        return True

    @event("Updated")
    def _update(self, changes: dict[str, Any], by: UUID) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def delete(self, by: UUID) -> None:
        self._require_live()
        self._delete(by=by)

    @event("Deleted")
    def _delete(self, by: UUID) -> None:
        self.deleted = True

    def rotate_webhook_token(self, token_hash: str, by: UUID) -> None:
        self._require_live()
        self._rotate(token_hash=token_hash, by=by)

    @event("WebhookTokenRotated")
    def _rotate(self, token_hash: str, by: UUID) -> None:
        self.webhook_token_hash = token_hash

    def record_connection_test(
        self, success: bool, latency_ms: float | None, version: str | None, detail: str, by: UUID
    ) -> None:
        self._require_live()
        self._tested(success=success, latency_ms=latency_ms, version=version, detail=detail, by=by)

    @event("ConnectionTested")
    def _tested(self, success: bool, latency_ms: float | None, version: str | None, detail: str, by: UUID) -> None:
        pass
