"""Properties of the log: a rebuild gives exactly the live read models, and a replay at any
moment gives exactly the state the API showed at that moment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from copilot.api.app import create_api_app
from copilot.audit import replay_incident
from copilot.bootstrap import Container, build_container
from copilot.domain.incident import SEVERITIES, STATES
from copilot.projections import all_projections
from copilot.projections.rebuild import rebuild
from copilot.settings import load_settings
from tests.conftest import fresh_postgres_database, settings_env
from tests.integration.conftest import register

API = "/api/v1"

operations = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(SEVERITIES)),
        st.tuples(st.just("move"), st.integers(min_value=0, max_value=3), st.sampled_from(STATES)),
        st.tuples(st.just("project"), st.text(alphabet="abcdefgh ", min_size=1, max_size=12).filter(str.strip)),
    ),
    min_size=1,
    max_size=14,
)


@contextmanager
def running_app(backend: str, var_dir: Path) -> Iterator[tuple[Container, TestClient[Any]]]:
    @contextmanager
    def database() -> Iterator[str | None]:
        if backend == "postgres":
            with fresh_postgres_database() as url:
                yield url
        else:
            yield None

    with database() as url:
        container = build_container(load_settings(settings_env(backend, var_dir, url)))
        assert container.runner is not None
        container.runner.start()
        try:
            with TestClient(create_api_app(container)) as client:
                yield container, client
        finally:
            container.close()


def dump_read_models(container: Container) -> dict[str, list[tuple[str, ...]]]:
    tables = [table for projection in all_projections() for table in projection.tables]
    return {
        table: sorted(tuple(str(v) for v in row.values()) for row in container.db.fetch_all(f"SELECT * FROM {table}"))
        for table in tables
    }


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_rebuild_equals_live_and_replay_equals_what_the_api_showed(
    backend: str, tmp_path_factory: Any, ops: list[tuple[Any, ...]]
) -> None:
    with running_app(backend, tmp_path_factory.mktemp("var")) as (container, client):
        ann = register(client, "ann@acme.io")
        incidents: list[str] = []
        shown: list[tuple[datetime, str, str]] = []  # (moment, incident id, state the API showed)
        for op in ops:
            if op[0] == "create":
                response = client.post(f"{API}/incidents", headers=ann.headers,
                                       json={"title": "t", "service_name": "svc", "severity": op[1]})
                incidents.append(response.json()["id"])
            elif op[0] == "move" and incidents:
                incident_id = incidents[op[1] % len(incidents)]
                response = client.patch(f"{API}/incidents/{incident_id}/state", headers=ann.headers,
                                        json={"state": op[2]})
                assert response.status_code in (200, 409)
            elif op[0] == "project":
                assert client.post(f"{API}/projects", headers=ann.headers, json={"name": op[1]}).status_code == 201
            for incident_id in incidents:
                state = client.get(f"{API}/incidents/{incident_id}", headers=ann.headers).json()["state"]
                shown.append((datetime.now(UTC), incident_id, state))

        assert container.runner is not None
        live = dump_read_models(container)
        rebuild(container.store, container.db, all_projections())
        assert dump_read_models(container) == live

        for moment, incident_id, state in shown:
            replayed = replay_incident(container.store, UUID(incident_id), at=moment)
            assert replayed.state is not None and replayed.state["state"] == state
