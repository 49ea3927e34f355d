"""Property: whatever members try, a project keeps an owner and every recorded change was allowed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from copilot.commands.store import CopilotLog
from copilot.domain import ConflictError, DomainError, ForbiddenError, NotFoundError, Project, Role

USERS = tuple(uuid4() for _ in range(6))
FOUNDER = USERS[0]
users = st.sampled_from(USERS)
roles = st.sampled_from(list(Role))
Members = dict[UUID, Role]


# -- the rules as the design states them, written independently of the aggregate ------------


def owners(members: Members) -> int:
    return sum(1 for role in members.values() if role is Role.OWNER)


def expected_add(members: Members, actor: UUID, target: UUID, role: Role) -> type[DomainError] | Members:
    mine = members.get(actor)
    if mine is None:
        return NotFoundError
    if mine not in (Role.ADMIN, Role.OWNER) or (role is Role.OWNER and mine is not Role.OWNER):
        return ForbiddenError
    if target in members:
        return ConflictError
    return {**members, target: role}


def expected_change(members: Members, actor: UUID, target: UUID, role: Role) -> type[DomainError] | Members:
    mine = members.get(actor)
    if mine is None:
        return NotFoundError
    if mine not in (Role.ADMIN, Role.OWNER):
        return ForbiddenError
    if target not in members:
        return NotFoundError
    if Role.OWNER in (members[target], role) and mine is not Role.OWNER:
        return ForbiddenError
    if members[target] is Role.OWNER and role is not Role.OWNER and owners(members) == 1:
        return ConflictError
    return {**members, target: role}


def expected_remove(members: Members, actor: UUID, target: UUID) -> type[DomainError] | Members:
    mine = members.get(actor)
    if actor != target:
        if mine is None:
            return NotFoundError
        if mine not in (Role.ADMIN, Role.OWNER):
            return ForbiddenError
    if target not in members:
        return NotFoundError
    if actor != target and members[target] is Role.OWNER and mine is not Role.OWNER:
        return ForbiddenError
    if members[target] is Role.OWNER and owners(members) == 1:
        return ConflictError
    return {k: v for k, v in members.items() if k != target}


# -- what any recorded membership event must satisfy ------------------------------------------


def check_event_was_allowed(event: Any, before: Members) -> None:
    name = type(event).__name__
    actor_role = before.get(event.by)
    leaving = name == "MemberRemoved" and event.user_id == event.by
    assert leaving or actor_role in (Role.ADMIN, Role.OWNER), f"{name} by a {actor_role}"
    touches_owner = {
        "MemberAdded": lambda: event.role == Role.OWNER.value,
        "MemberRoleChanged": lambda: Role.OWNER.value in (event.old_role, event.new_role),
        "MemberRemoved": lambda: before.get(event.user_id) is Role.OWNER and not leaving,
    }[name]()
    if touches_owner:
        assert actor_role is Role.OWNER, f"{name} of an owner by a {actor_role}"


class ProjectMembership(RuleBasedStateMachine):
    """Random actors add, re-role, remove and leave; the aggregate is checked after every step."""

    @initialize(team=st.lists(st.none() | roles, min_size=len(USERS) - 1, max_size=len(USERS) - 1))
    def create(self, team: list[Role | None]) -> None:
        """The founder creates the project and adds a random team (None: not a member yet)."""
        self.project = Project(tenant_id=uuid4(), name="Production", description="", created_by=FOUNDER)
        self.log = CopilotLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.log.save(*self.project.collect_events())
        for user, role in zip(USERS[1:], team, strict=True):
            if role is not None:
                self.attempt(lambda u=user, r=role: self.project.add_member(FOUNDER, u, r),
                             expected_add(self.project.members, FOUNDER, user, role))

    def attempt(self, command: Callable[[], Any], expected: type[DomainError] | Members) -> None:
        before = dict(self.project.members)
        try:
            command()
        except DomainError as error:
            assert type(error) is expected, f"refused with {type(error).__name__}, expected {expected}"
            refused = True
        else:
            assert expected == self.project.members, f"got {self.project.members}, expected {expected}"
            refused = False
        events = list(self.project.collect_events())
        if refused:
            assert events == [] and self.project.members == before
        assert len(events) <= 1
        for event in events:
            check_event_was_allowed(event, before)
        self.log.save(*events)

    def someone(self, data: st.DataObject, label: str) -> UUID:
        """Half the time a current member, so commands get past "not found" often enough to matter."""
        return data.draw(st.one_of(st.sampled_from(sorted(self.project.members)), users), label=label)

    @rule(data=st.data(), role=roles)
    def add_member(self, data: st.DataObject, role: Role) -> None:
        actor, subject = self.someone(data, "actor"), data.draw(users, label="subject")
        expected = expected_add(self.project.members, actor, subject, role)
        self.attempt(lambda: self.project.add_member(actor, subject, role), expected)

    @rule(data=st.data(), role=roles)
    def change_role(self, data: st.DataObject, role: Role) -> None:
        actor, subject = self.someone(data, "actor"), self.someone(data, "subject")
        expected = expected_change(self.project.members, actor, subject, role)
        self.attempt(lambda: self.project.change_member_role(actor, subject, role), expected)

    @rule(data=st.data())
    def remove_member(self, data: st.DataObject) -> None:
        actor, subject = self.someone(data, "actor"), self.someone(data, "subject")
        expected = expected_remove(self.project.members, actor, subject)
        self.attempt(lambda: self.project.remove_member(actor, subject), expected)

    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        actor = self.someone(data, "actor")
        expected = expected_remove(self.project.members, actor, actor)
        self.attempt(lambda: self.project.remove_member(actor, actor), expected)

    @invariant()
    def at_least_one_owner_remains(self) -> None:
        assert owners(self.project.members) >= 1

    @invariant()
    def replaying_the_log_rebuilds_the_same_members(self) -> None:
        replayed = self.log.repository.get(self.project.id)
        assert replayed.members == self.project.members
        assert replayed.version == self.project.version

    def teardown(self) -> None:
        if hasattr(self, "log"):
            self.log.close()


ProjectMembership.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
test_membership_rules_hold_for_any_sequence_of_commands = ProjectMembership.TestCase
