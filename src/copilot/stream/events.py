"""Public events: what leaves the system on the wire, derived from log events.

A public event carries its log position (so clients resume with `since` and never see
one twice) and the tenant and project that route it (`copilot.<tenant>.<project>.<channel>`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic

from copilot.domain.alert import Alert
from copilot.domain.incident import STATE_TIMESTAMPS, Incident
from copilot.domain.investigation import Investigation
from copilot.domain.project import Project
from copilot.domain.session import Session
from copilot.projections.base import Facts, event_type

__all__ = ["CHANNELS", "PublicEvent", "PublicEventEncoder", "subject_for"]

CHANNELS = ("incidents", "hypotheses", "alerts")
CONTROL = "control"  # never subscribed to: tells gateways to end someone's access
SUBJECT_PREFIX = "copilot"


def subject_for(tenant_id: UUID | str, project_id: UUID | str, channel: str) -> str:
    return f"{SUBJECT_PREFIX}.{tenant_id}.{project_id}.{channel}"


class PublicEvent(msgspec.Struct, frozen=True):
    type: str
    data: dict[str, Any]
    timestamp: datetime
    position: int
    tenant_id: UUID
    project_id: UUID
    channel: str
    incident_id: UUID | None = None

    @property
    def subject(self) -> str:
        return subject_for(self.tenant_id, self.project_id, self.channel)

    def for_client(self) -> dict[str, Any]:
        """The spec's message: type, data, timestamp, plus position (and incidentId where the spec has it)."""
        message: dict[str, Any] = {
            "type": self.type, "data": self.data, "timestamp": self.timestamp, "position": self.position,
        }
        if self.incident_id is not None and self.channel == "hypotheses":
            message["incidentId"] = self.incident_id
        return message


Scope = tuple[UUID, UUID]  # tenant, project


