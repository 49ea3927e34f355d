"""Isolation over the real API and stream: nobody sees or touches a project they are not a member of (404)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from copilot.api.app import create_api_app
from copilot.bootstrap import Container, build_container
from copilot.settings import load_settings
from copilot.stream import Gateway, InProcessBus, LogReader
from tests.conftest import settings_env
from tests.gateway_server import running_gateway
from tests.integration.conftest import Account, register

API = "/api/v1"
ROLES = ("owner", "admin", "member", "viewer")


@contextmanager
def fresh_api(root: Path) -> Iterator[tuple[TestClient[Any], Container]]:
    """A whole server on its own SQLite file: one per example, so examples never see each other."""
    var_dir = Path(tempfile.mkdtemp(dir=root)) / "var"
    # Each user sends a few hundred requests per example; the per-minute budget is not under test here.
    container = build_container(load_settings(settings_env("sqlite", var_dir, COPILOT_RATE_LIMIT_PER_MINUTE="100000")))
    assert container.runner is not None
    container.runner.start()
    try:
        with TestClient(create_api_app(container)) as client:
            yield client, container
    finally:
        container.close()


# -- what happens, drawn by hypothesis ------------------------------------------------------

invitee_plans = st.fixed_dictionaries({
    "project": st.integers(0, 2),  # which of the tenant's projects the invitation is for (modulo)
    "role": st.sampled_from(ROLES),
    "also": st.lists(st.tuples(st.integers(0, 2), st.sampled_from(ROLES)), max_size=2),
    "leaves_invited_project": st.booleans(),
})
tenant_plans = st.fixed_dictionaries({
    "extra_projects": st.integers(0, 2),
    "invitees": st.lists(invitee_plans, max_size=2),
    "deleted_project": st.none() | st.integers(0, 2),
})


@dataclass
class World:
    """What the test built, and who should see what."""

    users: list[Account] = field(default_factory=list)
    projects: dict[str, str] = field(default_factory=dict)  # project id -> tenant id
    creators: dict[str, Account] = field(default_factory=dict)  # project id -> its creator
    roles: dict[str, dict[str, str]] = field(default_factory=dict)  # user id -> {project id: role}

    def grant(self, user: Account, project_id: str, role: str) -> None:
        self.roles.setdefault(user.user_id, {})[project_id] = role


def build_world(client: TestClient[Any], tenants: list[dict[str, Any]]) -> World:
    world = World()
    for t, plan in enumerate(tenants):
        owner = register(client, f"owner@t{t}.example", tenant=f"Tenant {t}")
        world.users.append(owner)
        project_ids = [owner.project_id]
        for n in range(plan["extra_projects"]):
            created = client.post(f"{API}/projects", json={"name": f"P{n}"}, headers=owner.headers)
            assert created.status_code == 201, created.text
            project_ids.append(created.json()["id"])
        for project_id in project_ids:
            world.projects[project_id] = owner.tenant_id
            world.creators[project_id] = owner
            world.grant(owner, project_id, "owner")

        for i, invitee in enumerate(plan["invitees"]):
            email = f"user{i}@t{t}.example"
            invited_to = project_ids[invitee["project"] % len(project_ids)]
            added = client.post(f"{API}/projects/{invited_to}/members", headers=owner.headers,
                                json={"email": email, "role": invitee["role"]})
            assert added.status_code == 201, added.text
            user = register(client, email, invite_token=added.json()["invite_token"])
            assert user.tenant_id == owner.tenant_id
            world.users.append(user)
            world.grant(user, invited_to, invitee["role"])
            for index, role in invitee["also"]:
                project_id = project_ids[index % len(project_ids)]
                if project_id in world.roles[user.user_id]:
                    continue
                response = client.post(f"{API}/projects/{project_id}/members", headers=owner.headers,
                                        json={"email": email, "role": role})
                assert response.status_code == 201, response.text
                assert response.json().get("invite_token") is None  # only new emails get one
                world.grant(user, project_id, role)
            if invitee["leaves_invited_project"]:
                left = client.delete(f"{API}/projects/{invited_to}/members/{user.user_id}", headers=user.headers)
                assert left.status_code == 204, left.text
                del world.roles[user.user_id][invited_to]

        if plan["deleted_project"] is not None:
            doomed = project_ids[plan["deleted_project"] % len(project_ids)]
            deleted = client.delete(f"{API}/projects/{doomed}", headers=owner.headers)
            assert deleted.status_code == 204, deleted.text
            for granted in world.roles.values():
                granted.pop(doomed, None)
    return world


def assert_sees_exactly_their_projects(client: TestClient[Any], world: World, user: Account) -> None:
    expected = world.roles.get(user.user_id, {})
    listed = client.get(f"{API}/projects", headers=user.headers)
    assert listed.status_code == 200, listed.text
    assert {p["id"]: p["role"] for p in listed.json()} == expected
    assert {p["tenant_id"] for p in listed.json()} <= {user.tenant_id}
    for project_id, role in expected.items():
        shown = client.get(f"{API}/projects/{project_id}", headers=user.headers)
        assert shown.status_code == 200, shown.text
        assert shown.json()["role"] == role
        members = client.get(f"{API}/projects/{project_id}/members", headers=user.headers)
        assert members.status_code == 200, members.text
        tenant_users = {u.user_id for u in world.users if u.tenant_id == user.tenant_id}
        assert {m["user_id"] for m in members.json()} <= tenant_users


def assert_outsider_learns_and_changes_nothing(
    client: TestClient[Any], container: Container, world: World, user: Account, project_id: str
) -> None:
    creator = world.creators[project_id]
    head = container.store.head()
    base = f"{API}/projects/{project_id}"
    attempts = {
        "get project": client.get(base, headers=user.headers),
        "list members": client.get(f"{base}/members", headers=user.headers),
        "update project": client.patch(base, json={"name": "Mine now"}, headers=user.headers),
        "delete project": client.delete(base, headers=user.headers),
        "add a new email": client.post(f"{base}/members", headers=user.headers,
                                       json={"email": "intruder@elsewhere.example", "role": "admin"}),
        "add themselves": client.post(f"{base}/members", headers=user.headers,
                                      json={"email": user.email, "role": "owner"}),
        "demote the creator": client.patch(f"{base}/members/{creator.user_id}", json={"role": "viewer"},
                                           headers=user.headers),
        "remove the creator": client.delete(f"{base}/members/{creator.user_id}", headers=user.headers),
        "leave": client.delete(f"{base}/members/{user.user_id}", headers=user.headers),
    }
    statuses = {name: response.status_code for name, response in attempts.items()}
    assert statuses == dict.fromkeys(attempts, 404), (user.email, project_id, statuses)
    assert all("detail" in response.json() for response in attempts.values())
    assert container.store.head() == head, f"{user.email} wrote to {project_id}"


# No explain phase: each example runs a whole server, and explaining a failure re-runs it a hundred times.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
@given(tenants=st.lists(tenant_plans, min_size=2, max_size=3))
def test_users_see_and_touch_only_the_projects_they_belong_to(tmp_path: Path, tenants: list[dict[str, Any]]) -> None:
    with fresh_api(tmp_path) as (client, container):
        world = build_world(client, tenants)
        for user in world.users:
            assert_sees_exactly_their_projects(client, world, user)
            mine = world.roles.get(user.user_id, {})
            for project_id in world.projects:
                if project_id not in mine:
                    assert_outsider_learns_and_changes_nothing(client, container, world, user, project_id)


# -- the live stream ---------------------------------------------------------------------------


@contextmanager
def embedded_gateway(container: Container) -> Iterator[str]:
    """The WebSocket gateway as embedded mode runs it (an in-process bus that replays from the log),
    served on a loopback port; yields its URL."""
    reader = LogReader(container.store)

    async def replay_from_log(tenant_id: Any, project_id: Any, since: int) -> Any:
        return await asyncio.to_thread(reader.replay, tenant_id, project_id, since)

    with running_gateway(Gateway(container.tokens, InProcessBus(replay_from_log))) as served:
        yield served.url


def incident_titles_streamed_to(api: TestClient[Any], gateway: str, user: Account) -> list[str]:
    """Titles of the incident events a user's dashboard receives when it asks for everything (since 0)."""
    issued = api.get(f"{API}/auth/ws-token", headers=user.headers)
    if issued.status_code != 200:
        return []
    titles: list[str] = []
    with connect(gateway, open_timeout=5) as ws:
        try:
            ws.send(json.dumps({"type": "connect", "token": issued.json()["token"], "tenantId": user.tenant_id}))
            if json.loads(ws.recv(timeout=5))["type"] != "connected":
                return []
            ws.send(json.dumps({"type": "subscribe", "channels": ["incidents"], "since": 0}))
            while True:
                message = json.loads(ws.recv(timeout=1))
                if message["type"].startswith("incident."):
                    titles.append(message["data"]["title"])
        except (TimeoutError, ConnectionClosed):
            return titles


