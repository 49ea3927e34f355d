"""A project: a team's space for incidents, with members and their roles."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from copilot.domain.correlation import DEFAULT_MIN_SEVERITY, DEFAULT_WINDOW_MINUTES, validate_rule
from copilot.domain.errors import ConflictError, ForbiddenError, NotFoundError
from copilot.domain.roles import Role

__all__ = ["Project"]


class Project(Aggregate):
    @event("Created")
    def __init__(self, tenant_id: UUID, name: str, description: str, created_by: UUID) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.description = description
        self.members: dict[UUID, Role] = {created_by: Role.OWNER}
        self.deleted = False
        self.alert_min_severity = DEFAULT_MIN_SEVERITY
        self.alert_window_minutes = DEFAULT_WINDOW_MINUTES

    # -- who may do what ---------------------------------------------------------------

    def role_of(self, user_id: UUID) -> Role | None:
        return None if self.deleted else self.members.get(user_id)

    def require(self, actor: UUID, minimum: Role) -> Role:
        """The actor's role, if at least `minimum`; non-members learn nothing (404)."""
        role = self.role_of(actor)
        if role is None:
            raise NotFoundError("project not found")
        if not role.at_least(minimum):
            raise ForbiddenError(f"this needs the {minimum.value} role or higher; you are {role.value}")
        return role

    def _owners(self) -> int:
        return sum(1 for role in self.members.values() if role is Role.OWNER)

    def _require_may_manage(self, actor: UUID, target_roles: tuple[Role | None, ...]) -> None:
        actor_role = self.require(actor, Role.ADMIN)
        # Only owners make or unmake owners, so an admin cannot promote past themselves.
        if Role.OWNER in target_roles and actor_role is not Role.OWNER:
            raise ForbiddenError("only an owner can grant, change or remove the owner role")

    # -- commands ----------------------------------------------------------------------

    def update(self, actor: UUID, name: str | None, description: str | None) -> None:
        self.require(actor, Role.OWNER)
        new_name = self.name if name is None else name
        new_description = self.description if description is None else description
        if (new_name, new_description) != (self.name, self.description):
            self._update(name=new_name, description=new_description, by=actor)

    @event("Updated")
    def _update(self, name: str, description: str, by: UUID) -> None:
        self.name = name
        self.description = description

    def delete(self, actor: UUID) -> None:
        self.require(actor, Role.OWNER)
        self._delete(by=actor)

    @event("Deleted")
    def _delete(self, by: UUID) -> None:
        self.deleted = True

    def add_member(self, actor: UUID, user_id: UUID, role: Role) -> None:
        self._require_may_manage(actor, (role,))
        if user_id in self.members:
            raise ConflictError("that user is already a member of this project")
        self._add_member(user_id=user_id, role=role.value, by=actor)

    @event("MemberAdded")
    def _add_member(self, user_id: UUID, role: str, by: UUID) -> None:
        self.members[user_id] = Role(role)

    def change_member_role(self, actor: UUID, user_id: UUID, role: Role) -> bool:
        """Change a role; False when it already was that role (nothing to record)."""
        self.require(actor, Role.ADMIN)
        current = self.members.get(user_id)
        if current is None:
            raise NotFoundError("member not found")
        self._require_may_manage(actor, (current, role))
        if current is role:
            return False
        if current is Role.OWNER and self._owners() == 1:
            raise ConflictError("the last owner cannot be demoted; make someone else owner first")
        self._change_member_role(user_id=user_id, old_role=current.value, new_role=role.value, by=actor)
        return True

    @event("MemberRoleChanged")
    def _change_member_role(self, user_id: UUID, old_role: str, new_role: str, by: UUID) -> None:
        self.members[user_id] = Role(new_role)

    def remove_member(self, actor: UUID, user_id: UUID) -> None:
        if actor != user_id:  # anyone may leave; removing others takes an admin
            self.require(actor, Role.ADMIN)
        current = self.role_of(user_id)
        if current is None:
            raise NotFoundError("member not found")
        if actor != user_id:
            self._require_may_manage(actor, (current,))
        if current is Role.OWNER and self._owners() == 1:
            raise ConflictError("the last owner cannot be removed; make someone else owner first")
        self._remove_member(user_id=user_id, by=actor)

    @event("MemberRemoved")
    def _remove_member(self, user_id: UUID, by: UUID) -> None:
        del self.members[user_id]

    def change_correlation_rule(self, actor: UUID, min_severity: str, window_minutes: int) -> bool:
        """Which firing alerts open incidents (at or above `min_severity`), and how long they group."""
        self.require(actor, Role.ADMIN)
        validate_rule(min_severity, window_minutes)
        if (min_severity, window_minutes) == (self.alert_min_severity, self.alert_window_minutes):
            return False
        self._change_rule(min_severity=min_severity, window_minutes=window_minutes, by=actor)
        return True

    @event("CorrelationRuleChanged")
    def _change_rule(self, min_severity: str, window_minutes: int, by: UUID) -> None:
        self.alert_min_severity = min_severity
        self.alert_window_minutes = window_minutes
