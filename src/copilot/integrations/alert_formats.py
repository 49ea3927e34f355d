"""Alert payloads as the tools send them, normalized into one shape.

Alertmanager's webhook (version 4) and Grafana's alerting webhook share a structure; the
generic shape is ours, for anything else (documented in the OpenAPI schema).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "AlertmanagerPayload",
    "GenericAlert",
    "GenericPayload",
    "IncomingAlert",
    "from_alertmanager",
    "from_generic",
    "normalize_severity",
]

ShortText = Annotated[str, Meta(max_length=1000)]
Labels = Annotated[dict[Annotated[str, Meta(max_length=200)], Annotated[str, Meta(max_length=4000)]],
                   Meta(max_length=100)]

_SEVERITY = {
    "critical": "critical", "crit": "critical", "page": "critical", "p1": "critical", "sev1": "critical",
    "fatal": "critical", "emergency": "critical",
    "high": "high", "error": "high", "major": "high", "p2": "high", "sev2": "high",
    "warning": "medium", "warn": "medium", "medium": "medium", "p3": "medium", "sev3": "medium",
    "low": "low", "minor": "low", "p4": "low", "sev4": "low",
    "info": "info", "informational": "info", "none": "info", "p5": "info", "ok": "info",
}
_SERVICE_LABELS = ("service", "service_name", "app", "application", "job", "namespace")


def normalize_severity(raw: str | None) -> str:
    """Map each tool's words onto ours; an unknown word is treated as medium."""
    return _SEVERITY.get((raw or "").strip().lower(), "medium")


class IncomingAlert(msgspec.Struct, frozen=True):
    fingerprint: str
    name: str
    status: Literal["firing", "resolved"]
    severity: str
    service: str
    description: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(msgspec.json.encode(parts, order="sorted")).hexdigest()[:32]


def _service(labels: dict[str, str], service_label: str | None) -> str:
    for key in ((service_label,) if service_label else ()) + _SERVICE_LABELS:
        value = labels.get(key or "")
        if value:
            return value[:200]
    return "unknown"


def _clean(text: str | None) -> str:
    return (text or "").replace("\x00", "")


# -- Alertmanager (and Grafana, which sends the same structure) ------------------------------------------


class AlertmanagerAlert(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = msgspec.field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    fingerprint: Annotated[str, Meta(max_length=200)] | None = None
    generator_url: ShortText | None = None


class AlertmanagerPayload(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    """Alertmanager's webhook_config body (version 4); Grafana alerting's webhook has the same core."""

    alerts: Annotated[list[AlertmanagerAlert], Meta(max_length=1000)]
    version: str | None = None
    status: str | None = None
    receiver: ShortText | None = None
    group_key: ShortText | None = None


def _when(value: datetime | None, fallback: datetime) -> datetime:
    # Alertmanager sends 0001-01-01 for "not ended"; anything before 1970 means unset.
    if value is None or value.year < 1970:
        return fallback
    # One offset for every stored time, so they also order correctly as text (SQLite).
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def from_alertmanager(payload: AlertmanagerPayload, service_label: str | None, now: datetime) -> list[IncomingAlert]:
    alerts = []
    for a in payload.alerts:
        labels = {k: _clean(v) for k, v in a.labels.items()}
        annotations = {k: _clean(v) for k, v in a.annotations.items()}
        name = labels.get("alertname") or labels.get("rulename") or "unnamed alert"
        ends = _when(a.ends_at, now) if a.status == "resolved" else None
        alerts.append(IncomingAlert(
            fingerprint=a.fingerprint or _fingerprint(sorted(labels.items())),
            name=name[:500],
            status=a.status,
            severity=normalize_severity(labels.get("severity") or labels.get("priority")),
            service=_service(labels, service_label),
            description=(annotations.get("description") or annotations.get("summary")
                         or annotations.get("message") or "")[:5000],
            labels=labels,
            annotations=annotations,
            starts_at=min(_when(a.starts_at, now), now),
            ends_at=ends,
        ))
    return alerts


# -- the generic shape ------------------------------------------------------------------------------


class GenericAlert(msgspec.Struct, forbid_unknown_fields=False):
    """One alert in our own shape; `fingerprint` groups repeats (default: name, service and labels)."""

    name: Annotated[str, Meta(min_length=1, max_length=500)]
    status: Literal["firing", "resolved"] = "firing"
    severity: Annotated[str, Meta(max_length=50)] = "medium"
    service: Annotated[str, Meta(max_length=200)] | None = None
    description: Annotated[str, Meta(max_length=5000)] = ""
    fingerprint: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    labels: Labels = msgspec.field(default_factory=dict)
    annotations: Labels = msgspec.field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class GenericPayload(msgspec.Struct):
    alerts: Annotated[list[GenericAlert], Meta(min_length=1, max_length=1000)]


def from_generic(payload: GenericPayload, service_label: str | None, now: datetime) -> list[IncomingAlert]:
    alerts = []
    for a in payload.alerts:
        labels = {k: _clean(v) for k, v in a.labels.items()}
        service = _clean(a.service) or _service(labels, service_label)
        alerts.append(IncomingAlert(
            fingerprint=a.fingerprint or _fingerprint(a.name, service, sorted(labels.items())),
            name=_clean(a.name),
            status=a.status,
            severity=normalize_severity(a.severity),
            service=service,
            description=_clean(a.description),
            labels=labels,
            annotations={k: _clean(v) for k, v in a.annotations.items()},
            starts_at=min(_when(a.starts_at, now), now),
            ends_at=_when(a.ends_at, now) if a.status == "resolved" else None,
        ))
    return alerts
