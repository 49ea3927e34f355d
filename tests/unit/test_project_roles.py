"""Who may do what on a project: given a project, when a member acts, then these events (or this error)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest

from copilot.domain import ConflictError, ForbiddenError, NotFoundError, Project, Role

TENANT = uuid4()
OWNER, CO_OWNER, ADMIN, MEMBER, VIEWER, OUTSIDER, NEWCOMER = (uuid4() for _ in range(7))


def project_with(**members: Role) -> Project:
    """A project created by OWNER whose other members were added before the test (events collected)."""
    project = Project(tenant_id=TENANT, name="Production", description="", created_by=OWNER)
    people = {"co_owner": CO_OWNER, "admin": ADMIN, "member": MEMBER, "viewer": VIEWER}
    for name, role in members.items():
        project.add_member(OWNER, people[name], role)
    project.collect_events()
    return project


def team() -> Project:
    return project_with(admin=Role.ADMIN, member=Role.MEMBER, viewer=Role.VIEWER)


def recorded(project: Project) -> list[tuple[str, dict[str, Any]]]:
    """The pending events as (class name, payload without the bookkeeping fields)."""
    bookkeeping = {"originator_id", "originator_version", "timestamp", "originator_topic"}
    return [
        (type(e).__name__, {k: v for k, v in e.__dict__.items() if k not in bookkeeping})
        for e in project.collect_events()
    ]


def nothing_recorded(project: Project) -> bool:
    return list(project.collect_events()) == []


def roles(project: Project) -> dict[UUID, Role]:
    return dict(project.members)


# -- creating ----------------------------------------------------------------------------


def test_the_creator_becomes_the_only_owner() -> None:
    project = Project(tenant_id=TENANT, name="Production", description="db", created_by=OWNER)
    assert roles(project) == {OWNER: Role.OWNER}
    assert recorded(project) == [
        ("Created", {"tenant_id": TENANT, "name": "Production", "description": "db", "created_by": OWNER})
    ]


# -- adding members ----------------------------------------------------------------------


def test_an_admin_adds_a_member_with_the_role_given() -> None:
    project = team()
    project.add_member(ADMIN, NEWCOMER, Role.MEMBER)
    assert recorded(project) == [("MemberAdded", {"user_id": NEWCOMER, "role": "member", "by": ADMIN})]
    assert project.role_of(NEWCOMER) is Role.MEMBER


def test_an_owner_may_grant_the_owner_role() -> None:
    project = team()
    project.add_member(OWNER, NEWCOMER, Role.OWNER)
    assert recorded(project) == [("MemberAdded", {"user_id": NEWCOMER, "role": "owner", "by": OWNER})]


def test_a_member_cannot_add_members() -> None:
    project = team()
    with pytest.raises(ForbiddenError, match="admin"):
        project.add_member(MEMBER, NEWCOMER, Role.VIEWER)
    assert nothing_recorded(project)
    assert project.role_of(NEWCOMER) is None


def test_a_viewer_cannot_add_members() -> None:
    project = team()
    with pytest.raises(ForbiddenError, match="admin"):
        project.add_member(VIEWER, NEWCOMER, Role.MEMBER)
    assert nothing_recorded(project)
    assert project.role_of(NEWCOMER) is None


def test_an_admin_cannot_grant_the_owner_role() -> None:
    project = team()
    with pytest.raises(ForbiddenError, match="owner"):
        project.add_member(ADMIN, NEWCOMER, Role.OWNER)
    assert nothing_recorded(project)
    assert project.role_of(NEWCOMER) is None


def test_adding_someone_who_already_is_a_member_is_a_conflict() -> None:
    project = team()
    with pytest.raises(ConflictError):
        project.add_member(OWNER, MEMBER, Role.ADMIN)
    assert nothing_recorded(project)
    assert project.role_of(MEMBER) is Role.MEMBER


# -- changing roles -----------------------------------------------------------------------


def test_an_admin_promotes_a_viewer_and_the_event_carries_both_roles() -> None:
    project = team()
    assert project.change_member_role(ADMIN, VIEWER, Role.ADMIN) is True
    assert recorded(project) == [
        ("MemberRoleChanged", {"user_id": VIEWER, "old_role": "viewer", "new_role": "admin", "by": ADMIN})
    ]
    assert project.role_of(VIEWER) is Role.ADMIN


def test_changing_a_role_to_the_same_role_records_nothing() -> None:
    project = team()
    assert project.change_member_role(OWNER, MEMBER, Role.MEMBER) is False
    assert nothing_recorded(project)
    assert project.role_of(MEMBER) is Role.MEMBER


def test_confirming_the_last_owner_as_owner_is_not_refused() -> None:
    project = team()
    assert project.change_member_role(OWNER, OWNER, Role.OWNER) is False
    assert nothing_recorded(project)


def test_the_last_owner_cannot_be_demoted() -> None:
    project = team()
    with pytest.raises(ConflictError, match="last owner"):
        project.change_member_role(OWNER, OWNER, Role.ADMIN)
    assert nothing_recorded(project)
    assert project.role_of(OWNER) is Role.OWNER


def test_an_owner_may_step_down_when_another_owner_remains() -> None:
    project = project_with(co_owner=Role.OWNER)
    assert project.change_member_role(OWNER, OWNER, Role.ADMIN) is True
    assert recorded(project) == [
        ("MemberRoleChanged", {"user_id": OWNER, "old_role": "owner", "new_role": "admin", "by": OWNER})
    ]
    assert roles(project) == {OWNER: Role.ADMIN, CO_OWNER: Role.OWNER}


def test_an_admin_cannot_promote_anyone_to_owner() -> None:
    project = team()
    with pytest.raises(ForbiddenError, match="owner"):
        project.change_member_role(ADMIN, MEMBER, Role.OWNER)
    with pytest.raises(ForbiddenError, match="owner"):
        project.change_member_role(ADMIN, ADMIN, Role.OWNER)
    assert nothing_recorded(project)


def test_an_admin_cannot_demote_an_owner() -> None:
    project = project_with(co_owner=Role.OWNER, admin=Role.ADMIN)
    with pytest.raises(ForbiddenError, match="owner"):
        project.change_member_role(ADMIN, CO_OWNER, Role.VIEWER)
    assert nothing_recorded(project)
    assert project.role_of(CO_OWNER) is Role.OWNER


@pytest.mark.parametrize("actor", [MEMBER, VIEWER], ids=["member", "viewer"])
def test_members_and_viewers_cannot_change_roles_even_their_own(actor: UUID) -> None:
    project = team()
    with pytest.raises(ForbiddenError):
        project.change_member_role(actor, actor, Role.ADMIN)
    assert nothing_recorded(project)


def test_changing_the_role_of_a_non_member_is_not_found() -> None:
    project = team()
    with pytest.raises(NotFoundError, match="member"):
        project.change_member_role(OWNER, NEWCOMER, Role.MEMBER)
    assert nothing_recorded(project)


# -- removing and leaving ---------------------------------------------------------------


def test_an_admin_removes_a_member() -> None:
    project = team()
    project.remove_member(ADMIN, MEMBER)
    assert recorded(project) == [("MemberRemoved", {"user_id": MEMBER, "by": ADMIN})]
    assert project.role_of(MEMBER) is None


def test_a_member_cannot_remove_someone_else() -> None:
    project = team()
    with pytest.raises(ForbiddenError):
        project.remove_member(MEMBER, VIEWER)
    assert nothing_recorded(project)
    assert project.role_of(VIEWER) is Role.VIEWER


@pytest.mark.parametrize("leaver", [ADMIN, MEMBER, VIEWER], ids=["admin", "member", "viewer"])
def test_anyone_may_leave(leaver: UUID) -> None:
    project = team()
    project.remove_member(leaver, leaver)
    assert recorded(project) == [("MemberRemoved", {"user_id": leaver, "by": leaver})]
    assert project.role_of(leaver) is None


def test_an_owner_may_leave_when_another_owner_remains() -> None:
    project = project_with(co_owner=Role.OWNER)
    project.remove_member(OWNER, OWNER)
    assert recorded(project) == [("MemberRemoved", {"user_id": OWNER, "by": OWNER})]
    assert roles(project) == {CO_OWNER: Role.OWNER}


def test_the_last_owner_cannot_leave() -> None:
    project = team()
    with pytest.raises(ConflictError, match="last owner"):
        project.remove_member(OWNER, OWNER)
    assert nothing_recorded(project)
    assert project.role_of(OWNER) is Role.OWNER


def test_an_admin_cannot_remove_an_owner() -> None:
    project = project_with(co_owner=Role.OWNER, admin=Role.ADMIN)
    with pytest.raises(ForbiddenError, match="owner"):
        project.remove_member(ADMIN, CO_OWNER)
    assert nothing_recorded(project)
    assert project.role_of(CO_OWNER) is Role.OWNER


def test_an_owner_removes_another_owner() -> None:
    project = project_with(co_owner=Role.OWNER)
    project.remove_member(OWNER, CO_OWNER)
    assert recorded(project) == [("MemberRemoved", {"user_id": CO_OWNER, "by": OWNER})]


def test_removing_a_non_member_is_not_found() -> None:
    project = team()
    with pytest.raises(NotFoundError, match="member"):
        project.remove_member(ADMIN, NEWCOMER)
    assert nothing_recorded(project)


# -- updating and deleting ---------------------------------------------------------------


def test_an_owner_renames_the_project_and_the_description_is_kept() -> None:
    project = project_with()
    project.update(OWNER, name="Prod EU", description=None)
    assert recorded(project) == [("Updated", {"name": "Prod EU", "description": "", "by": OWNER})]
    assert (project.name, project.description) == ("Prod EU", "")


def test_an_update_that_changes_nothing_records_nothing() -> None:
    project = project_with()
    project.update(OWNER, name="Production", description=None)
    assert nothing_recorded(project)


@pytest.mark.parametrize("actor", [ADMIN, MEMBER, VIEWER], ids=["admin", "member", "viewer"])
def test_only_owners_update_or_delete_the_project(actor: UUID) -> None:
    project = team()
    with pytest.raises(ForbiddenError, match="owner"):
        project.update(actor, name="Renamed", description=None)
    with pytest.raises(ForbiddenError, match="owner"):
        project.delete(actor)
    assert nothing_recorded(project)
    assert project.deleted is False


# -- what outsiders learn ----------------------------------------------------------------


def every_command(project: Project, actor: UUID) -> Sequence[tuple[str, Any]]:
    return (
        ("require viewer", lambda: project.require(actor, Role.VIEWER)),
        ("update", lambda: project.update(actor, name="Mine now", description=None)),
        ("delete", lambda: project.delete(actor)),
        ("add member", lambda: project.add_member(actor, NEWCOMER, Role.VIEWER)),
        ("change role", lambda: project.change_member_role(actor, MEMBER, Role.ADMIN)),
        ("remove member", lambda: project.remove_member(actor, MEMBER)),
        ("leave", lambda: project.remove_member(actor, actor)),
    )


def test_non_members_get_not_found_not_forbidden() -> None:
    project = team()
    for name, command in every_command(project, OUTSIDER):
        with pytest.raises(NotFoundError) as raised:
            command()
        assert not isinstance(raised.value, ForbiddenError), name
    assert nothing_recorded(project)
    assert project.role_of(OUTSIDER) is None


def test_a_deleted_project_refuses_everything_with_not_found() -> None:
    project = team()
    project.delete(OWNER)
    assert recorded(project) == [("Deleted", {"by": OWNER})]
    for actor in (OWNER, ADMIN, MEMBER, VIEWER):
        assert project.role_of(actor) is None
        for name, command in every_command(project, actor):
            with pytest.raises(NotFoundError):
                command()
            assert nothing_recorded(project), (actor, name)