def test_a_member_removed_from_their_active_project_no_longer_receives_its_live_stream(tmp_path: Path) -> None:
    with fresh_api(tmp_path) as (client, container), embedded_gateway(container) as gateway:
        ann = register(client, "ann@acme.example")
        invited = client.post(f"{API}/projects/{ann.project_id}/members", headers=ann.headers,
                              json={"email": "bob@acme.example", "role": "member"})
        bob = register(client, "bob@acme.example", invite_token=invited.json()["invite_token"])
        assert bob.project_id == ann.project_id  # the invitation made it bob's active project
        removed = client.delete(f"{API}/projects/{ann.project_id}/members/{bob.user_id}", headers=ann.headers)
        assert removed.status_code == 204
        created = client.post(f"{API}/incidents", headers=ann.headers,
                              json={"title": "Payments down after bob left", "service_name": "payments",
                                    "severity": "critical"})
        assert created.status_code == 200, created.text
        # Over HTTP bob is an outsider now...
        assert client.get(f"{API}/projects/{ann.project_id}", headers=bob.headers).status_code == 404
        assert client.get(f"{API}/incidents", headers=bob.headers).status_code == 404

        # ...and the stream must agree: the owner's dashboard gets the incident, bob's does not.
        assert incident_titles_streamed_to(client, gateway, ann) == ["Payments down after bob left"]
        assert incident_titles_streamed_to(client, gateway, bob) == []
