"""Analytics endpoints: token usage, cost summary with recommendations, per-incident LLM analytics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.params import Parameter

from copilot.api.context import Principal, blocking
from copilot.api.incidents import lifecycle_metrics
from copilot.api.schemas import CostSummary, IncidentAnalytics, TokenUsage
from copilot.bootstrap import Container
from copilot.domain import InvalidInputError, NotFoundError
from copilot.projections.analytics_views import cost_summary, day_bounds, incident_llm_metrics, token_usage

__all__ = ["AnalyticsController"]

_NANO = Decimal("0.000000001")


def _money(value: Any) -> Any:
    """Decimals become JSON numbers rounded to a billionth of a dollar; everything else passes through."""
    if isinstance(value, Decimal):
        return float(value.quantize(_NANO, rounding=ROUND_HALF_EVEN))
    if isinstance(value, dict):
        return {k: _money(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_money(v) for v in value]
    return value


class AnalyticsController(Controller):
    path = "/analytics"
    tags = ["Analytics"]

    @staticmethod
    async def _project(container: Container, principal: Principal) -> UUID:
        project_id = principal.project_id
        if project_id is None or await container.projects.arole(project_id, principal.user_id) is None:
            raise NotFoundError("no active project; choose one with POST /auth/switch-project")
        return project_id

    @get("/token-usage", operation_id="getTokenUsage", summary="LLM token usage of the active project")
    async def token_usage(
        self, principal: Principal, container: Container,
        start_date: date | None = None, end_date: date | None = None,
    ) -> TokenUsage:
        project_id = await self._project(container, principal)
        end = end_date or datetime.now(UTC).date()
        start = start_date or end - timedelta(days=7)
        if end < start:
            raise InvalidInputError("end_date is before start_date")
        if (end - start).days > 366:
            raise InvalidInputError("the range may span at most 366 days")
        since, until = day_bounds(start, end)
        records = await blocking(container.analytics.records, project_id, since, until)
        return msgspec.convert(_money(token_usage(records, start, end)), TokenUsage)

    @get("/cost-summary", operation_id="getCostSummary", summary="LLM cost, cache savings and recommendations")
    async def cost_summary(
        self, principal: Principal, container: Container, days: Annotated[int, Parameter(ge=1, le=365)] = 7,
    ) -> CostSummary:
        project_id = await self._project(container, principal)
        now = datetime.now(UTC)
        since, before = now - timedelta(days=days), now - timedelta(days=2 * days)

        def figures() -> dict[str, Any]:
            records = container.analytics.records(project_id, since, now)
            previous = container.analytics.records(project_id, before, since)
            generations = container.analytics.generations(project_id, since, now)
            incidents = container.analytics.incidents({r.incident_id for r in records})
            total = container.analytics.incident_count(project_id, since, now)
            return cost_summary(records, previous, generations, incidents, total)

        return msgspec.convert(_money(await blocking(figures)), CostSummary)

    @get("/incident-metrics/{incident_id:uuid}", operation_id="getIncidentAnalytics",
         summary="An incident's LLM requests, tokens, cost and cache hits, and its lifecycle timings")
    async def incident_metrics(
        self, incident_id: UUID, principal: Principal, container: Container
    ) -> IncidentAnalytics:
        row = await container.incidents.get_visible(incident_id, principal.user_id)
        if row is None:
            raise NotFoundError("incident not found")
        records = await blocking(container.analytics.incident_records, incident_id)
        in_states = await blocking(container.incidents.seconds_in_states, incident_id)
        figures = _money(incident_llm_metrics(records))
        return msgspec.convert({**figures, "incident_id": incident_id, "title": row["title"],
                                "severity": row["severity"], "lifecycle": msgspec.to_builtins(
                                    lifecycle_metrics(row, in_states))}, IncidentAnalytics)
