"""Browser-facing hardening, through the real app: CSRF proofs for cookie-authenticated writes, security
headers on every answer, token claims, password rehashing, a login throttle nobody can turn into a
lock-out, the body size limit, and a WebSocket gateway that ignores cookies.

The rules do not depend on the storage engine, so these run on SQLite only.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import argon2
import httpx
import jwt
import pytest
from litestar.testing import TestClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.typing import Origin

from copilot.api.app import MAX_BODY_BYTES, create_api_app
from copilot.api.throttle import LoginThrottle
from copilot.bootstrap import Container, build_container
from copilot.domain.user import User
from copilot.settings import load_settings
from copilot.stream import Gateway
from copilot.stream.bus import InProcessBus
from tests.conftest import TEST_SECRET, settings_env
from tests.gateway_server import running_gateway
from tests.integration.conftest import Account, register


@pytest.fixture
def backend() -> str:
    return "sqlite"


API = "/api/v1"
ERRORS = re.compile(r"csrf", re.IGNORECASE)


def sign_in_by_cookie(client: TestClient[Any], account: Account) -> str:
    """Log in as a browser does, keeping the cookies; the CSRF token the page would read."""
    client.cookies.clear()
    response = client.post(f"{API}/auth/login", json={"email": account.email, "password": account.password})
    assert response.status_code == 200, response.text
    token = client.cookies.get("csrf_token")
    assert token
    return str(token)


def projects(client: TestClient[Any], account: Account) -> list[str]:
    return sorted(p["name"] for p in client.get(f"{API}/projects", headers=account.headers).json())


def assert_csrf_refusal(response: Any) -> None:
    assert response.status_code == 403, response.text
    assert ERRORS.search(response.json()["detail"])


# -- CSRF ---------------------------------------------------------------------------------------


def test_signing_in_sets_a_csrf_cookie_the_page_can_read_next_to_httponly_tokens(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    response = client.post(f"{API}/auth/login", json={"email": account.email, "password": account.password})
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    assert "HttpOnly" not in cookies["csrf_token"]
    assert "Path=/;" in cookies["csrf_token"] + ";" and "SameSite=lax" in cookies["csrf_token"]
    assert "HttpOnly" in cookies["access_token"] and "HttpOnly" in cookies["refresh_token"]


def test_a_write_authenticated_by_cookie_needs_the_csrf_header(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    csrf = sign_in_by_cookie(client, account)
    incident = client.post(f"{API}/incidents", headers={"X-CSRF-Token": csrf},
                           json={"title": "disk full", "service_name": "db", "severity": "high"})
    assert incident.status_code in (200, 201), incident.text
    before = projects(client, account)

    # What a page on another origin can make the browser send: the cookies, not the header.
    assert_csrf_refusal(client.post(f"{API}/projects", json={"name": "Planted"}))
    assert_csrf_refusal(client.patch(f"{API}/projects/{account.project_id}", json={"name": "Renamed"}))
    assert_csrf_refusal(client.delete(f"{API}/projects/{account.project_id}"))
    assert_csrf_refusal(client.patch(f"{API}/incidents/{incident.json()['id']}/state", json={"state": "resolved"}))
    assert_csrf_refusal(client.post(f"{API}/auth/logout"))
    assert projects(client, account) == before
    assert client.get(f"{API}/incidents/{incident.json()['id']}", headers=account.headers).json()["state"] == \
        "detected"
    assert client.get(f"{API}/auth/me").status_code == 200  # still signed in: the logout was refused too

    # The page echoing the cookie in the header is let through.
    created = client.post(f"{API}/projects", json={"name": "Staging"}, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.text
    assert projects(client, account) == sorted([*before, "Staging"])


def test_a_csrf_header_that_does_not_match_or_belongs_to_another_session_is_refused(
    client: TestClient[Any]
) -> None:
    ann = register(client, "ann@acme.io")
    mallory = register(client, "mallory@evil.io", tenant="Evil")
    mallorys_token = sign_in_by_cookie(client, mallory)
    ann_token = sign_in_by_cookie(client, ann)
    nonce, _, mac = ann_token.partition(".")
    for header, cookie in [
        ("made-up", ann_token),  # header and cookie differ
        (mallorys_token, mallorys_token),  # a pair planted from another session (cookie tossing)
        (f"{nonce}.{mac[::-1]}", f"{nonce}.{mac[::-1]}"),  # a matching pair with a forged signature
        ("", ann_token),
    ]:
        client.cookies.set("csrf_token", cookie)
        assert_csrf_refusal(client.post(f"{API}/projects", json={"name": "Planted"}, headers={"X-CSRF-Token": header}))
    assert projects(client, ann) == ["Production"]


def test_bearer_requests_and_reads_need_no_csrf_token(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    assert client.post(f"{API}/projects", json={"name": "By bearer"}, headers=account.headers).status_code == 201
    sign_in_by_cookie(client, account)
    # A Bearer header is not ambient: a script had to hold the token to send it, cookies or not.
    assert client.post(f"{API}/projects", json={"name": "Bearer and cookies"},
                       headers=account.headers).status_code == 201
    assert client.get(f"{API}/projects").status_code == 200
    assert client.get(f"{API}/auth/ws-token").status_code == 200


def test_a_page_of_another_origin_is_not_let_read_anything(client: TestClient[Any]) -> None:
    # No Access-Control-Allow-Origin on any answer: a browser refuses a cross-origin page the
    # response to its request, and fails its preflight before a write is sent at all.
    account = register(client, "ann@acme.io")
    evil = {"Origin": "https://evil.example"}
    read = client.get(f"{API}/incidents", headers={**account.headers, **evil})
    preflight = client.options(f"{API}/incidents", headers={**evil, "Access-Control-Request-Method": "POST",
                                                            "Access-Control-Request-Headers": "authorization"})
    assert read.status_code == 200
    for answer in (read, preflight):
        assert "access-control-allow-origin" not in answer.headers, answer.headers


def test_refresh_and_switch_project_hand_out_a_new_csrf_token_and_logout_removes_it(
    client: TestClient[Any]
) -> None:
    account = register(client, "ann@acme.io")
    first = sign_in_by_cookie(client, account)
    refreshed = client.post(f"{API}/auth/refresh")  # the refresh cookie alone
    assert refreshed.status_code == 200, refreshed.text
    second = client.cookies.get("csrf_token")
    assert second and second != first
    staging = client.post(f"{API}/projects", json={"name": "Staging"}, headers={"X-CSRF-Token": second})
    assert staging.status_code == 201
    switched = client.post(f"{API}/auth/switch-project", json={"project_id": staging.json()["id"]},
                           headers={"X-CSRF-Token": second})
    assert switched.status_code == 200
    third = client.cookies.get("csrf_token")
    assert third and third != second
    logout = client.post(f"{API}/auth/logout", headers={"X-CSRF-Token": str(third)})
    assert logout.status_code == 200
    assert any(c.startswith("csrf_token=") and "Max-Age=0" in c for c in logout.headers.get_list("set-cookie"))
    assert client.get(f"{API}/auth/me").status_code == 401


# -- headers ------------------------------------------------------------------------------------


def header_checks(response: Any) -> None:
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("x-frame-options") == "DENY", where
    assert response.headers.get("referrer-policy") == "no-referrer", where
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), where
    assert "strict-transport-security" not in response.headers, where  # cookies are not Secure here


def test_every_answer_carries_the_security_headers(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")
    client.cookies.clear()
    answers = [
        client.get(f"{API}/projects", headers=account.headers),
        client.get(f"{API}/projects"),  # 401
        client.get(f"{API}/no-such-route"),  # 404 outside any route
        client.get("/no-such-page"),
        client.put(f"{API}/projects", headers=account.headers),  # 405
        client.post(f"{API}/projects", content=b"{nope", headers={**account.headers,
                                                                   "Content-Type": "application/json"}),
        client.post(f"{API}/projects", content=b"x" * (MAX_BODY_BYTES + 1), headers=account.headers),  # 413
        client.post(f"{API}/auth/login", json={"email": account.email, "password": account.password}),
        client.get("/healthz"), client.get("/readyz"), client.get("/metrics"), client.get("/openapi.json"),
    ]
    assert {a.status_code for a in answers} >= {200, 400, 401, 404, 405, 413}
    for response in answers:
        header_checks(response)
        if response.request.url.path.startswith("/api/"):
            assert response.headers.get("cache-control") == "no-store", response.request.url
    json_csp = answers[0].headers["content-security-policy"]
    assert "default-src 'none'" in json_csp


class _Resources(HTMLParser):
    """What a browser would fetch or run for a page: (directive, origin or 'inline')."""

    def __init__(self) -> None:
        super().__init__()
        self.needs: set[tuple[str, str]] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.needs.add(("script-src", _origin(found["src"]) if found.get("src") else "'unsafe-inline'"))
        elif tag == "style":
            self.needs.add(("style-src", "'unsafe-inline'"))
        elif tag == "link" and found.get("href"):
            kind = "style-src" if found.get("rel") == "stylesheet" else "img-src"
            self.needs.add((kind, _origin(str(found["href"]))))


def _origin(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "'self'"


def _policy(header: str) -> dict[str, set[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {words[0]: set(words[1:]) for words in directives}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_are_allowed_everything_they_load_and_still_never_framed(
    client: TestClient[Any], page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    header_checks(response)
    policy = _policy(response.headers["content-security-policy"])
    parser = _Resources()
    parser.feed(response.text)
    assert ("script-src", "'unsafe-inline'") in parser.needs  # the page boots from an inline script
    for directive, source in parser.needs:
        allowed = policy.get(directive, policy.get("default-src", set()))
        assert source in allowed, f"{page} needs {source} in {directive}: {policy}"
    if page == "/redoc":  # ReDoc's web worker and Google Fonts
        assert "blob:" in policy["worker-src"] and "https://fonts.gstatic.com" in policy["font-src"]


@pytest.fixture
def secure_client(tmp_path: Path) -> Iterator[TestClient[Any]]:
    container = build_container(load_settings(settings_env("sqlite", tmp_path / "var", COPILOT_COOKIE_SECURE="1")))
    assert container.runner is not None
    container.runner.start()
    try:
        with TestClient(create_api_app(container), base_url="https://copilot.example") as client:
            yield client
    finally:
        container.close()


def test_behind_tls_answers_ask_for_https_and_cookies_are_secure(secure_client: TestClient[Any]) -> None:
    response = secure_client.post(f"{API}/auth/register", json={
        "email": "ann@acme.io", "password": "correct horse battery", "full_name": "Ann", "tenant_name": "Acme"})
    assert response.status_code == 200
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert all("Secure" in c for c in response.headers.get_list("set-cookie"))
    assert "max-age" in secure_client.get("/healthz").headers["strict-transport-security"]


# -- tokens, passwords, throttles, limits -----------------------------------------------------------


def test_tokens_with_a_future_or_missing_issue_time_or_a_missing_or_unknown_type_are_401(
    client: TestClient[Any]
) -> None:
    account = register(client, "ann@acme.io")
    claims = dict(jwt.decode(account.token, options={"verify_signature": False}))
    now = int(time.time())
    bad = {
        "issued-in-the-future": {**claims, "iat": now + 3600, "exp": now + 7200},
        "no-issue-time": {k: v for k, v in claims.items() if k != "iat"},
        "issue-time-not-a-number": {**claims, "iat": "yesterday"},
        "no-type": {k: v for k, v in claims.items() if k != "typ"},
        "unknown-type": {**claims, "typ": "admin"},
        "alg-none": None,
    }
    for case, forged in bad.items():
        token = jwt.encode(forged, TEST_SECRET, algorithm="HS256") if forged else \
            jwt.encode(claims, None, algorithm="none")
        response = client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, case
        assert response.json()["detail"], case


def test_a_password_hashed_below_owasps_parameters_is_rehashed_at_the_next_login(
    client: TestClient[Any], container: Container
) -> None:
    account = register(client, "ann@acme.io")
    # An account from before today's parameters: argon2id at a cost under OWASP's minimum.
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(account.password)
    user = container.store.find(User, uuid.UUID(account.user_id))
    assert user is not None
    user.change_password(weak)
    container.store.append(user)

    response = client.post(f"{API}/auth/login", json={"email": account.email, "password": account.password})
    assert response.status_code == 200
    stored = container.store.find(User, uuid.UUID(account.user_id))
    assert stored is not None and stored.password_hash != weak
    parameters = argon2.extract_parameters(stored.password_hash)
    assert parameters.type is argon2.Type.ID
    assert (parameters.memory_cost, parameters.time_cost) >= (19 * 1024, 2)
    client.cookies.clear()
    assert client.post(f"{API}/auth/login", json={"email": account.email,
                                                  "password": account.password}).status_code == 200


def test_a_guesser_who_never_stops_cannot_keep_the_owner_out() -> None:
    clock = [1_000_000.0]
    throttle = LoginThrottle(per_email=10, per_address=50, clock=lambda: clock[0])
    throttle.succeeded("ann@acme.io", "10.0.0.7")  # the owner's usual address
    refused_owner = 0
    # A day of an attacker trying ann's email from one address whenever the throttle lets them.
    for _ in range(24 * 60):
        try:
            throttle.check("ann@acme.io", "203.0.113.66")
            throttle.failed("ann@acme.io", "203.0.113.66")
        except Exception:
            pass
        try:
            throttle.check("ANN@acme.io", "10.0.0.7")
        except Exception:
            refused_owner += 1
        clock[0] += 60
    assert refused_owner == 0
    # Spread over 30 addresses: the per-email limit engages for new addresses, never for the owner's.
    for n in range(30):
        for _ in range(5):
            throttle.failed("ann@acme.io", f"198.51.100.{n}")
    throttle.check("ann@acme.io", "10.0.0.7")
    with pytest.raises(Exception, match="too many failed logins"):
        throttle.check("ann@acme.io", "192.0.2.1")
    clock[0] += 901  # and for new addresses it ends with the window
    throttle.check("ann@acme.io", "192.0.2.1")


def with_peer_address(app: Any) -> Any:
    """The ASGI app seen from the address in the test's X-Test-Peer header (the test client has one)."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            peer = dict(scope["headers"]).get(b"x-test-peer")
            if peer:
                scope = {**scope, "client": (peer.decode(), 40000)}
        await app(scope, receive, send)

    return asgi


