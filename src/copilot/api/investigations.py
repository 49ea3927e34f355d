"""Investigation endpoints: change events, starting an investigation, its workflow, hypotheses, feedback."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter, QueryParameter

from copilot.api.context import Principal, blocking, read_your_writes
from copilot.api.schemas import (
    ChangeCreate,
    ChangeRead,
    ChangeType,
    FeedbackCreate,
    HypothesisRead,
    InvestigationStarted,
    Workflow,
    WorkflowStep,
)
from copilot.api.webhooks import bearer_token
from copilot.bootstrap import Container
from copilot.commands.investigations import GiveFeedback, RecordChange, RequestInvestigation
from copilot.domain import NotFoundError
from copilot.domain.investigation import STEPS

__all__ = ["ChangeWebhookController", "ChangesController", "InvestigationsController"]


def _change(row: dict[str, Any]) -> ChangeRead:
    return ChangeRead(
        id=row["id"], project_id=row["project_id"], service_name=row["service_name"], type=row["kind"],
        description=row["description"], version=row["version"], occurred_at=row["occurred_at"],
        recorded_by=row["recorded_by"], integration_id=row["integration_id"], created_at=row["created_at"],
    )


def _hypothesis(row: dict[str, Any]) -> HypothesisRead:
    return HypothesisRead(
        id=row["id"], incident_id=row["incident_id"], claim=row["claim"], description=row["description"],
        category=row["category"], confidence_score=row["confidence_score"],
        confidence_lower=row["confidence_lower"], confidence_upper=row["confidence_upper"], rank=row["rank"],
        supporting_evidence=msgspec.json.decode(row["supporting_evidence"]),
        contradicting_evidence=msgspec.json.decode(row["contradicting_evidence"]),
        recommendation=row["recommendation"], user_feedback=row["user_feedback"], created_at=row["created_at"],
    )


async def _record_change(container: Container, cmd: RecordChange) -> Response[ChangeRead]:
    change_id, position = await blocking(container.investigation_commands.record_change, cmd)
    await read_your_writes(container, position)
    row = await blocking(container.investigations.change, change_id)
    if row is None:
        raise NotFoundError("change not found")
    return Response(_change(row), status_code=201)


class ChangesController(Controller):
    path = "/projects/{project_id:uuid}/changes"
    tags = ["Change events"]

    @post("/", operation_id="recordChange", summary="Record a deploy, config, feature-flag or infra change")
    async def record(
        self, project_id: UUID, data: ChangeCreate, principal: Principal, container: Container
    ) -> Response[ChangeRead]:
        return await _record_change(container, RecordChange(
            tenant_id=principal.tenant_id, project_id=project_id, service_name=data.service_name, kind=data.type,
            description=data.description, version=data.version, occurred_at=data.occurred_at,
            actor=principal.user_id,
        ))

    @get("/", operation_id="listChanges", summary="Change events, newest first")
    async def list_changes(
        self,
        project_id: UUID,
        principal: Principal,
        container: Container,
        skip: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 10,
        service: Annotated[str | None, Parameter(max_length=200)] = None,
        change_type: Annotated[ChangeType | None, QueryParameter(name="type")] = None,
    ) -> list[ChangeRead]:
        if await blocking(container.projects.visible, project_id, principal.user_id) is None:
            raise NotFoundError("project not found")
        rows = await blocking(lambda: container.investigations.changes(
            project_id, skip=skip, limit=limit, service=service, kind=change_type))
        return [_change(row) for row in rows]


class ChangeWebhookController(Controller):
    """Deploy pipelines record changes with an integration's webhook token instead of a user session."""

    path = "/webhooks/changes"
    tags = ["Change events"]

    @post("/{integration_id:uuid}", operation_id="recordChangeByWebhook",
          summary="Record a change with an integration's webhook token")
    async def record(
        self, request: Request[Any, Any, Any], integration_id: UUID, data: ChangeCreate, container: Container
    ) -> Response[ChangeRead]:
        integration = await blocking(container.alert_commands.authenticate, integration_id, bearer_token(request))
        return await _record_change(container, RecordChange(
            tenant_id=integration.tenant_id, project_id=integration.project_id, service_name=data.service_name,
            kind=data.type, description=data.description, version=data.version, occurred_at=data.occurred_at,
            actor=None, integration_id=integration.id,
        ))


