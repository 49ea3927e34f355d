"""Read models: projections that follow the log, and the views the API queries."""

from copilot.projections.accounts import AccountsProjection
from copilot.projections.projects import ProjectsProjection

__all__ = ["AccountsProjection", "ProjectsProjection", "all_projections"]


def all_projections() -> list:  # type: ignore[type-arg]
    return [AccountsProjection(), ProjectsProjection()]