def test_failed_logins_from_one_address_do_not_lock_the_owner_out_elsewhere(container: Container) -> None:
    with TestClient(with_peer_address(create_api_app(container))) as client:
        account = register(client, "ann@acme.io")
        attacker = {"X-Test-Peer": "203.0.113.66"}
        statuses = [client.post(f"{API}/auth/login", headers=attacker, json={
            "email": account.email, "password": "guess"}).status_code for _ in range(12)]
        assert statuses == [401] * 10 + [429] * 2
        owner = client.post(f"{API}/auth/login", headers={"X-Test-Peer": "10.0.0.7"},
                            json={"email": account.email, "password": account.password})
        assert owner.status_code == 200, owner.text


def test_a_streamed_body_over_the_limit_is_413_and_stores_nothing(client: TestClient[Any]) -> None:
    account = register(client, "ann@acme.io")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        yield b'{"name": "Big", "description": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = client.post(f"{API}/projects", content=chunks(),
                           headers={**account.headers, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"]
    assert projects(client, account) == ["Production"]


# -- WebSocket ----------------------------------------------------------------------------------


def test_the_gateway_ignores_cookies_so_a_cross_site_page_gets_nothing(client: TestClient[Any],
                                                                       container: Container) -> None:
    """Cross-site WebSocket hijacking: browsers send cookies and any Origin with the handshake."""
    account = register(client, "ann@acme.io")
    sign_in_by_cookie(client, account)
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())

    async def no_replay(*_: Any) -> list[Any]:
        return []

    with running_gateway(Gateway(container.tokens, InProcessBus(no_replay))) as served:
        for path in ("/healthz", "/readyz", "/metrics", "/no-such-path"):  # the gateway's port, same headers
            header_checks(httpx.get(f"http://127.0.0.1:{served.port}{path}"))
        for first in ({"type": "subscribe", "channels": ["incidents"]},
                      {"type": "connect", "tenantId": account.tenant_id}):
            with connect(served.url, open_timeout=5, origin=Origin("https://evil.example"),
                         additional_headers={"Cookie": cookie}) as socket:
                socket.send(json.dumps(first))
                with pytest.raises(ConnectionClosed) as closed:
                    socket.recv(timeout=5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
