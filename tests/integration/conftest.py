"""Integration fixtures: the real container on SQLite or PostgreSQL, driven through the ASGI app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from copilot.api.app import create_api_app
from copilot.bootstrap import Container, build_container
from copilot.settings import Settings


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    built = build_container(settings)
    assert built.runner is not None
    built.runner.start()
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient[Any]]:
    with TestClient(create_api_app(container)) as test_client:
        yield test_client


class Account:
    """A registered user as a test sees them: ids and ready-made auth headers."""

    def __init__(self, body: dict[str, Any], password: str) -> None:
        self.body = body
        self.password = password
        self.user_id: str = body["user"]["id"]
        self.email: str = body["user"]["email"]
        self.tenant_id: str = body["user"]["tenant_id"]
        self.project_id: str = body["user"]["project_id"]
        self.token: str = body["access_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def register(client: TestClient[Any], email: str, tenant: str = "Acme", **extra: Any) -> Account:
    password = extra.pop("password", "correct horse battery")
    body = {"email": email, "password": password, "full_name": email.split("@")[0].title(), **extra}
    if "invite_token" not in extra:
        body["tenant_name"] = tenant
    response = client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 200, response.text
    client.cookies.clear()  # each Account authenticates with its own Bearer token
    return Account(response.json(), password)