class InvestigationsController(Controller):
    path = "/incidents/{incident_id:uuid}"
    tags = ["Incidents"]

    @staticmethod
    async def _visible(container: Container, incident_id: UUID, principal: Principal) -> None:
        if await container.incidents.get_visible(incident_id, principal.user_id) is None:
            raise NotFoundError("incident not found")

    @post("/investigate", operation_id="investigateIncident", status_code=202,
          summary="Start a new investigation run")
    async def investigate(self, incident_id: UUID, principal: Principal, container: Container) -> InvestigationStarted:
        position = await blocking(container.investigation_commands.request,
                                  RequestInvestigation(actor=principal.user_id, incident_id=incident_id))
        await read_your_writes(container, position)
        return InvestigationStarted(incident_id=incident_id)

    @get("/workflow", operation_id="getIncidentWorkflow", summary="The investigation's steps and findings")
    async def workflow(self, incident_id: UUID, principal: Principal, container: Container) -> Workflow:
        await self._visible(container, incident_id, principal)
        run = await blocking(container.investigations.investigation, incident_id)
        if run is None:  # the investigator has not opened it yet (it follows the log): every step waits
            run = {"run": 0, "status": "pending", "trigger": "", "started_at": None, "finished_at": None,
                   "engine": None, "cached": None}
        rows = {r["step"]: r for r in await blocking(container.investigations.steps, incident_id, run["run"])}
        steps = [
            WorkflowStep(step=step, status=rows[step]["status"], started_at=rows[step]["started_at"],
                         finished_at=rows[step]["finished_at"], summary=rows[step]["summary"],
                         findings=msgspec.json.decode(rows[step]["findings"]) if rows[step]["findings"] else None)
            if step in rows else
            WorkflowStep(step=step, status="pending", started_at=None, finished_at=None, summary=None, findings=None)
            for step in STEPS
        ]
        return Workflow(incident_id=incident_id, run=run["run"], status=run["status"], trigger=run["trigger"],
                        started_at=run["started_at"], finished_at=run["finished_at"], engine=run["engine"],
                        cached=None if run["cached"] is None else bool(run["cached"]), steps=steps)

    @get("/hypotheses", operation_id="getIncidentHypotheses", summary="Ranked root-cause hypotheses")
    async def hypotheses(self, incident_id: UUID, principal: Principal, container: Container) -> list[HypothesisRead]:
        await self._visible(container, incident_id, principal)
        return [_hypothesis(row) for row in await blocking(container.investigations.hypotheses, incident_id)]

    @post("/hypotheses/{hypothesis_id:uuid}/feedback", operation_id="giveHypothesisFeedback", status_code=200,
          summary="Confirm, reject or rate a hypothesis")
    async def feedback(
        self, incident_id: UUID, hypothesis_id: UUID, data: FeedbackCreate, principal: Principal,
        container: Container,
    ) -> HypothesisRead:
        await self._visible(container, incident_id, principal)
        position = await blocking(container.investigation_commands.give_feedback, GiveFeedback(
            actor=principal.user_id, incident_id=incident_id, hypothesis_id=hypothesis_id, feedback=data.feedback,
            comment=data.comment))
        await read_your_writes(container, position)
        rows = await blocking(container.investigations.hypotheses, incident_id)
        row = next((r for r in rows if r["id"] == hypothesis_id), None)
        if row is None:
            raise NotFoundError("hypothesis not found")
        return _hypothesis(row)
