"""Hostile and clumsy input over HTTP: always a 4xx `{"detail": ...}`, never a 5xx, and nothing stored changes.

SQLite is enough for most of it; the NUL byte, huge strings and odd unicode also run on PostgreSQL,
which refuses things SQLite stores without complaint.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
import pytest

from tests.e2e.api import PROJECT, Account, Users, answer, refused, unique_email
from tests.e2e.server import Server

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])
HUGE = "x" * 100_000


@pytest.fixture
def existing(users: Users) -> Account:
    """A user whose stored state must survive every bad request: two projects, one invited teammate."""
    account = users.register()
    payments = answer(account.client.post("/projects", json={"name": "Payments"}), 201, PROJECT)
    answer(account.client.post(f"/projects/{payments['id']}/members", json={"email": unique_email("mate")}), 201)
    return account


def stored(account: Account) -> dict[str, Any]:
    """Everything the user can read about themselves, their projects and their members."""
    projects = answer(account.client.get("/projects"), 200)
    return {
        "me": answer(account.client.get("/auth/me"), 200),
        "projects": projects,
        "members": {p["id"]: answer(account.client.get(f"/projects/{p['id']}/members"), 200) for p in projects},
    }


@contextmanager
def nothing_changes(account: Account) -> Iterator[None]:
    before = stored(account)
    yield
    assert stored(account) == before


def raw_post(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


def register_body(**fields: Any) -> dict[str, Any]:
    return {"email": unique_email("new"), "password": "long enough password", "full_name": "New Person",
            "tenant_name": "New Tenant", **fields}


# -- unreadable and ill-typed bodies ----------------------------------------------------------

MALFORMED = {
    "unclosed-object": b'{"name": "Payments"',
    "single-quotes": b"{'name': 'Payments'}",
    "trailing-comma": b'{"name": "Payments",}',
    "not-utf8": b'{"name": "\xff\xfe"}',
    "bare-word": b"Payments",
    "lone-surrogate": b'{"name": "x\\ud800y"}',
}


@SQLITE_ONLY
@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_json_is_400(existing: Account, users: Users, body: bytes) -> None:
    with nothing_changes(existing):
        refused(raw_post(existing.client, "/projects", body), 400)
        refused(raw_post(existing.client, f"/projects/{existing.project_id}/members", body), 400)
        refused(raw_post(users.anonymous(), "/auth/login", body), 400)
        refused(raw_post(users.anonymous(), "/auth/register", body), 400)


@SQLITE_ONLY
def test_an_empty_body_is_400_like_any_unreadable_json(existing: Account, users: Users) -> None:
    with nothing_changes(existing):
        for client, path in ((users.anonymous(), "/auth/login"), (users.anonymous(), "/auth/register"),
                             (existing.client, "/projects"), (existing.client, "/auth/switch-project")):
            refused(raw_post(client, path, b""), 400)


@SQLITE_ONLY
def test_deeply_nested_json_is_400_not_a_server_error(existing: Account, users: Users) -> None:
    nested = b"[" * 5_000 + b"]" * 5_000
    with nothing_changes(existing):
        refused(raw_post(existing.client, "/projects", b'{"name": "Deep", "extra": ' + nested + b"}"), 400)
        refused(raw_post(users.anonymous(), "/auth/login", nested), 400)


WRONG_TYPES = {
    "name-number": ("/projects", {"name": 5}),
    "name-list": ("/projects", {"name": ["Payments"]}),
    "name-null": ("/projects", {"name": None}),
    "name-object": ("/projects", {"name": {"$ne": ""}}),
    "description-bool": ("/projects", {"name": "Ok", "description": True}),
    "body-array": ("/projects", [{"name": "Payments"}]),
    "body-string": ("/projects", "Payments"),
    "role-number": ("/projects/{project}/members", {"email": "someone@example.com", "role": 3}),
    "role-unknown": ("/projects/{project}/members", {"email": "someone@example.com", "role": "superuser"}),
    "email-number": ("/projects/{project}/members", {"email": 42}),
    "email-not-an-email": ("/projects/{project}/members", {"email": "not an email"}),
    "project-id-number": ("/auth/switch-project", {"project_id": 12345}),
    "project-id-not-uuid": ("/auth/switch-project", {"project_id": "production"}),
}


@SQLITE_ONLY
@pytest.mark.parametrize(("path", "body"), WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_wrong_types_are_refused(existing: Account, path: str, body: Any) -> None:
    with nothing_changes(existing):
        refused(existing.client.post(path.format(project=existing.project_id), json=body), 400, 422)


@SQLITE_ONLY
def test_wrong_types_at_sign_in_are_refused(users: Users) -> None:
    client = users.anonymous()
    for body in ({"email": 1, "password": 2}, {"email": ["a@b.io"], "password": "long enough"},
                 {"email": "a@b.io", "password": None}, register_body(password=12345678),
                 register_body(full_name={"first": "A"}), register_body(invite_token=7)):
        path = "/auth/register" if "full_name" in body else "/auth/login"
        refused(client.post(path, json=body), 400, 422)
    refused(client.post("/auth/refresh", json={"refresh_token": 5}), 400, 422)


MISSING = {
    "project-name": ("/projects", {"description": "no name"}),
    "member-email": ("/projects/{project}/members", {"role": "member"}),
    "switch-project-id": ("/auth/switch-project", {}),
}


@SQLITE_ONLY
@pytest.mark.parametrize(("path", "body"), MISSING.values(), ids=MISSING.keys())
def test_missing_fields_are_400(existing: Account, path: str, body: dict[str, Any]) -> None:
    with nothing_changes(existing):
        detail = refused(existing.client.post(path.format(project=existing.project_id), json=body), 400)
        assert "missing" in detail.lower()


@SQLITE_ONLY
def test_missing_fields_at_sign_in_are_400_and_claim_nothing(users: Users) -> None:
    client = users.anonymous()
    body = register_body()
    for field in ("email", "password", "full_name", "tenant_name"):
        refused(client.post("/auth/register", json={k: v for k, v in body.items() if k != field}), 400)
    refused(client.post("/auth/login", json={"email": body["email"]}), 400)
    refused(client.post("/auth/login", json={"password": body["password"]}), 400)
    answer(client.post("/auth/register", json=body), 200)  # the email was never claimed


@SQLITE_ONLY
def test_a_missing_role_when_changing_a_member_is_400(existing: Account) -> None:
    path = f"/projects/{existing.project_id}/members/{existing.user_id}"
    with nothing_changes(existing):
        refused(existing.client.patch(path, json={}), 400)


EMPTY = {
    "project-name": ("post", "/projects", {"name": ""}),
    "project-rename": ("patch", "/projects/{project}", {"name": ""}),
    "member-email": ("post", "/projects/{project}/members", {"email": ""}),
    "member-role": ("patch", "/projects/{project}/members/{user}", {"role": ""}),
    "refresh-token": ("post", "/auth/refresh", {"refresh_token": ""}),
}


@SQLITE_ONLY
@pytest.mark.parametrize(("method", "path", "body"), EMPTY.values(), ids=EMPTY.keys())
def test_empty_strings_are_refused(existing: Account, method: str, path: str, body: dict[str, Any]) -> None:
    url = path.format(project=existing.project_id, user=existing.user_id)
    with nothing_changes(existing):
        refused(existing.client.request(method, url, json=body))


@SQLITE_ONLY
def test_empty_strings_at_sign_in_are_refused_and_claim_nothing(users: Users) -> None:
    client = users.anonymous()
    body = register_body()
    for field in ("email", "password", "full_name", "tenant_name", "invite_token"):
        refused(client.post("/auth/register", json={**body, field: ""}), 400, 422)
    refused(client.post("/auth/login", json={"email": "", "password": ""}), 400, 422)
    answer(client.post("/auth/register", json=body), 200)


@SQLITE_ONLY
@pytest.mark.parametrize("name", ["", " ", "\t", "\u3000", "\u00a0", "\u200b", "\u200e\u200f"],
                         ids=["empty", "space", "tab", "ideographic-space", "nbsp", "zero-width-space",
                              "direction-marks"])
def test_a_project_name_with_nothing_visible_is_refused(existing: Account, name: str) -> None:
    with nothing_changes(existing):
        refused(existing.client.post("/projects", json={"name": name}), 400, 422)


@SQLITE_ONLY
def test_a_10_mb_body_is_refused(existing: Account, users: Users) -> None:
    body = json.dumps({"name": "Big", "description": "x" * 10_000_000}).encode()
    with nothing_changes(existing):
        refused(raw_post(existing.client, "/projects", body), 413)
        refused(raw_post(users.anonymous(), "/auth/register", body), 413)


# -- huge, NUL and odd-unicode strings, on both backends -----------------------------------------

HUGE_FIELDS = {
    "project-name": ("post", "/projects", {"name": HUGE}),
    "project-description": ("post", "/projects", {"name": "Ok", "description": HUGE}),
    "project-rename": ("patch", "/projects/{project}", {"name": HUGE}),
    "member-email": ("post", "/projects/{project}/members", {"email": f"{HUGE}@example.com"}),
}


@pytest.mark.parametrize(("method", "path", "body"), HUGE_FIELDS.values(), ids=HUGE_FIELDS.keys())
def test_100k_character_strings_are_refused(existing: Account, method: str, path: str, body: dict[str, Any]) -> None:
    with nothing_changes(existing):
        refused(existing.client.request(method, path.format(project=existing.project_id), json=body), 400, 422)


def test_100k_character_strings_at_sign_in_are_refused_and_claim_nothing(users: Users) -> None:
    client = users.anonymous()
    body = register_body()
    for field in ("password", "full_name", "tenant_name", "invite_token"):
        refused(client.post("/auth/register", json={**body, field: HUGE}), 400, 422)
    refused(client.post("/auth/register", json={**body, "email": f"{HUGE}@example.com"}), 400, 422)
    refused(client.post("/auth/login", json={"email": body["email"], "password": HUGE}), 400, 422)
    refused(client.post("/auth/refresh", json={"refresh_token": "a" * 100_000}), 400, 422)
    answer(client.post("/auth/register", json=body), 200)


@pytest.fixture
def nul_server(backend: str, request: pytest.FixtureRequest) -> Server:
    """On PostgreSQL a stored NUL can stall the read models for good, so that test gets its own server."""
    fixture = "disposable_server" if backend == "postgres" else "server"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


NUL_FIELDS = {
    "project-name": ("post", "/projects", {"name": "Pay\x00ments"}),
    "project-rename": ("patch", "/projects/{project}", {"name": "Pay\x00ments"}),
    "project-description": ("post", "/projects", {"name": "Ok", "description": "card\x00flows"}),
}


@pytest.mark.parametrize(("method", "path", "body"), NUL_FIELDS.values(), ids=NUL_FIELDS.keys())
def test_a_nul_byte_is_refused_and_the_server_keeps_working(
    nul_server: Server, method: str, path: str, body: dict[str, Any]
) -> None:
    with Users(nul_server.api_url) as users:
        account = users.register()
        with nothing_changes(account):
            refused(account.client.request(method, path.format(project=account.project_id), json=body), 400, 422)
        # Whatever was sent, the next honest write goes through and is seen.
        created = answer(account.client.post("/projects", json={"name": "Afterwards"}), 201, PROJECT)
        assert created["id"] in [p["id"] for p in answer(account.client.get("/projects"), 200)]


@pytest.mark.parametrize("field", ["full_name", "tenant_name"])
def test_a_nul_byte_at_registration_is_refused_and_others_can_still_register(
    nul_server: Server, field: str
) -> None:
    with Users(nul_server.api_url) as users:
        client = users.anonymous()
        body = register_body(**{field: "Nul\x00Person long"})
        refused(client.post("/auth/register", json=body), 400, 422)
        newcomer = users.register()
        assert answer(newcomer.client.get("/projects"), 200, [PROJECT])[0]["name"] == "Production"
        answer(client.post("/auth/register", json={**body, field: "Fixed Person"}), 200)


@SQLITE_ONLY
@pytest.mark.parametrize("name", ["\x1b[31mRed\x1b[0m", "Bell\x07", "Ops\n", "Tab\tbed"],
                         ids=["ansi-escape", "bell", "trailing-newline", "tab"])
def test_control_characters_in_a_project_name_are_refused(existing: Account, name: str) -> None:
    with nothing_changes(existing):
        refused(existing.client.post("/projects", json={"name": name}), 400, 422)


ODD_NAMES = {
    "emoji": "🔥 Payments 🚀",
    "zwj-family": "Team 👩\u200d👩\u200d👧",
    "combining": "Cafe\u0301 re\u0301sume\u0301",
    "right-to-left": "\u05ea\u05e9\u05dc\u05d5\u05de\u05d9\u05dd \u200fpayments",
    "rtl-override": "\u202eslaunam",
    "astral-cjk": "\U00020000\u9ebb\u5a46",
}


@pytest.mark.parametrize("name", ODD_NAMES.values(), ids=ODD_NAMES.keys())
def test_names_in_odd_unicode_are_stored_and_returned_exactly(users: Users, name: str) -> None:
    owner = users.register(full_name=f"{name} Person", tenant_name=name)
    assert owner.body["user"]["full_name"] == f"{name} Person"
    assert owner.body["tenant"]["name"] == name
    created = answer(owner.client.post("/projects", json={"name": name, "description": name}), 201, PROJECT)
    assert (created["name"], created["description"]) == (name, name)
    assert answer(owner.client.get(f"/projects/{created['id']}"), 200, PROJECT)["name"] == name
    renamed = answer(owner.client.patch(f"/projects/{owner.project_id}", json={"name": name[::-1]}), 200, PROJECT)
    assert renamed["name"] == name[::-1]
    assert users.login(owner.email).body["user"]["full_name"] == f"{name} Person"


# -- ids in paths --------------------------------------------------------------------------------

BAD_IDS = ["not-a-uuid", "123", "%00", "'%3B DROP TABLE projects%3B --", "..%2F..%2Fetc%2Fpasswd",
           "%F0%9F%94%A5", "00000000-0000-0000-0000-00000000000g", "x" * 5000]


@SQLITE_ONLY
@pytest.mark.parametrize("bad", BAD_IDS, ids=["word", "number", "nul", "sql", "traversal", "emoji",
                                              "almost-uuid", "long"])
def test_ids_that_are_not_uuids_are_404(existing: Account, bad: str) -> None:
    client, project = existing.client, existing.project_id
    with nothing_changes(existing):
        refused(client.get(f"/projects/{bad}"), 404)
        refused(client.patch(f"/projects/{bad}", json={"name": "X"}), 404)
        refused(client.delete(f"/projects/{bad}"), 404)
        refused(client.get(f"/projects/{bad}/members"), 404)
        refused(client.patch(f"/projects/{project}/members/{bad}", json={"role": "viewer"}), 404)
        refused(client.delete(f"/projects/{project}/members/{bad}"), 404)


@SQLITE_ONLY
def test_unknown_uuids_are_404(existing: Account) -> None:
    client, unknown = existing.client, str(uuid.uuid4())
    with nothing_changes(existing):
        refused(client.get(f"/projects/{unknown}"), 404)
        refused(client.patch(f"/projects/{unknown}", json={"name": "X"}), 404)
        refused(client.delete(f"/projects/{unknown}"), 404)
        refused(client.post(f"/projects/{unknown}/members", json={"email": unique_email()}), 404)
        refused(client.patch(f"/projects/{existing.project_id}/members/{unknown}", json={"role": "viewer"}), 404)
        refused(client.delete(f"/projects/{existing.project_id}/members/{unknown}"), 404)


# -- tokens ------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    """An unsigned (alg=none) JWT, built by hand."""
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def bad_tokens(server: Server, account: Account) -> dict[str, str]:
    """Tokens that must not let anyone in, keyed by what is wrong with them."""
    real = claims_of(account.token)
    key = server.secret_key
    now = int(time.time())
    refresh = account.client.cookies.get("refresh_token", path="/api/v1/auth")
    assert refresh
    ws_token = answer(account.client.get("/auth/ws-token"), 200)["token"]
    return {
        "garbage": "not-a-token",
        "three-garbage-parts": "abc.def.ghi",
        "alg-none": unsigned(real),
        "alg-none-uppercase": unsigned(real, alg="NONE"),
        "expired": jwt.encode({**real, "iat": now - 3600, "exp": now - 1800}, key, algorithm="HS256"),
        "forged-signature": jwt.encode(real, "an attacker's key that is long enough 1234", algorithm="HS256"),
        "tampered-payload": account.token.split(".")[0] + "." + b64url(json.dumps(
            {**real, "sub": str(uuid.uuid4())}).encode()) + "." + account.token.split(".")[2],
        "other-algorithm": jwt.encode(real, key, algorithm="HS512"),
        "wrong-issuer": jwt.encode({**real, "iss": "someone-else"}, key, algorithm="HS256"),
        "missing-expiry": jwt.encode({k: v for k, v in real.items() if k != "exp"}, key, algorithm="HS256"),
        "unknown-session": jwt.encode({**real, "sid": str(uuid.uuid4())}, key, algorithm="HS256"),
        "refresh-token": str(refresh),
        "ws-token": ws_token,
    }


TOKEN_CASES = ["garbage", "three-garbage-parts", "alg-none", "alg-none-uppercase", "expired", "forged-signature",
               "tampered-payload", "other-algorithm", "wrong-issuer", "missing-expiry", "unknown-session",
               "refresh-token", "ws-token"]


@SQLITE_ONLY
@pytest.mark.parametrize("case", TOKEN_CASES)
def test_a_bad_access_token_is_401_by_header_or_cookie(server: Server, existing: Account, users: Users,
                                                       case: str) -> None:
    token = bad_tokens(server, existing)[case]
    with nothing_changes(existing):
        by_header = users.anonymous()
        by_header.headers["Authorization"] = f"Bearer {token}"
        refused(by_header.get("/auth/me"), 401)
        refused(by_header.get("/projects"), 401)
        refused(by_header.post("/projects", json={"name": "Intruder"}), 401)
        refused(by_header.patch(f"/projects/{existing.project_id}", json={"name": "Intruder"}), 401)
        by_cookie = users.anonymous()
        by_cookie.cookies.set("access_token", token)
        refused(by_cookie.get("/projects"), 401)
        refused(by_cookie.delete(f"/projects/{existing.project_id}"), 401)


@SQLITE_ONLY
def test_an_access_token_is_not_a_refresh_token(existing: Account, users: Users) -> None:
    with nothing_changes(existing):
        refused(users.anonymous().post("/auth/refresh", json={"refresh_token": existing.token}), 401)
        client = users.anonymous()
        client.cookies.set("refresh_token", existing.token, path="/api/v1/auth")
        refused(client.post("/auth/refresh"), 401)


@SQLITE_ONLY
def test_authorization_headers_that_are_not_bearer_tokens_are_401(existing: Account, users: Users) -> None:
    client = users.anonymous()
    for header in ("", "Bearer", f"Basic {existing.token}", f"Token {existing.token}",
                   f"Bearer{existing.token}", "Bearer " + "a" * 20_000):
        refused(client.get("/projects", headers={"Authorization": header}), 401)


# -- the request budget ------------------------------------------------------------------------


def remaining(response: httpx.Response) -> int:
    return int(response.headers["X-RateLimit-Remaining"])


def settle_in_one_window(client: httpx.Client) -> None:
    """Wait out the end of the current rate-limit window if it is about to roll over."""
    reset = int(client.get("/auth/me").headers["X-RateLimit-Reset"])
    if reset <= 3:
        time.sleep(reset + 0.5)


@SQLITE_ONLY
def test_forged_tokens_naming_a_user_do_not_spend_that_users_request_budget(
    existing: Account, users: Users
) -> None:
    forged = jwt.encode({"sub": existing.user_id}, "an attacker's key that is long enough 1234", algorithm="HS256")
    attacker = users.anonymous()
    attacker.headers["Authorization"] = f"Bearer {forged}"
    settle_in_one_window(existing.client)

    before = remaining(existing.client.get("/projects"))
    for _ in range(5):
        refused(attacker.get("/projects"), 401)
    assert remaining(existing.client.get("/projects")) == before - 1


@SQLITE_ONLY
def test_a_callers_request_budget_is_one_budget_across_endpoints(existing: Account) -> None:
    settle_in_one_window(existing.client)
    first = remaining(existing.client.get("/projects"))
    second = remaining(existing.client.get(f"/projects/{existing.project_id}/members"))
    third = remaining(existing.client.get("/auth/me"))
    assert [second, third] == [first - 1, first - 2]
