"""Request budgets: X-RateLimit-* headers on every answer, 429 with detail past the limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from copilot.api.app import create_api_app
from copilot.bootstrap import build_container
from copilot.settings import load_settings
from tests.conftest import settings_env
from tests.integration.conftest import register


@pytest.fixture
def limited_client(tmp_path: Path) -> Iterator[TestClient[Any]]:
    container = build_container(load_settings(settings_env(
        "sqlite", tmp_path / "var", COPILOT_RATE_LIMIT_PER_MINUTE="5")))
    assert container.runner is not None
    container.runner.start()
    try:
        with TestClient(create_api_app(container)) as client:
            yield client
    finally:
        container.close()


def test_each_caller_has_a_budget_announced_in_headers_and_enforced_with_429(limited_client: TestClient[Any]) -> None:
    ann = register(limited_client, "ann@acme.io")
    bob = register(limited_client, "bob@acme.io")
    answers = [limited_client.get("/api/v1/projects", headers=ann.headers) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert all(a.headers["x-ratelimit-limit"] == "5" for a in answers)
    assert 0 < int(answers[-1].headers["x-ratelimit-reset"]) <= 61
    assert "rate limit" in answers[-1].json()["detail"]
    # Another caller's budget is their own.
    assert limited_client.get("/api/v1/projects", headers=bob.headers).status_code == 200
    # Documentation is never throttled.
    assert limited_client.get("/openapi.json").status_code == 200
