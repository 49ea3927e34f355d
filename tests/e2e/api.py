"""Talking to a running server as its users do: accounts with their own HTTP clients, and the spec's shapes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


def unique_email(who: str = "user") -> str:
    return f"{who}-{uuid.uuid4().hex[:10]}@example.com"


def unique_name(what: str) -> str:
    return f"{what} {uuid.uuid4().hex[:8]}"


@dataclass
class Account:
    """A signed-in user: their own client (cookies included) and the ids a test needs."""

    client: httpx.Client
    body: dict[str, Any]
    email: str
    password: str

    @property
    def user_id(self) -> str:
        return str(self.body["user"]["id"])

    @property
    def tenant_id(self) -> str:
        return str(self.body["user"]["tenant_id"])

    @property
    def project_id(self) -> str:
        return str(self.body["user"]["project_id"])

    @property
    def token(self) -> str:
        return str(self.body["access_token"])

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def use_token(self, token: str) -> None:
        self.client.headers["Authorization"] = f"Bearer {token}"


class Users:
    """Registers and signs in users against one server; closes their clients afterwards."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.clients: list[httpx.Client] = []

    def __enter__(self) -> Users:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        for client in self.clients:
            client.close()

    def anonymous(self) -> httpx.Client:
        client = httpx.Client(base_url=self.api_url, timeout=30.0)
        self.clients.append(client)
        return client

    def register(self, tenant: str | None = None, *, who: str = "owner", **fields: Any) -> Account:
        """Register a new tenant's first user (or, with invite_token, join one) and sign them in."""
        client = self.anonymous()
        body = {"email": unique_email(who), "password": PASSWORD, "full_name": who.title(), **fields}
        if "invite_token" not in fields:
            body.setdefault("tenant_name", tenant or unique_name("Tenant"))
        response = client.post("/auth/register", json=body)
        account = Account(client, answer(response, 200, REGISTER_BODY), body["email"], body["password"])
        account.use_token(account.token)
        return account

    def login(self, email: str, password: str = PASSWORD) -> Account:
        client = self.anonymous()
        response = client.post("/auth/login", json={"email": email, "password": password})
        account = Account(client, answer(response, 200, LOGIN_BODY), email, password)
        account.use_token(account.token)
        return account


# -- shapes -----------------------------------------------------------------------------------
# A shape is a dict of key -> shape, a one-item list (every item has that shape), a type, a
# predicate, or a literal value. Keys the spec names must be there; extra keys are allowed.

Shape = Any


def uuid_text(value: Any) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def optional_uuid(value: Any) -> bool:
    return value is None or uuid_text(value)


def timestamp(value: Any) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


def text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def one_of(*allowed: Any) -> Callable[[Any], bool]:
    return lambda value: value in allowed


ROLE = one_of("owner", "admin", "member", "viewer")
USER = {"id": uuid_text, "email": text, "full_name": str, "tenant_id": uuid_text,
        "project_id": optional_uuid, "role": one_of(None, "owner", "admin", "member", "viewer")}
TENANT = {"id": uuid_text, "name": text, "slug": text}
REGISTER_BODY = {"user": USER, "tenant": TENANT, "access_token": text, "token_type": "bearer"}
LOGIN_BODY = {"user": USER, "projects": [{"id": uuid_text, "name": text, "role": ROLE}],
              "access_token": text, "token_type": "bearer"}
PROJECT = {"id": uuid_text, "tenant_id": uuid_text, "name": text, "description": str, "role": ROLE,
           "created_by": uuid_text, "created_at": timestamp, "updated_at": timestamp}
MEMBER = {"user_id": uuid_text, "email": text, "full_name": str, "role": ROLE,
          "status": one_of("active", "invited"), "added_at": timestamp}
WS_TOKEN = {"token": text, "expires_in": int}
ERROR = {"detail": text}


def assert_shape(value: Any, shape: Shape, where: str = "$") -> None:
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        for key, inner in shape.items():
            assert key in value, f"{where}: missing {key!r} in {value!r}"
            assert_shape(value[key], inner, f"{where}.{key}")
    elif isinstance(shape, list):
        assert isinstance(value, list), f"{where}: expected an array, got {value!r}"
        for index, item in enumerate(value):
            assert_shape(item, shape[0], f"{where}[{index}]")
    elif isinstance(shape, type):
        assert isinstance(value, shape) and not isinstance(value, bool), \
            f"{where}: expected {shape.__name__}, got {value!r}"
    elif callable(shape):
        assert shape(value), f"{where}: unexpected value {value!r}"
    else:
        assert value == shape, f"{where}: expected {shape!r}, got {value!r}"


def answer(response: httpx.Response, status: int, shape: Shape = None) -> Any:
    """The JSON body of a response that must have this status (and shape)."""
    assert response.status_code == status, f"{response.request.method} {response.request.url}: " \
        f"expected {status}, got {response.status_code} {response.text[:500]}"
    if status == 204:
        return None
    body = response.json()
    if shape is not None:
        assert_shape(body, shape)
    return body


def refused(response: httpx.Response, *statuses: int) -> str:
    """A client error answered as `{"detail": ...}` (one of these statuses if given); its detail."""
    where = f"{response.request.method} {response.request.url.path}"
    assert 400 <= response.status_code < 500, f"{where}: expected a 4xx, got {response.status_code} " \
        f"{response.text[:500]}"
    if statuses:
        assert response.status_code in statuses, f"{where}: expected {statuses}, got {response.status_code} " \
            f"{response.text[:500]}"
    assert response.headers.get("content-type", "").startswith("application/json"), f"{where}: {response.headers}"
    body = response.json()
    assert_shape(body, ERROR)
    return str(body["detail"])
