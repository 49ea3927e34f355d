"""The WebSocket gateway as a dashboard meets it: connect with a ws-token, subscribe, ping, misbehave."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.e2e.api import WS_TOKEN, Account, Users, answer
from tests.e2e.server import Server

UNAUTHORIZED = 4401
WAIT = 5.0


@pytest.fixture
def account(users: Users) -> Account:
    return users.register()


def ws_token(account: Account) -> str:
    body = answer(account.client.get("/auth/ws-token"), 200, WS_TOKEN)
    assert 0 < body["expires_in"] <= 60
    return str(body["token"])


def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    ws.send(json.dumps(message))


def receive(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(ws.recv(timeout=WAIT))
    assert isinstance(message, dict)
    return message


def close_of(ws: ClientConnection, timeout: float = WAIT) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
    assert closed.value.rcvd is not None, "the connection ended without a close frame from the server"
    return closed.value.rcvd.code, closed.value.rcvd.reason


@contextmanager
def connected(server: Server, account: Account) -> Iterator[ClientConnection]:
    with connect(server.ws_url, open_timeout=WAIT, close_timeout=2) as ws:
        send(ws, {"type": "connect", "token": ws_token(account), "tenantId": account.tenant_id})
        assert receive(ws)["type"] == "connected"
        yield ws


def assert_still_open(ws: ClientConnection) -> None:
    send(ws, {"type": "ping"})
    assert receive(ws) == {"type": "pong"}


# -- the happy path ------------------------------------------------------------------------------


def test_a_ws_token_with_its_own_tenant_id_connects(server: Server, account: Account) -> None:
    with connect(server.ws_url, open_timeout=WAIT) as ws:
        send(ws, {"type": "connect", "token": ws_token(account), "tenantId": account.tenant_id})
        assert receive(ws) == {"type": "connected", "tenantId": account.tenant_id, "projectId": account.project_id}


def test_subscribing_answers_with_the_subscribed_channels(server: Server, account: Account) -> None:
    with connected(server, account) as ws:
        send(ws, {"type": "subscribe", "channels": ["incidents", "alerts"]})
        reply = receive(ws)
        assert reply["type"] == "subscribed"
        assert sorted(reply["channels"]) == ["alerts", "incidents"]


def test_unsubscribing_leaves_the_other_channels_subscribed(server: Server, account: Account) -> None:
    with connected(server, account) as ws:
        send(ws, {"type": "subscribe", "channels": ["incidents", "alerts", "hypotheses"]})
        assert receive(ws)["type"] == "subscribed"
        send(ws, {"type": "unsubscribe", "channels": ["alerts"]})
        reply = receive(ws)
        assert reply["type"] == "unsubscribed"
        assert sorted(reply["channels"]) == ["hypotheses", "incidents"]


def test_ping_is_answered_with_pong(server: Server, account: Account) -> None:
    with connected(server, account) as ws:
        for _ in range(3):
            assert_still_open(ws)


# -- misbehaving clients -------------------------------------------------------------------------

MALFORMED: dict[str, str | bytes] = {
    "not-json": "{nope",
    "array": "[]",
    "string": '"ping"',
    "no-type": '{"channels": ["incidents"]}',
    "type-number": '{"type": 5}',
    "channels-string": '{"type": "subscribe", "channels": "incidents"}',
    "channels-unknown": '{"type": "subscribe", "channels": ["bogus"]}',
    "channels-empty": '{"type": "subscribe", "channels": []}',
    "unknown-type": '{"type": "dance"}',
    "second-connect": '{"type": "connect", "token": "x"}',
    "binary-frame": b"\x00\x01\x02",
    "nul-and-emoji": '{"type": "\\u0000\U0001f525"}',
}


@pytest.mark.parametrize("message", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_message_gets_an_error_and_the_connection_stays_open(
    server: Server, account: Account, message: str | bytes
) -> None:
    with connected(server, account) as ws:
        ws.send(message)
        error = receive(ws)
        assert error["type"] == "error"
        assert isinstance(error["detail"], str) and error["detail"]
        assert_still_open(ws)


def refused_connect(server: Server, message: dict[str, Any] | str) -> tuple[int, str]:
    with connect(server.ws_url, open_timeout=WAIT) as ws:
        ws.send(message if isinstance(message, str) else json.dumps(message))
        return close_of(ws)


def forged_ws_tokens(server: Server, account: Account) -> dict[str, str]:
    real = jwt.decode(ws_token(account), options={"verify_signature": False})
    now = int(time.time())
    return {
        "garbage": "not-a-token",
        "expired": jwt.encode({**real, "iat": now - 600, "exp": now - 300}, server.secret_key, algorithm="HS256"),
        "forged-signature": jwt.encode(real, "an attacker's key that is long enough 1234", algorithm="HS256"),
        "other-algorithm": jwt.encode(real, server.secret_key, algorithm="HS512"),
        "alg-none": jwt.encode(real, None, algorithm="none"),
    }


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("case", ["garbage", "expired", "forged-signature", "other-algorithm", "alg-none"])
def test_a_bad_ws_token_is_closed_with_4401(server: Server, account: Account, case: str) -> None:
    token = forged_ws_tokens(server, account)[case]
    code, _ = refused_connect(server, {"type": "connect", "token": token, "tenantId": account.tenant_id})
    assert code == UNAUTHORIZED


@pytest.mark.parametrize("tenant", ["another-tenant", "random-uuid", "not-a-uuid"])
def test_a_tenant_id_other_than_the_tokens_is_closed_with_4401(
    server: Server, account: Account, users: Users, tenant: str
) -> None:
    tenant_id = {"another-tenant": users.register(who="neighbour").tenant_id, "random-uuid": str(uuid.uuid4()),
                 "not-a-uuid": "acme"}[tenant]
    code, reason = refused_connect(server, {"type": "connect", "token": ws_token(account), "tenantId": tenant_id})
    assert code == UNAUTHORIZED
    assert "tenant" in reason.lower()


@pytest.mark.parametrize("kind", ["access", "refresh"])
def test_an_access_or_refresh_token_is_not_a_ws_token(server: Server, account: Account, kind: str) -> None:
    token = account.token if kind == "access" else account.client.cookies.get("refresh_token", path="/api/v1/auth")
    assert token
    code, _ = refused_connect(server, {"type": "connect", "token": token, "tenantId": account.tenant_id})
    assert code == UNAUTHORIZED


@pytest.mark.parametrize("first", ['{"type": "ping"}', '{"type": "subscribe", "channels": ["incidents"]}',
                                   '{"type": "connect"}', "{nope"], ids=["ping", "subscribe", "no-token", "not-json"])
def test_a_first_message_that_is_not_a_connect_with_a_token_is_closed_with_4401(
    server: Server, first: str
) -> None:
    code, _ = refused_connect(server, first)
    assert code == UNAUTHORIZED


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_client_that_never_says_connect_is_closed_after_10_seconds(server: Server) -> None:
    with connect(server.ws_url, open_timeout=WAIT) as ws:
        started = time.monotonic()
        code, _ = close_of(ws, timeout=12.0)
        waited = time.monotonic() - started
    assert code == UNAUTHORIZED
    assert 9.0 <= waited <= 12.0
