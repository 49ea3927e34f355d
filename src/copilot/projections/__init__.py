"""Read models: projections that follow the log, and the views the API queries."""

from copilot.projections.accounts import AccountsProjection
from copilot.projections.analytics import AnalyticsProjection
from copilot.projections.base import Projection
from copilot.projections.incidents import IncidentsProjection
from copilot.projections.investigations import InvestigationsProjection
from copilot.projections.monitoring import MonitoringProjection
from copilot.projections.projects import ProjectsProjection

__all__ = [
    "AccountsProjection",
    "AnalyticsProjection",
    "IncidentsProjection",
    "InvestigationsProjection",
    "MonitoringProjection",
    "ProjectsProjection",
    "all_projections",
]


def all_projections() -> list[Projection]:
    return [AccountsProjection(), ProjectsProjection(), IncidentsProjection(), MonitoringProjection(),
            InvestigationsProjection(), AnalyticsProjection()]
