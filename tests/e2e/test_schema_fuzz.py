"""Schema fuzzing: schemathesis generates requests from the app's own OpenAPI schema, for every
operation, authenticated. No answer is a 5xx, every error body is `{"detail": …}`, and every
documented answer matches its schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.e2e.api import Users
from tests.e2e.server import Server


@pytest.fixture(scope="module")
def fuzz_server(server_pool: Any) -> Server:
    server: Server = server_pool.get("sqlite")
    return server


@pytest.fixture(scope="module")
def account(fuzz_server: Server) -> Iterator[dict[str, str]]:
    with Users(fuzz_server.api_url) as users:
        owner = users.register(who="fuzz")
        yield {"token": owner.token, "project_id": owner.project_id}


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Server) -> Any:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.root_url}/openapi.json")
    # Ending the fuzzing user's session would only turn the rest into 401s.
    return schema.exclude(path="/api/v1/auth/logout")


def test_no_operation_answers_a_5xx_or_an_error_without_detail(
    api_schema: Any, fuzz_server: Server, account: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {account['token']}"}
    failures: list[str] = []
    statuses: list[int] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 40

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: Any) -> None:
            if "project_id" in (case.path_parameters or {}) and hash(str(case.path_parameters)) % 2 == 0:
                case.path_parameters["project_id"] = account["project_id"]  # sometimes a project the user has
            response = case.call(base_url=fuzz_server.root_url, headers=headers, timeout=30)
            statuses.append(response.status_code)
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
            if response.status_code >= 400:
                body = response.json()
                assert isinstance(body, dict) and set(body) == {"detail"} and isinstance(body["detail"], str), \
                    f"{where}: {response.status_code} {body}"
            else:
                case.validate_response(response, checks=[response_schema_conformance])

        try:
            exercise()
        except Exception as error:  # collect every operation's failure, not just the first
            failures.append(f"{operation.method.upper()} {operation.path}: {str(error)[:500]}")
    assert failures == []
    # It really exercised the API: many requests, and both accepted and refused ones.
    assert len(statuses) >= 3 * len(operations)
    assert any(s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)


def test_the_schema_is_served_and_names_every_operation(fuzz_server: Server) -> None:
    spec = httpx.get(f"{fuzz_server.root_url}/openapi.json").json()
    operations = [op for path in spec["paths"].values() for op in path.values() if isinstance(op, dict)]
    assert len(operations) >= 40
    assert all(op.get("operationId") for op in operations)
