"""Request and response bodies: one family per resource, validated by msgspec."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

__all__ = [
    "Email",
    "LoginBody",
    "LoginRequest",
    "MemberCreate",
    "MemberRead",
    "MemberRoleUpdate",
    "ProjectCreate",
    "ProjectRead",
    "ProjectSummary",
    "ProjectUpdate",
    "RefreshRequest",
    "RegisterBody",
    "RegisterRequest",
    "SwitchProjectRequest",
    "TenantRead",
    "UserRead",
    "WsToken",
]

# Printable text: no control characters (PostgreSQL cannot store NUL; none belongs in a name), and at
# least one visible character (not only spaces, zero-width or direction marks). Python's `$` also
# matches before a final newline, hence `$(?!\n)`; `\A`/`\Z` would not survive into JSON Schema.
_INVISIBLE = r"\s\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff"
_LINE = rf"^[^\x00-\x1f\x7f]*[^{_INVISIBLE}][^\x00-\x1f\x7f]*$(?!\n)"
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=_LINE)]
Text = Annotated[str, Meta(max_length=5000, pattern=r"^[^\x00]*$")]
Email = Annotated[str, Meta(max_length=254, pattern=r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$")]
Password = Annotated[str, Meta(min_length=8, max_length=256, pattern=r"^[^\x00]*$")]
Token = Annotated[str, Meta(min_length=1, max_length=4096, pattern=r"^[A-Za-z0-9_.\-=]+$")]
RoleName = Literal["owner", "admin", "member", "viewer"]


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=False):
    email: Email
    password: Password
    full_name: Name
    tenant_name: Name | None = None
    invite_token: Token | None = None


class LoginRequest(msgspec.Struct):
    email: Email
    password: Annotated[str, Meta(min_length=1, max_length=256, pattern=r"^[^\x00]*$")]


class RefreshRequest(msgspec.Struct):
    refresh_token: Token | None = None


class SwitchProjectRequest(msgspec.Struct):
    project_id: UUID


class UserRead(msgspec.Struct):
    id: UUID
    email: str
    full_name: str
    tenant_id: UUID
    project_id: UUID | None = None
    role: RoleName | None = None


class TenantRead(msgspec.Struct):
    id: UUID
    name: str
    slug: str


class ProjectSummary(msgspec.Struct):
    id: UUID
    name: str
    role: RoleName


class RegisterBody(msgspec.Struct):
    user: UserRead
    tenant: TenantRead
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class LoginBody(msgspec.Struct):
    user: UserRead
    projects: list[ProjectSummary]
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class WsToken(msgspec.Struct):
    token: str
    expires_in: int


class ProjectCreate(msgspec.Struct):
    name: Name
    description: Text = ""


class ProjectUpdate(msgspec.Struct):
    name: Name | None = None
    description: Text | None = None


class ProjectRead(msgspec.Struct):
    id: UUID
    tenant_id: UUID
    name: str
    description: str
    role: RoleName
    created_by: UUID
    created_at: datetime
    updated_at: datetime


class MemberCreate(msgspec.Struct):
    email: Email
    role: RoleName = "member"


class MemberRoleUpdate(msgspec.Struct):
    role: RoleName


class MemberRead(msgspec.Struct, omit_defaults=True):
    user_id: UUID
    email: str
    full_name: str
    role: RoleName
    status: Literal["active", "invited"]
    added_at: datetime
    invite_token: str | None = None


# -- incidents -----------------------------------------------------------------------------

Severity = Literal["critical", "high", "medium", "low", "info"]
IncidentState = Literal[
    "detected", "acknowledged", "investigating", "mitigated", "resolved", "inconclusive", "learned"
]
Title = Annotated[str, Meta(min_length=1, max_length=500, pattern=_LINE)]
ServiceName = Annotated[str, Meta(min_length=1, max_length=200, pattern=rf"^[^{_INVISIBLE}][^\x00-\x1f\x7f]*$(?!\n)")]


class IncidentCreate(msgspec.Struct):
    title: Title
    service_name: ServiceName
    severity: Severity
    description: Text = ""
    detected_at: datetime | None = None


class IncidentStateUpdate(msgspec.Struct):
    state: IncidentState


class IncidentRead(msgspec.Struct):
    id: UUID
    project_id: UUID
    title: str
    description: str
    service_name: str
    severity: Severity
    state: IncidentState
    detected_at: datetime
    acknowledged_at: datetime | None
    investigating_started_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    learned_at: datetime | None
    created_at: datetime
    updated_at: datetime


class IncidentMetrics(msgspec.Struct):
    incident_id: UUID
    state: IncidentState
    detected_at: datetime
    time_to_acknowledge_seconds: float | None
    time_to_investigate_seconds: float | None
    time_to_mitigate_seconds: float | None
    time_to_resolve_seconds: float | None
    seconds_in_state: dict[str, float]
    current_state_since: datetime
    state_changes: int
    reopen_count: int


class Actor(msgspec.Struct):
    id: UUID
    email: str | None
    full_name: str | None


class IncidentEvent(msgspec.Struct):
    position: int
    type: str
    occurred_at: datetime
    actor: Actor | None
    change: dict[str, object]


# -- monitoring ----------------------------------------------------------------------------

IntegrationType = Literal["prometheus", "alertmanager", "grafana", "datadog", "pagerduty", "webhook"]
ConfigValue = str | int | bool
SecretValue = Annotated[str, Meta(max_length=4096, pattern=r"^[^\x00]*$")]
Credentials = Annotated[dict[Annotated[str, Meta(max_length=100)], SecretValue], Meta(max_length=20)]
Config = Annotated[dict[Annotated[str, Meta(max_length=100)], ConfigValue], Meta(max_length=20)]


class IntegrationCreate(msgspec.Struct):
    name: Name
    type: IntegrationType
    config: Config = msgspec.field(default_factory=dict)
    credentials: Credentials | None = None
    enabled: bool = True


class IntegrationUpdate(msgspec.Struct):
    name: Name | None = None
    config: Config | None = None
    credentials: Credentials | None = None
    enabled: bool | None = None


class ConnectionTestRequest(msgspec.Struct):
    type: IntegrationType
    config: Config = msgspec.field(default_factory=dict)
    credentials: Credentials | None = None
    name: Name | None = None
    enabled: bool | None = None


class LastTest(msgspec.Struct):
    at: datetime
    success: bool
    detail: str


class IntegrationRead(msgspec.Struct, omit_defaults=True):
    id: UUID
    project_id: UUID
    name: str
    type: IntegrationType
    config: dict[str, ConfigValue]
    has_credentials: bool
    enabled: bool
    webhook_url: str
    created_at: datetime
    updated_at: datetime
    last_test: LastTest | None = None
    webhook_token: str | None = None  # only in the answer that creates or rotates it


class WebhookToken(msgspec.Struct):
    webhook_token: str
    webhook_url: str


class ConnectionTestResult(msgspec.Struct):
    success: bool
    latency_ms: float | None
    detail: str
    version: str | None = None


class AlertRead(msgspec.Struct):
    id: UUID
    integration_id: UUID
    fingerprint: str
    name: str
    severity: Severity
    service: str
    description: str
    labels: dict[str, str]
    annotations: dict[str, str]
    status: Literal["firing", "resolved"]
    starts_at: datetime
    ends_at: datetime | None
    incident_id: UUID | None
    fired_count: int
    created_at: datetime
    updated_at: datetime


class CorrelationRule(msgspec.Struct):
    min_severity: Severity
    window_minutes: Annotated[int, Meta(ge=1, le=1440)]


class IngestionResult(msgspec.Struct):
    received: int
    fired: int
    repeated: int
    resolved: int
    incidents_opened: list[UUID]
    incidents_joined: list[UUID]


# -- investigations ------------------------------------------------------------------------

ChangeType = Literal["deploy", "config", "feature_flag", "infra"]
Version = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$(?!\n)")]


class ChangeCreate(msgspec.Struct):
    service_name: ServiceName
    type: ChangeType
    description: Text = ""
    version: Version | None = None
    occurred_at: datetime | None = None


class ChangeRead(msgspec.Struct):
    id: UUID
    project_id: UUID
    service_name: str
    type: ChangeType
    description: str
    version: str | None
    occurred_at: datetime
    recorded_by: UUID | None
    integration_id: UUID | None
    created_at: datetime


class InvestigationStarted(msgspec.Struct):
    incident_id: UUID
    status: Literal["running"] = "running"


class WorkflowStep(msgspec.Struct):
    step: str
    status: Literal["pending", "running", "completed", "skipped", "failed"]
    started_at: datetime | None
    finished_at: datetime | None
    summary: str | None
    findings: Any


class Workflow(msgspec.Struct):
    incident_id: UUID
    run: int
    status: str
    trigger: str
    started_at: datetime | None
    finished_at: datetime | None
    engine: str | None
    cached: bool | None
    steps: list[WorkflowStep]


class HypothesisRead(msgspec.Struct):
    id: UUID
    incident_id: UUID
    claim: str
    description: str
    category: str
    confidence_score: float
    confidence_lower: float
    confidence_upper: float
    rank: int
    supporting_evidence: list[str]
    contradicting_evidence: list[str]
    recommendation: str | None
    user_feedback: str | None
    created_at: datetime


class FeedbackCreate(msgspec.Struct):
    feedback: Literal["confirmed", "rejected", "helpful", "not_helpful"]
    comment: Text | None = None


# -- analytics (money as numbers rounded to 1e-9 USD only here, at the edge) -------------------


class TypeUsage(msgspec.Struct):
    request_type: str
    count: int
    total_tokens: int
    cost_usd: float


class DayUsage(msgspec.Struct):
    date: str
    requests: int
    tokens: int
    cost_usd: float


class TokenUsage(msgspec.Struct):
    total_requests: int
    total_tokens: int
    total_cost_usd: float
    breakdown_by_type: list[TypeUsage]
    timeline: list[DayUsage]


class OverallStats(msgspec.Struct):
    total_requests: int
    total_cost_usd: float
    avg_cost_per_request: float


class CacheStats(msgspec.Struct):
    total_incidents: int
    incidents_with_hypotheses: int
    cache_hit_rate: float
    potential_savings: float


class ExpensiveIncident(msgspec.Struct):
    incident_id: UUID
    title: str
    total_cost: float
    request_count: int


class Recommendation(msgspec.Struct):
    type: str
    message: str
    priority: Literal["low", "medium", "high"]


class CostSummary(msgspec.Struct):
    overall_stats: OverallStats
    cache_stats: CacheStats
    most_expensive_incidents: list[ExpensiveIncident]
    recommendations: list[Recommendation]


class Breakdown(msgspec.Struct):
    requests: int
    tokens: int
    cost_usd: float
    model: str | None = None
    step: str | None = None


class IncidentAnalytics(msgspec.Struct):
    incident_id: UUID
    title: str
    severity: Severity
    requests: int
    cache_hits: int
    failed_requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    saved_usd: float
    by_model: list[Breakdown]
    by_step: list[Breakdown]
    lifecycle: IncidentMetrics
