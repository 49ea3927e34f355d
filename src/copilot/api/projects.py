"""Project and member endpoints: translate, delegate to commands, read the views."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Response, delete, get, patch, post

from copilot.api.context import Principal, blocking, read_your_writes
from copilot.api.schemas import (
    MemberCreate,
    MemberRead,
    MemberRoleUpdate,
    ProjectCreate,
    ProjectRead,
    ProjectUpdate,
)
from copilot.bootstrap import Container
from copilot.commands.projects import (
    AddMember,
    ChangeMemberRole,
    CreateProject,
    DeleteProject,
    RemoveMember,
    UpdateProject,
)
from copilot.domain import NotFoundError, Role

__all__ = ["ProjectsController"]


def _project(row: dict[str, Any]) -> ProjectRead:
    return ProjectRead(
        id=row["id"], tenant_id=row["tenant_id"], name=row["name"], description=row["description"],
        role=row["role"], created_by=row["created_by"], created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _member(row: dict[str, Any], invite_token: str | None = None) -> MemberRead:
    return MemberRead(
        user_id=row["user_id"], email=row["email"], full_name=row["full_name"], role=row["role"],
        status=row["status"], added_at=row["added_at"], invite_token=invite_token,
    )


class ProjectsController(Controller):
    path = "/projects"
    tags = ["Projects"]

    @staticmethod
    async def _visible(container: Container, project_id: UUID, principal: Principal) -> dict[str, Any]:
        row = await blocking(container.projects.visible, project_id, principal.user_id)
        if row is None:
            raise NotFoundError("project not found")
        return row

    @get("/", operation_id="listProjects", summary="Projects the caller belongs to")
    async def list_projects(self, principal: Principal, container: Container) -> list[ProjectRead]:
        rows = await blocking(container.projects.for_user, principal.user_id)
        return [_project(row) for row in rows]

    @post("/", operation_id="createProject", summary="Create a project (the caller becomes owner)")
    async def create_project(self, data: ProjectCreate, principal: Principal, container: Container) -> ProjectRead:
        cmd = CreateProject(actor=principal.user_id, tenant_id=principal.tenant_id, name=data.name,
                            description=data.description)
        project_id, position = await blocking(container.project_commands.create, cmd)
        await read_your_writes(container, position)
        return _project(await self._visible(container, project_id, principal))

    @get("/{project_id:uuid}", operation_id="getProject", summary="A project and the caller's role")
    async def get_project(self, project_id: UUID, principal: Principal, container: Container) -> ProjectRead:
        return _project(await self._visible(container, project_id, principal))

    @patch("/{project_id:uuid}", operation_id="updateProject", summary="Rename or describe (owner)")
    async def update_project(
        self, project_id: UUID, data: ProjectUpdate, principal: Principal, container: Container
    ) -> ProjectRead:
        cmd = UpdateProject(actor=principal.user_id, project_id=project_id, name=data.name,
                            description=data.description)
        await read_your_writes(container, await blocking(container.project_commands.update, cmd))
        return _project(await self._visible(container, project_id, principal))

    @delete("/{project_id:uuid}", operation_id="deleteProject", summary="Delete a project (owner)")
    async def delete_project(self, project_id: UUID, principal: Principal, container: Container) -> None:
        cmd = DeleteProject(actor=principal.user_id, project_id=project_id)
        await read_your_writes(container, await blocking(container.project_commands.delete, cmd))
        container.projects.forget_roles()

    @get("/{project_id:uuid}/members", operation_id="listMembers", summary="Members and their roles")
    async def list_members(self, project_id: UUID, principal: Principal, container: Container) -> list[MemberRead]:
        await self._visible(container, project_id, principal)
        rows = await blocking(container.projects.members, project_id)
        return [_member(row) for row in rows]

    @post("/{project_id:uuid}/members", operation_id="addMember", summary="Add or invite a member (admin)")
    async def add_member(
        self, project_id: UUID, data: MemberCreate, principal: Principal, container: Container
    ) -> Response[MemberRead]:
        cmd = AddMember(actor=principal.user_id, project_id=project_id, email=data.email, role=Role(data.role))
        added = await blocking(container.project_commands.add_member, cmd)
        await read_your_writes(container, added.position)
        row = await blocking(container.projects.member, project_id, added.user_id)
        if row is None:
            raise NotFoundError("member not found")
        return Response(_member(row, added.invite_token), status_code=201)

    @patch("/{project_id:uuid}/members/{user_id:uuid}", operation_id="updateMember",
           summary="Change a member's role (admin)")
    async def update_member(
        self, project_id: UUID, user_id: UUID, data: MemberRoleUpdate, principal: Principal, container: Container
    ) -> MemberRead:
        cmd = ChangeMemberRole(actor=principal.user_id, project_id=project_id, user_id=user_id,
                               role=Role(data.role))
        await read_your_writes(container, await blocking(container.project_commands.change_member_role, cmd))
        container.projects.forget_roles()
        row = await blocking(container.projects.member, project_id, user_id)
        if row is None:
            raise NotFoundError("member not found")
        return _member(row)

    @delete("/{project_id:uuid}/members/{user_id:uuid}", operation_id="removeMember",
            summary="Remove a member (admin; anyone may leave)")
    async def remove_member(
        self, project_id: UUID, user_id: UUID, principal: Principal, container: Container
    ) -> None:
        cmd = RemoveMember(actor=principal.user_id, project_id=project_id, user_id=user_id)
        await read_your_writes(container, await blocking(container.project_commands.remove_member, cmd))
        container.projects.forget_roles()
