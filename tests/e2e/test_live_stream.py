"""Live updates over a real WebSocket: each tenant sees its own events within a second, in order,
none twice, none of another tenant — on SQLite with the in-process bus and on PostgreSQL with NATS,
and across a restart of the server or of NATS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import fresh_postgres_database
from tests.e2e.api import Account, Users
from tests.e2e.server import Server, assert_stops_cleanly, backend_env, free_port, start_server
from tests.own_nats import own_nats

DELIVERY_TIMEOUT = 5.0


@contextmanager
def live(server: Server, account: Account, channels: list[str], since: int | None = None
         ) -> Iterator[ClientConnection]:
    token = account.client.get("/auth/ws-token").json()["token"]
    with connect(server.ws_url, open_timeout=10) as socket:
        socket.send(json.dumps({"type": "connect", "token": token, "tenantId": account.tenant_id}))
        assert json.loads(socket.recv(timeout=5))["type"] == "connected"
        subscribe: dict[str, Any] = {"type": "subscribe", "channels": channels}
        if since is not None:
            subscribe["since"] = since
        socket.send(json.dumps(subscribe))
        assert json.loads(socket.recv(timeout=5))["type"] == "subscribed"
        yield socket


def receive(socket: ClientConnection, count: int, timeout: float = DELIVERY_TIMEOUT) -> list[dict[str, Any]]:
    messages = []
    deadline = time.monotonic() + timeout
    while len(messages) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"got {len(messages)} of {count} events in time: {messages}"
        messages.append(json.loads(socket.recv(timeout=remaining)))
    return messages


def nothing_more(socket: ClientConnection, wait: float = 0.7) -> None:
    try:
        extra = socket.recv(timeout=wait)
    except TimeoutError:
        return
    pytest.fail(f"unexpected message: {extra}")


def create_incident(account: Account, title: str = "High error rate") -> dict[str, Any]:
    response = account.client.post("/incidents", json={"title": title, "service_name": "api", "severity": "high"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def move(account: Account, incident_id: str, state: str) -> None:
    assert account.client.patch(f"/incidents/{incident_id}/state", json={"state": state}).status_code == 200


def test_each_tenant_sees_only_its_own_events_in_order_and_once(server: Server, users: Users) -> None:
    ann = users.register(who="ann")
    bob = users.register(who="bob")
    with live(server, ann, ["incidents"]) as ann_socket, live(server, bob, ["incidents"]) as bob_socket:
        started = time.monotonic()
        incident = create_incident(ann)
        move(ann, incident["id"], "acknowledged")
        move(ann, incident["id"], "investigating")
        events = receive(ann_socket, 3)
        assert time.monotonic() - started < DELIVERY_TIMEOUT
        assert [e["type"] for e in events] == ["incident.created", "incident.updated", "incident.updated"]
        assert [e["data"].get("state") for e in events] == ["detected", "acknowledged", "investigating"]
        assert {e["data"]["id"] for e in events} == {incident["id"]}
        positions = [e["position"] for e in events]
        assert positions == sorted(positions) and len(set(positions)) == 3
        assert events[0]["data"]["title"] == "High error rate" and events[0]["data"]["severity"] == "high"
        assert "timestamp" in events[0]
        nothing_more(bob_socket)
        own = create_incident(bob)
        [bobs] = receive(bob_socket, 1)
        assert bobs["data"]["id"] == own["id"]
        nothing_more(ann_socket)


def test_unsubscribed_channels_are_not_delivered(server: Server, users: Users) -> None:
    ann = users.register(who="ann")
    with live(server, ann, ["alerts"]) as socket:
        create_incident(ann)
        nothing_more(socket)


def test_a_client_resumes_with_since_without_gap_or_duplicate(server: Server, users: Users) -> None:
    ann = users.register(who="ann")
    with live(server, ann, ["incidents"]) as socket:
        first = create_incident(ann, "first")
        [created] = receive(socket, 1)
    resume_from = created["position"]
    move(ann, first["id"], "acknowledged")
    second = create_incident(ann, "second")
    with live(server, ann, ["incidents"], since=resume_from) as socket:
        move(ann, second["id"], "resolved")
        events = receive(socket, 3)
        nothing_more(socket)
    assert [(e["type"], e["data"]["id"]) for e in events] == [
        ("incident.updated", first["id"]), ("incident.created", second["id"]), ("incident.updated", second["id"])]
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions)) and positions[0] > resume_from


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_events_written_while_the_server_was_down_reach_a_resuming_client(backend: str, tmp_path: Path) -> None:
    with fresh_postgres_database() if backend == "postgres" else _no_database() as url:
        env = backend_env(backend, tmp_path / "var", url)
        server = start_server(backend, env, tmp_path / "first.log")
        try:
            with Users(server.api_url) as users:
                ann = users.register(who="ann")
                with live(server, ann, ["incidents"]) as socket:
                    incident = create_incident(ann)
                    [seen] = receive(socket, 1)
        finally:
            assert_stops_cleanly(server)
        server = start_server(backend, env, tmp_path / "second.log")
        try:
            with Users(server.api_url) as users:
                ann = users.login(ann.email)
                move(ann, incident["id"], "mitigated")
                with live(server, ann, ["incidents"], since=seen["position"]) as socket:
                    [update] = receive(socket, 1)
                    nothing_more(socket)
                assert update["data"] == {**update["data"], "id": incident["id"], "state": "mitigated"}
        finally:
            assert_stops_cleanly(server)


@contextmanager
def _no_database() -> Iterator[None]:
    yield None


def test_commands_succeed_while_nats_is_down_and_events_flow_when_it_is_back(tmp_path: Path) -> None:
    nats_port = free_port()
    with fresh_postgres_database() as url:
        env = backend_env("postgres", tmp_path / "var", url)
        env["COPILOT_NATS_URL"] = f"nats://127.0.0.1:{nats_port}"
        with own_nats(tmp_path / "nats", nats_port):
            server = start_server("postgres", env, tmp_path / "server.log")
        try:
            with Users(server.api_url) as users:
                ann = users.register(who="ann")
                incident = create_incident(ann)  # NATS is down: the command still succeeds
                move(ann, incident["id"], "acknowledged")
                with own_nats(tmp_path / "nats", nats_port):
                    # Resume from the start: nothing was lost while NATS was away.
                    events: list[dict[str, Any]] = []
                    deadline = time.monotonic() + 20
                    while len(events) < 2 and time.monotonic() < deadline:
                        try:
                            with live(server, ann, ["incidents"], since=0) as socket:
                                events = receive(socket, 2, timeout=3)
                        except (AssertionError, TimeoutError, ConnectionClosed):
                            time.sleep(0.5)
                    assert [e["type"] for e in events] == ["incident.created", "incident.updated"]
                    with live(server, ann, ["incidents"]) as socket:
                        move(ann, incident["id"], "resolved")
                        [live_event] = receive(socket, 1)
                        assert live_event["data"]["state"] == "resolved"
        finally:
            assert_stops_cleanly(server)


def closed_with(socket: ClientConnection, timeout: float = DELIVERY_TIMEOUT) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.recv(timeout=deadline - time.monotonic())
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            break
    return None


def test_a_removed_member_and_a_logged_out_session_lose_the_stream_at_once(server: Server, users: Users) -> None:
    ann = users.register(who="ann")
    invite = ann.client.post(f"/projects/{ann.project_id}/members", json={"email": f"bob-{ann.user_id[:8]}@x.io",
                                                                          "role": "member"}).json()
    bob = users.register(who="bob", email=invite["email"], invite_token=invite["invite_token"])
    with live(server, bob, ["incidents"]) as socket:
        assert ann.client.delete(f"/projects/{ann.project_id}/members/{bob.user_id}").status_code == 204
        assert closed_with(socket) == 4403
    with live(server, ann, ["incidents"]) as socket:
        assert ann.client.post("/auth/logout").status_code == 200
        assert closed_with(socket) == 4403
