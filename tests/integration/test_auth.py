"""Authentication over the real event store and read models, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from litestar.testing import TestClient

from copilot.bootstrap import Container
from copilot.commands.auth import LogOut
from tests.integration.conftest import register

API = "/api/v1"


def test_register_creates_tenant_user_and_a_production_project_owned_by_them(client: TestClient[Any]) -> None:
    response = client.post(f"{API}/auth/register", json={
        "email": "John@Example.com", "password": "securepassword123", "full_name": "John Doe",
        "tenant_name": "Acme Corporation"})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == "john@example.com"
    assert body["tenant"]["slug"] == "acme-corporation"
    assert body["token_type"] == "bearer"
    cookies = response.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith("access_token="))
    refresh = next(c for c in cookies if c.startswith("refresh_token="))
    assert "HttpOnly" in access and "Max-Age=900" in access and "SameSite=lax" in access
    assert "HttpOnly" in refresh and "Max-Age=604800" in refresh
    projects = client.get(f"{API}/projects", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert [(p["name"], p["role"]) for p in projects] == [("Production", "owner")]


def test_tenant_slugs_stay_unique(client: TestClient[Any]) -> None:
    first = register(client, "a@acme.io", tenant="Acme Corporation")
    second = register(client, "b@other.io", tenant="Acme  Corporation!")
    assert first.body["tenant"]["slug"] == "acme-corporation"
    assert second.body["tenant"]["slug"] == "acme-corporation-2"


def test_emails_are_unique_case_insensitively(client: TestClient[Any]) -> None:
    register(client, "dup@acme.io")
    response = client.post(f"{API}/auth/register", json={
        "email": "DUP@acme.io", "password": "another password", "full_name": "X", "tenant_name": "Other"})
    assert response.status_code == 409
    assert "email" in response.json()["detail"]


def test_login_answers_the_same_401_for_unknown_email_and_wrong_password(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    wrong = client.post(f"{API}/auth/login", json={"email": account.email, "password": "nope nope"})
    unknown = client.post(f"{API}/auth/login", json={"email": "nobody@acme.io", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_login_returns_user_with_active_project_role_and_project_list(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    response = client.post(f"{API}/auth/login", json={"email": "ANN@acme.io", "password": account.password})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["project_id"] == account.project_id
    assert body["user"]["role"] == "owner"
    assert body["projects"] == [{"id": account.project_id, "name": "Production", "role": "owner"}]


def test_me_accepts_the_bearer_header_or_the_cookie(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    by_header = client.get(f"{API}/auth/me", headers=account.headers)
    client.cookies.set("access_token", account.token)
    by_cookie = client.get(f"{API}/auth/me")
    assert by_header.status_code == by_cookie.status_code == 200
    assert by_header.json() == by_cookie.json()
    assert by_header.json()["role"] == "owner"


def test_missing_forged_or_wrong_type_tokens_are_401(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    ws_token = client.get(f"{API}/auth/ws-token", headers=account.headers).json()["token"]
    forged = account.token[:-2] + ("AA" if not account.token.endswith("AA") else "BB")
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": f"Bearer {forged}"},
                    {"Authorization": f"Bearer {ws_token}"}):
        response = client.get(f"{API}/auth/me", headers=headers)
        assert response.status_code == 401, headers
        assert "detail" in response.json()


def test_logout_ends_the_session_and_its_refresh_token(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    login = client.post(f"{API}/auth/login", json={"email": account.email, "password": account.password})
    token = login.json()["access_token"]
    assert client.post(f"{API}/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    refresh_cookie = login.cookies.get("refresh_token")
    response = client.post(f"{API}/auth/refresh", json={"refresh_token": refresh_cookie})
    assert response.status_code == 401


def test_a_session_ended_by_another_process_stops_working_here_within_the_trust_window(
    client: TestClient[Any], container: Container
) -> None:
    # This process remembers a live session for LIVE_FOR seconds; a logout made through another
    # API process reaches it through the read models once that runs out.
    container.accounts.LIVE_FOR = 0.3
    account = register(client, "ann@acme.io")
    assert client.get(f"{API}/auth/me", headers=account.headers).status_code == 200
    session_id = container.tokens.decode(account.token, "access").sid
    container.auth.log_out(LogOut(session_id=session_id))  # as another API process would
    deadline = time.monotonic() + 10
    while container.db.fetch_one("SELECT revoked_at FROM sessions WHERE id = :id AND revoked_at IS NOT NULL",
                                 {"id": session_id}) is None:
        assert time.monotonic() < deadline, "the logout was never projected"
        time.sleep(0.02)
    time.sleep(container.accounts.LIVE_FOR + 0.05)
    assert client.get(f"{API}/auth/me", headers=account.headers).status_code == 401


def test_refresh_rotates_and_replaying_a_rotated_token_revokes_the_session(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    login = client.post(f"{API}/auth/login", json={"email": account.email, "password": account.password})
    first_refresh = login.cookies["refresh_token"]
    rotated = client.post(f"{API}/auth/refresh", json={"refresh_token": first_refresh})
    assert rotated.status_code == 200
    second_refresh = rotated.cookies["refresh_token"]
    assert second_refresh != first_refresh
    new_access = rotated.json()["access_token"]
    assert client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {new_access}"}).status_code == 200

    replay = client.post(f"{API}/auth/refresh", json={"refresh_token": first_refresh})
    assert replay.status_code == 401
    # The whole session is gone: the newest refresh token and access token too.
    assert client.post(f"{API}/auth/refresh", json={"refresh_token": second_refresh}).status_code == 401
    assert client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {new_access}"}).status_code == 401


def test_switch_project_returns_the_login_body_for_that_project(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    staging = client.post(f"{API}/projects", json={"name": "Staging"}, headers=account.headers).json()
    response = client.post(f"{API}/auth/switch-project", json={"project_id": staging["id"]}, headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["project_id"] == staging["id"]
    me = client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["project_id"] == staging["id"]
    assert {p["name"] for p in body["projects"]} == {"Production", "Staging"}


def test_switch_to_a_project_the_user_cannot_see_is_404(client: TestClient[Any]) -> None:
    ann = register(client, "ann@acme.io", tenant="Acme")
    bob = register(client, "bob@other.io", tenant="Other")
    response = client.post(f"{API}/auth/switch-project", json={"project_id": bob.project_id}, headers=ann.headers)
    assert response.status_code == 404


def test_ws_token_is_short_lived(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    body = client.get(f"{API}/auth/ws-token", headers=account.headers).json()
    assert body["expires_in"] <= 60
    assert body["token"]


def test_failed_logins_are_throttled_per_email(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    statuses = [
        client.post(f"{API}/auth/login", json={"email": account.email, "password": "wrong guess"}).status_code
        for _ in range(12)
    ]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    # Even the right password waits out the window: the throttle is per email.
    right = client.post(f"{API}/auth/login", json={"email": account.email, "password": account.password})
    assert right.status_code == 429
    assert "detail" in right.json()