class PublicEventEncoder:
    """Turns log events into public events; knows which topics are public."""

    def __init__(self, incident_scope: Callable[[UUID], Scope | None],
                 load_alert: Callable[[UUID], Alert | None] | None = None,
                 load_investigation: Callable[[UUID], Investigation | None] | None = None,
                 load_project: Callable[[UUID], Project | None] | None = None,
                 load_session: Callable[[UUID], Session | None] | None = None) -> None:
        # Incidents' later events do not repeat tenant and project: remember them from
        # Detected, and ask `incident_scope` (the event store) for incidents seen before a restart.
        self._lookup = incident_scope
        self._load_alert = load_alert or (lambda _id: None)
        self._load_investigation = load_investigation or (lambda _id: None)
        self._load_project = load_project or (lambda _id: None)
        self._load_session = load_session or (lambda _id: None)
        # Bounded (Facts: the oldest quarter goes when full); misses fall back to the event store.
        self._scopes: Facts[UUID, Scope] = Facts()
        # investigation id -> its incident and scope, known from the incident's Detected (an
        # investigation's id derives from its incident's), so most hypotheses need no load.
        self._investigations: Facts[UUID, tuple[UUID, Scope]] = Facts()
        self._encoders: dict[str, Callable[[Any, int], PublicEvent | None]] = {
            get_topic(event_type(Incident, "Detected")): self._incident_detected,
            get_topic(Incident.StateChanged): self._incident_state_changed,
            get_topic(event_type(Incident, "SeverityChanged")): self._incident_severity_changed,
            get_topic(event_type(Alert, "Fired")): self._alert_fired,
            get_topic(event_type(Alert, "Refired")): self._alert_refired,
            get_topic(event_type(Investigation, "HypothesesGenerated")): self._hypotheses_generated,
            get_topic(event_type(Project, "MemberRemoved")): self._member_removed,
            get_topic(event_type(Project, "Deleted")): self._project_deleted,
            get_topic(event_type(Session, "Revoked")): self._session_revoked,
        }

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self._encoders)

    def encode(self, topic: str, event: DomainEvent, position: int) -> PublicEvent | None:
        encoder = self._encoders.get(topic)
        return None if encoder is None else encoder(event, position)

    def _scope(self, incident_id: UUID) -> Scope | None:
        scope = self._scopes.get(incident_id)
        if scope is None:
            scope = self._lookup(incident_id)
            if scope is not None:
                self._remember(incident_id, scope)
        return scope

    def _remember(self, incident_id: UUID, scope: Scope) -> None:
        self._scopes.put(incident_id, scope)
        self._investigations.put(Investigation.create_id(incident_id), (incident_id, scope))

    def _incident_detected(self, e: Any, position: int) -> PublicEvent:
        self._remember(e.originator_id, (e.tenant_id, e.project_id))
        return PublicEvent(
            type="incident.created",
            data={"id": e.originator_id, "title": e.title, "severity": e.severity, "state": "detected",
                  "service_name": e.service_name, "description": e.description, "detected_at": e.detected_at},
            timestamp=e.timestamp, position=position, tenant_id=e.tenant_id, project_id=e.project_id,
            channel="incidents", incident_id=e.originator_id,
        )

    def _updated(self, e: Any, position: int, data: dict[str, Any]) -> PublicEvent | None:
        scope = self._scope(e.originator_id)
        if scope is None:
            return None
        return PublicEvent(
            type="incident.updated", data={"id": e.originator_id, **data}, timestamp=e.timestamp,
            position=position, tenant_id=scope[0], project_id=scope[1], channel="incidents",
            incident_id=e.originator_id,
        )

    def _incident_state_changed(self, e: Any, position: int) -> PublicEvent | None:
        data: dict[str, Any] = {"state": e.to_state, "previous_state": e.from_state}
        if e.to_state in STATE_TIMESTAMPS:
            data["changed_at"] = e.timestamp
        return self._updated(e, position, data)

    def _incident_severity_changed(self, e: Any, position: int) -> PublicEvent | None:
        return self._updated(e, position, {"severity": e.to_severity, "previous_severity": e.from_severity})

    def _alert(self, alert_id: UUID, tenant_id: UUID, project_id: UUID, timestamp: datetime, position: int,
               data: dict[str, Any]) -> PublicEvent:
        return PublicEvent(type="alert.fired", data={"id": alert_id, "status": "firing", **data},
                           timestamp=timestamp, position=position, tenant_id=tenant_id, project_id=project_id,
                           channel="alerts")

    def _alert_fired(self, e: Any, position: int) -> PublicEvent:
        return self._alert(e.originator_id, e.tenant_id, e.project_id, e.timestamp, position, {
            "alertname": e.name, "severity": e.severity, "service": e.service, "description": e.description,
            "fingerprint": e.fingerprint, "starts_at": e.starts_at,
        })

    def _alert_refired(self, e: Any, position: int) -> PublicEvent | None:
        alert = self._load_alert(e.originator_id)  # name and service never change; the rest is in the event
        if alert is None:
            return None
        return self._alert(e.originator_id, alert.tenant_id, alert.project_id, e.timestamp, position, {
            "alertname": alert.name, "severity": e.severity, "service": alert.service,
            "description": e.description, "fingerprint": alert.fingerprint, "starts_at": e.starts_at,
        })

    def _hypotheses_generated(self, e: Any, position: int) -> PublicEvent | None:
        known = self._investigations.get(e.originator_id)
        if known is None:
            investigation = self._load_investigation(e.originator_id)
            if investigation is None:
                return None
            known = (investigation.incident_id, (investigation.tenant_id, investigation.project_id))
        incident_id, (tenant_id, project_id) = known
        top = e.hypotheses[0] if e.hypotheses else None
        return PublicEvent(
            type="hypothesis.generated",
            data={"count": len(e.hypotheses), "run": e.run, "cached": e.cached,
                  "top_hypothesis": None if top is None else {
                      "id": top["id"], "claim": top["claim"], "confidence_score": top["confidence_score"]}},
            timestamp=e.timestamp, position=position, tenant_id=tenant_id, project_id=project_id,
            channel="hypotheses", incident_id=incident_id,
        )

    # -- access control: gateways close the connections these name ----------------------------

    def _control(self, e: Any, position: int, tenant_id: UUID, project_id: UUID, data: dict[str, Any]) -> PublicEvent:
        return PublicEvent(type="access.revoked", data=data, timestamp=e.timestamp, position=position,
                           tenant_id=tenant_id, project_id=project_id, channel=CONTROL)

    def _member_removed(self, e: Any, position: int) -> PublicEvent | None:
        project = self._load_project(e.originator_id)
        if project is None:
            return None
        return self._control(e, position, project.tenant_id, project.id, {"user_id": e.user_id})

    def _project_deleted(self, e: Any, position: int) -> PublicEvent | None:
        project = self._load_project(e.originator_id)
        if project is None:
            return None
        return self._control(e, position, project.tenant_id, project.id, {"project_deleted": True})

    def _session_revoked(self, e: Any, position: int) -> PublicEvent | None:
        session = self._load_session(e.originator_id)
        if session is None or session.project_id is None:
            return None  # a session without a project had no stream to close
        return self._control(e, position, session.tenant_id, session.project_id, {"session_id": e.originator_id})
