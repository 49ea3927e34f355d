"""Authentication endpoints: register, login, logout, refresh, me, switch-project, ws-token."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import Provide

from copilot.api.context import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    Principal,
    blocking,
    principal_from_request,
    read_your_writes,
)
from copilot.api.schemas import (
    LoginBody,
    LoginRequest,
    ProjectSummary,
    RefreshRequest,
    RegisterBody,
    RegisterRequest,
    SwitchProjectRequest,
    TenantRead,
    UserRead,
    WsToken,
)
from copilot.api.security import CSRF_COOKIE, csrf_cookie, new_csrf_token, require_csrf_proof
from copilot.api.throttle import LoginThrottle
from copilot.bootstrap import Container
from copilot.commands.auth import LogIn, LogOut, RefreshSession, RegisterUser, SessionStarted, SwitchProject
from copilot.domain import UnauthorizedError
from copilot.security import TokenError
from copilot.security.tokens import ACCESS_TTL, REFRESH_TTL, WS_TTL

__all__ = ["AuthController"]

REFRESH_COOKIE_PATH = "/api/v1/auth"


def _client_address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    path = "/auth"
    tags = ["Authentication"]

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _cookies(container: Container, access: str, refresh: str, started: SessionStarted) -> list[Cookie]:
        secure = container.settings.cookie_secure
        csrf = new_csrf_token(container.settings.secret_key, started.session_id)
        return [
            csrf_cookie(csrf, max_age=int(REFRESH_TTL.total_seconds()), secure=secure),
            Cookie(key=ACCESS_COOKIE, value=access, max_age=int(ACCESS_TTL.total_seconds()), httponly=True,
                   samesite="lax", secure=secure, path="/"),
            Cookie(key=REFRESH_COOKIE, value=refresh, max_age=int(REFRESH_TTL.total_seconds()), httponly=True,
                   samesite="lax", secure=secure, path=REFRESH_COOKIE_PATH),
        ]

    @staticmethod
    def _tokens(container: Container, started: SessionStarted) -> tuple[str, str]:
        access, _ = container.tokens.issue(
            "access", user_id=started.user_id, tenant_id=started.tenant_id, session_id=started.session_id,
            project_id=started.project_id)
        refresh, _ = container.tokens.issue(
            "refresh", user_id=started.user_id, tenant_id=started.tenant_id, session_id=started.session_id,
            project_id=started.project_id, jti=started.refresh_id)
        return access, refresh

    @staticmethod
    def _user(container: Container, started: SessionStarted) -> UserRead:
        user = container.accounts.user(started.user_id)
        if user is None:  # only if the projection is lagging past the read-your-writes bound
            raise UnauthorizedError("account is not available yet; retry")
        role = container.projects.role(started.project_id, started.user_id) if started.project_id else None
        return UserRead(
            id=user["id"], email=user["email"], full_name=user["full_name"], tenant_id=user["tenant_id"],
            project_id=started.project_id if role else None, role=role,  # type: ignore[arg-type]
        )

    def _login_body(self, container: Container, started: SessionStarted) -> tuple[LoginBody, list[Cookie]]:
        access, refresh = self._tokens(container, started)
        projects = [
            ProjectSummary(id=row["id"], name=row["name"], role=row["role"])
            for row in container.projects.for_user(started.user_id)
        ]
        body = LoginBody(user=self._user(container, started), projects=projects, access_token=access)
        return body, self._cookies(container, access, refresh, started)

    async def _answer_login(self, container: Container, started: SessionStarted) -> Response[LoginBody]:
        await read_your_writes(container, started.position)
        body, cookies = await blocking(self._login_body, container, started)
        return Response(body, status_code=200, cookies=cookies)

    # -- endpoints -------------------------------------------------------------------------

    @post("/register", operation_id="register", status_code=200, summary="Register a user and tenant")
    async def register(self, data: RegisterRequest, container: Container) -> Response[RegisterBody]:
        cmd = RegisterUser(email=data.email, password=data.password, full_name=data.full_name,
                           tenant_name=data.tenant_name, invite_token=data.invite_token)
        started = await blocking(container.auth.register, cmd)
        await read_your_writes(container, started.position)

        def body() -> tuple[RegisterBody, list[Cookie]]:
            access, refresh = self._tokens(container, started)
            tenant = container.accounts.tenant(started.tenant_id)
            assert tenant is not None
            return (
                RegisterBody(
                    user=self._user(container, started),
                    tenant=TenantRead(id=tenant["id"], name=tenant["name"], slug=tenant["slug"]),
                    access_token=access,
                ),
                self._cookies(container, access, refresh, started),
            )

        payload, cookies = await blocking(body)
        return Response(payload, status_code=200, cookies=cookies)

    @post("/login", operation_id="login", status_code=200, summary="Log in and get tokens")
    async def login(
        self, request: Request[Any, Any, Any], data: LoginRequest, container: Container, login_throttle: LoginThrottle
    ) -> Response[LoginBody]:
        address = _client_address(request)
        login_throttle.check(data.email, address)
        try:
            started = await blocking(container.auth.log_in, LogIn(email=data.email, password=data.password))
        except UnauthorizedError:
            login_throttle.failed(data.email, address)
            raise
        login_throttle.succeeded(data.email, address)
        return await self._answer_login(container, started)

    @post("/refresh", operation_id="refresh", status_code=200, summary="Rotate the refresh token")
    async def refresh(
        self, request: Request[Any, Any, Any], container: Container, data: RefreshRequest | None = None
    ) -> Response[LoginBody]:
        token = (data.refresh_token if data else None) or request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise UnauthorizedError("no refresh token: send the refresh_token cookie or body field")
        try:
            claims = container.tokens.decode(token, "refresh")
        except TokenError as error:
            raise UnauthorizedError(str(error)) from None
        try:
            started = await blocking(container.auth.refresh,
                                     RefreshSession(session_id=claims.sid, refresh_id=claims.jti))
        except UnauthorizedError as refused:
            if refused.position is not None:  # the revocation must be visible before the 401 is
                await read_your_writes(container, refused.position)
                container.accounts.forget_session(claims.sid)
            raise
        return await self._answer_login(container, started)

    @post("/logout", operation_id="logout", status_code=200, summary="End the session")
    async def logout(self, principal: Principal, container: Container) -> Response[dict[str, bool]]:
        position = await blocking(container.auth.log_out, LogOut(session_id=principal.session_id))
        await read_your_writes(container, position)
        container.accounts.forget_session(principal.session_id)
        response: Response[dict[str, bool]] = Response({"logged_out": True}, status_code=200)
        response.delete_cookie(ACCESS_COOKIE, path="/")
        response.delete_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH)
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @get("/me", operation_id="me", summary="The current user, active project and role")
    async def me(self, principal: Principal, container: Container) -> UserRead:
        started = SessionStarted(user_id=principal.user_id, tenant_id=principal.tenant_id,
                                 project_id=principal.project_id, session_id=principal.session_id,
                                 refresh_id="", position=0)
        return await blocking(self._user, container, started)

    @post("/switch-project", operation_id="switchProject", status_code=200, summary="Switch the active project")
    async def switch_project(
        self, data: SwitchProjectRequest, principal: Principal, container: Container
    ) -> Response[LoginBody]:
        cmd = SwitchProject(session_id=principal.session_id, user_id=principal.user_id, project_id=data.project_id)
        started = await blocking(container.auth.switch_project, cmd)
        return await self._answer_login(container, started)

    @get("/ws-token", operation_id="wsToken", summary="A short-lived token for the WebSocket gateway")
    async def ws_token(self, principal: Principal, container: Container) -> WsToken:
        # The stream carries the token's project: only a current member may have it there.
        project_id = principal.project_id
        if project_id is not None and await container.projects.arole(project_id, principal.user_id) is None:
            project_id = None
        token, _ = container.tokens.issue(
            "ws", user_id=principal.user_id, tenant_id=principal.tenant_id,
            session_id=principal.session_id, project_id=project_id,
        )
        return WsToken(token=token, expires_in=int(WS_TTL.total_seconds()))


def principal_dependency() -> Provide:
    async def provide(request: Request[Any, Any, Any], container: Container) -> Principal:
        principal = await principal_from_request(request, container)
        require_csrf_proof(request, container.settings.secret_key, principal.session_id)
        return principal

    return Provide(provide)
