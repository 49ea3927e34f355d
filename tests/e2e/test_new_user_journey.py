"""A new team's first day, over HTTP against `copilot serve`, on SQLite and on PostgreSQL + NATS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.api import (
    LOGIN_BODY,
    MEMBER,
    PROJECT,
    REGISTER_BODY,
    USER,
    Account,
    Users,
    answer,
    assert_shape,
    refused,
    unique_email,
)


@dataclass
class Team:
    """An owner, a project "Payments" they created, and a teammate who joined it by invitation."""

    owner: Account
    teammate: Account
    project: dict[str, Any]
    invite_token: str

    @property
    def project_path(self) -> str:
        return f"/projects/{self.project['id']}"

    def member_path(self, who: Account) -> str:
        return f"{self.project_path}/members/{who.user_id}"


def invite(owner: Account, project_id: str, email: str, role: str = "member") -> dict[str, Any]:
    response = owner.client.post(f"/projects/{project_id}/members", json={"email": email, "role": role})
    return answer(response, 201, {**MEMBER, "invite_token": str})


@pytest.fixture
def team(users: Users) -> Team:
    owner = users.register(tenant="Acme Payments")
    project = answer(owner.client.post("/projects", json={"name": "Payments"}), 201, PROJECT)
    email = unique_email("teammate")
    token = invite(owner, project["id"], email)["invite_token"]
    teammate = users.register(who="teammate", email=email, invite_token=token)
    return Team(owner, teammate, project, token)


def project_ids(account: Account) -> list[str]:
    return [p["id"] for p in answer(account.client.get("/projects"), 200, [PROJECT])]


# -- registering and signing in ---------------------------------------------------------------


def test_registering_creates_a_tenant_and_a_production_project_owned_by_the_new_user(users: Users) -> None:
    client = users.anonymous()
    email = unique_email("John")
    response = client.post("/auth/register", json={
        "email": email, "password": "securepassword123", "full_name": "John Doe", "tenant_name": "Acme Corporation"})
    body = answer(response, 200, REGISTER_BODY)
    assert (body["user"]["email"], body["user"]["full_name"]) == (email.lower(), "John Doe")
    assert body["user"]["tenant_id"] == body["tenant"]["id"]
    assert body["tenant"]["name"] == "Acme Corporation"
    assert body["tenant"]["slug"].startswith("acme-corporation")
    assert body["user"]["role"] == "owner"
    assert {"access_token", "refresh_token"} <= set(response.cookies.keys())
    # The tokens are out of scripts' reach; only the CSRF token is readable, so the page can echo it.
    for cookie in response.headers.get_list("set-cookie"):
        assert ("httponly" in cookie.lower()) != cookie.startswith("csrf_token="), cookie

    client.headers["Authorization"] = f"Bearer {body['access_token']}"
    projects = answer(client.get("/projects"), 200, [PROJECT])
    assert [(p["id"], p["name"], p["role"]) for p in projects] == [
        (body["user"]["project_id"], "Production", "owner")]
    me = answer(client.get("/auth/me"), 200, USER)
    assert me == body["user"]


def test_logging_in_returns_the_user_their_active_project_and_their_projects(users: Users) -> None:
    registered = users.register()
    signed_in = users.login(registered.email.upper())
    body = signed_in.body
    assert_shape(body, LOGIN_BODY)
    assert body["user"]["id"] == registered.user_id
    assert body["user"]["project_id"] == registered.project_id
    assert body["user"]["role"] == "owner"
    assert body["projects"] == [{"id": registered.project_id, "name": "Production", "role": "owner"}]
    assert signed_in.token != registered.token


# -- projects and teammates -------------------------------------------------------------------


def test_a_created_project_is_owned_by_its_creator_and_listed(users: Users) -> None:
    owner = users.register()
    created = answer(owner.client.post("/projects", json={"name": "Payments", "description": "card flows"}),
                     201, PROJECT)
    assert (created["name"], created["description"], created["role"]) == ("Payments", "card flows", "owner")
    assert (created["tenant_id"], created["created_by"]) == (owner.tenant_id, owner.user_id)
    assert answer(owner.client.get(f"/projects/{created['id']}"), 200, PROJECT) == created
    assert project_ids(owner) == [owner.project_id, created["id"]]
    members = answer(owner.client.get(f"/projects/{created['id']}/members"), 200, [MEMBER])
    assert [(m["user_id"], m["role"], m["status"]) for m in members] == [(owner.user_id, "owner", "active")]


def test_inviting_a_new_email_adds_an_invited_member_and_returns_a_one_time_token(users: Users) -> None:
    owner = users.register()
    email = unique_email("Invitee")
    invited = invite(owner, owner.project_id, email)
    assert (invited["email"], invited["role"], invited["status"]) == (email.lower(), "member", "invited")
    assert invited["invite_token"]
    members = answer(owner.client.get(f"/projects/{owner.project_id}/members"), 200, [MEMBER])
    listed = next(m for m in members if m["user_id"] == invited["user_id"])
    assert listed["status"] == "invited"
    assert "invite_token" not in listed  # shown once, to the inviter, never again


def test_an_invited_teammate_registers_with_the_invite_token_and_sees_the_project(team: Team) -> None:
    body = team.teammate.body
    assert body["user"]["tenant_id"] == body["tenant"]["id"] == team.owner.tenant_id
    assert (body["user"]["project_id"], body["user"]["role"]) == (team.project["id"], "member")
    seen = answer(team.teammate.client.get("/projects"), 200, [PROJECT])
    assert [(p["id"], p["name"], p["role"]) for p in seen] == [(team.project["id"], "Payments", "member")]
    members = answer(team.owner.client.get(f"{team.project_path}/members"), 200, [MEMBER])
    joined = next(m for m in members if m["user_id"] == team.teammate.user_id)
    assert (joined["status"], joined["full_name"]) == ("active", "Teammate")


def test_an_invite_token_cannot_be_used_twice(team: Team, users: Users) -> None:
    again = users.anonymous().post("/auth/register", json={
        "email": team.teammate.email, "password": "another password", "full_name": "Mallory",
        "invite_token": team.invite_token})
    refused(again, 400, 409)
    users.login(team.teammate.email)  # the teammate's own password still works


def test_the_owner_changes_a_teammate_from_member_to_admin_to_viewer(team: Team) -> None:
    for role in ("admin", "viewer"):
        changed = answer(team.owner.client.patch(team.member_path(team.teammate), json={"role": role}), 200, MEMBER)
        assert (changed["user_id"], changed["role"]) == (team.teammate.user_id, role)
        assert answer(team.teammate.client.get(team.project_path), 200, PROJECT)["role"] == role
        assert answer(team.teammate.client.get("/auth/me"), 200, USER)["role"] == role


def test_a_viewer_reads_the_project_but_may_not_change_it(team: Team) -> None:
    answer(team.owner.client.patch(team.member_path(team.teammate), json={"role": "viewer"}), 200, MEMBER)
    viewer = team.teammate.client
    assert answer(viewer.get(team.project_path), 200, PROJECT)["name"] == "Payments"
    answer(viewer.get(f"{team.project_path}/members"), 200, [MEMBER])

    refused(viewer.patch(team.project_path, json={"name": "Viewer was here"}), 403)
    refused(viewer.delete(team.project_path), 403)
    refused(viewer.post(f"{team.project_path}/members", json={"email": unique_email()}), 403)
    refused(viewer.patch(team.member_path(team.owner), json={"role": "viewer"}), 403)
    assert answer(team.owner.client.get(team.project_path), 200, PROJECT) == team.project


def test_switching_project_makes_it_the_active_project_of_the_new_tokens(team: Team) -> None:
    owner = team.owner
    assert owner.project_id != team.project["id"]
    body = answer(owner.client.post("/auth/switch-project", json={"project_id": team.project["id"]}), 200,
                  LOGIN_BODY)
    assert (body["user"]["project_id"], body["user"]["role"]) == (team.project["id"], "owner")
    assert {p["name"] for p in body["projects"]} == {"Production", "Payments"}
    owner.use_token(body["access_token"])
    me = answer(owner.client.get("/auth/me"), 200, USER)
    assert (me["project_id"], me["role"]) == (team.project["id"], "owner")


def test_switching_to_a_project_the_user_is_not_in_is_404(team: Team) -> None:
    refused(team.teammate.client.post("/auth/switch-project", json={"project_id": team.owner.project_id}), 404)


def test_the_refresh_cookie_rotates_and_gives_a_working_access_token(users: Users) -> None:
    account = users.login(users.register().email)
    first_refresh = account.client.cookies.get("refresh_token", path="/api/v1/auth")
    assert first_refresh

    del account.client.headers["Authorization"]
    response = account.client.post("/auth/refresh")  # no body: the refresh_token cookie alone
    body = answer(response, 200, LOGIN_BODY)
    assert body["user"]["id"] == account.user_id
    assert body["access_token"] != account.token
    assert account.client.cookies.get("refresh_token", path="/api/v1/auth") not in (None, first_refresh)
    fresh = {"Authorization": f"Bearer {body['access_token']}"}
    assert answer(account.client.get("/auth/me", headers=fresh), 200, USER)["id"] == account.user_id


def test_after_logout_the_access_and_refresh_tokens_are_401(users: Users) -> None:
    account = users.login(users.register().email)
    refresh_token = account.client.cookies.get("refresh_token", path="/api/v1/auth")

    response = account.client.post("/auth/logout")
    assert answer(response, 200) == {"logged_out": True}
    assert not account.client.cookies.get("refresh_token", path="/api/v1/auth")
    assert not account.client.cookies.get("access_token")

    refused(account.client.get("/auth/me"), 401)
    refused(account.client.get("/projects"), 401)
    anonymous = users.anonymous()
    refused(anonymous.post("/auth/refresh", json={"refresh_token": refresh_token}), 401)
    anonymous.cookies.set("refresh_token", str(refresh_token), path="/api/v1/auth")
    refused(anonymous.post("/auth/refresh"), 401)
    users.login(account.email)  # signing in again still works


# -- membership rules -------------------------------------------------------------------------


def test_the_last_owner_can_be_neither_demoted_nor_removed(team: Team) -> None:
    owner = team.owner
    assert "owner" in refused(owner.client.patch(team.member_path(owner), json={"role": "admin"}), 409)
    assert "owner" in refused(owner.client.delete(team.member_path(owner)), 409)
    assert answer(owner.client.get(team.project_path), 200, PROJECT)["role"] == "owner"

    # With a second owner, the first may step down.
    answer(owner.client.patch(team.member_path(team.teammate), json={"role": "owner"}), 200, MEMBER)
    assert answer(owner.client.patch(team.member_path(owner), json={"role": "admin"}), 200, MEMBER)["role"] == "admin"


def test_a_removed_member_loses_the_project_at_once(team: Team) -> None:
    answer(team.owner.client.delete(team.member_path(team.teammate)), 204)
    refused(team.teammate.client.get(team.project_path), 404)
    refused(team.teammate.client.get(f"{team.project_path}/members"), 404)
    assert team.project["id"] not in project_ids(team.teammate)
    members = answer(team.owner.client.get(f"{team.project_path}/members"), 200, [MEMBER])
    assert [m["user_id"] for m in members] == [team.owner.user_id]


def test_a_deleted_project_is_gone_from_lists_and_reads(team: Team, users: Users) -> None:
    answer(team.owner.client.delete(team.project_path), 204)
    for account in (team.owner, team.teammate):
        refused(account.client.get(team.project_path), 404)
        refused(account.client.get(f"{team.project_path}/members"), 404)
        assert team.project["id"] not in project_ids(account)
    refused(team.owner.client.patch(team.project_path, json={"name": "Back from the dead"}), 404)
    refused(team.owner.client.delete(team.project_path), 404)
    assert [p["name"] for p in users.login(team.owner.email).body["projects"]] == ["Production"]


def test_a_user_of_another_tenant_gets_404_on_every_project_route(team: Team, users: Users) -> None:
    outsider = users.register(who="outsider").client
    path, member = team.project_path, team.member_path(team.teammate)
    attempts = [
        outsider.get(path),
        outsider.patch(path, json={"name": "Pwned"}),
        outsider.delete(path),
        outsider.get(f"{path}/members"),
        outsider.post(f"{path}/members", json={"email": unique_email("spy"), "role": "owner"}),
        outsider.patch(member, json={"role": "viewer"}),
        outsider.delete(member),
        outsider.post("/auth/switch-project", json={"project_id": team.project["id"]}),
    ]
    for response in attempts:
        refused(response, 404)
    assert answer(team.owner.client.get(path), 200, PROJECT) == team.project
    members = answer(team.owner.client.get(f"{path}/members"), 200, [MEMBER])
    assert {(m["user_id"], m["role"]) for m in members} == {
        (team.owner.user_id, "owner"), (team.teammate.user_id, "member")}
