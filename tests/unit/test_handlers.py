"""Command handlers (load → decide → append) against an in-memory event store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate

from copilot.commands.auth import AuthHandlers, LogIn, RefreshSession, RegisterUser, SessionStarted
from copilot.commands.projects import AddMember, ChangeMemberRole, CreateProject, ProjectHandlers
from copilot.commands.store import ConcurrentWriteError, CopilotLog, EventStore, with_retries
from copilot.domain import (
    ConflictError,
    EmailIndex,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    Project,
    Role,
    Session,
    Tenant,
    UnauthorizedError,
    User,
)
from copilot.security import PasswordHasher

A = TypeVar("A", bound=Aggregate)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def in_memory_app() -> CopilotLog:
    return CopilotLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


class FirstProjects:
    """Stands in for the read-model query "the user's first project" (no read model runs here)."""

    def __init__(self) -> None:
        self.by_user: dict[UUID, UUID] = {}

    def __call__(self, user_id: UUID) -> UUID | None:
        return self.by_user.get(user_id)


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture
def store() -> Iterator[EventStore]:
    built = EventStore(in_memory_app())
    yield built
    built.close()


@pytest.fixture
def first_projects() -> FirstProjects:
    return FirstProjects()


@pytest.fixture
def auth(store: EventStore, hasher: PasswordHasher, first_projects: FirstProjects) -> AuthHandlers:
    return AuthHandlers(store, hasher, first_projects, clock=lambda: T0)


@pytest.fixture
def projects(store: EventStore) -> ProjectHandlers:
    return ProjectHandlers(store, clock=lambda: T0)


def register(auth: AuthHandlers, email: str, tenant: str = "Acme") -> SessionStarted:
    return auth.register(RegisterUser(email=email, password=PASSWORD, full_name="Ann", tenant_name=tenant))


def topics(store: EventStore) -> list[str]:
    return [n.topic.rsplit(":", 1)[-1] for n in store.recorder.select_notifications(start=1, limit=1000)]


# -- register ------------------------------------------------------------------------------


def test_register_appends_tenant_user_email_claim_project_and_session_in_one_append(
    store: EventStore, auth: AuthHandlers
) -> None:
    appends: list[int] = []
    store.on_append(appends.append)

    started = auth.register(RegisterUser(email=" Ann@Acme.IO", password=PASSWORD, full_name="Ann Lee",
                                         tenant_name="Acme Corporation"))

    assert appends == [6] == [started.position] == [store.head()]
    assert sorted(topics(store)) == sorted([
        "EmailIndex.Claimed", "TenantSlugIndex.Claimed", "Tenant.Registered", "User.Registered",
        "Project.Created", "Session.Started",
    ])
    user = store.get(User, started.user_id)
    assert (user.email, user.full_name, user.tenant_id) == ("ann@acme.io", "Ann Lee", started.tenant_id)
    assert user.password_hash != PASSWORD and not user.is_pending_invite
    tenant = store.get(Tenant, started.tenant_id)
    assert (tenant.name, tenant.slug, tenant.registered_by) == ("Acme Corporation", "acme-corporation", user.id)
    assert store.get(EmailIndex, EmailIndex.create_id("ANN@acme.io")).user_id == user.id
    project = store.get(Project, started.project_id)
    assert (project.name, project.tenant_id, project.members) == ("Production", tenant.id, {user.id: Role.OWNER})
    session = store.get(Session, started.session_id)
    assert (session.user_id, session.project_id, session.refresh_id) == (user.id, project.id, started.refresh_id)
    assert session.expires_at == T0 + timedelta(days=7)


def test_a_duplicate_email_is_a_conflict_whatever_its_case_and_appends_nothing(
    store: EventStore, auth: AuthHandlers
) -> None:
    register(auth, "ann@acme.io")
    head = store.head()
    with pytest.raises(ConflictError, match="email"):
        register(auth, "  ANN@acme.io", tenant="Other")
    assert store.head() == head


def test_a_second_tenant_with_the_same_name_gets_the_next_slug(store: EventStore, auth: AuthHandlers) -> None:
    register(auth, "ann@acme.io", tenant="Acme")
    second = register(auth, "bob@acme.io", tenant="ACME!")
    assert store.get(Tenant, second.tenant_id).slug == "acme-2"


def test_register_without_tenant_name_or_invite_token_is_invalid(store: EventStore, auth: AuthHandlers) -> None:
    with pytest.raises(InvalidInputError, match="tenant_name"):
        auth.register(RegisterUser(email="ann@acme.io", password=PASSWORD, full_name="Ann"))
    assert store.head() == 0


# -- invitations -----------------------------------------------------------------------------


def test_an_invited_email_registers_with_its_token_into_the_inviting_project(
    store: EventStore, auth: AuthHandlers, projects: ProjectHandlers
) -> None:
    owner = register(auth, "ann@acme.io")
    added = projects.add_member(AddMember(actor=owner.user_id, project_id=owner.project_id,
                                          email="Bob@Acme.io", role=Role.ADMIN))
    assert added.invite_token is not None and added.invite_token.startswith("inv_")
    invitee = store.get(User, added.user_id)
    assert invitee.is_pending_invite and invitee.tenant_id == owner.tenant_id
    assert store.get(Project, owner.project_id).role_of(added.user_id) is Role.ADMIN

    started = auth.register(RegisterUser(email="bob@acme.io", password=PASSWORD, full_name="Bob",
                                         invite_token=added.invite_token))

    assert (started.user_id, started.tenant_id, started.project_id) == (
        added.user_id, owner.tenant_id, owner.project_id)
    bob = store.get(User, added.user_id)
    assert (bob.full_name, bob.is_pending_invite) == ("Bob", False)
    assert store.get(Session, started.session_id).user_id == bob.id


def test_a_wrong_invite_token_is_refused_and_appends_nothing(
    store: EventStore, auth: AuthHandlers, projects: ProjectHandlers
) -> None:
    owner = register(auth, "ann@acme.io")
    added = projects.add_member(AddMember(actor=owner.user_id, project_id=owner.project_id,
                                          email="bob@acme.io", role=Role.MEMBER))
    head = store.head()
    with pytest.raises(InvalidInputError, match="invite_token"):
        auth.register(RegisterUser(email="bob@acme.io", password=PASSWORD, full_name="Bob",
                                   invite_token=f"{added.invite_token}x"))
    with pytest.raises(InvalidInputError, match="invite_token"):
        auth.register(RegisterUser(email="carol@acme.io", password=PASSWORD, full_name="Carol",
                                   invite_token=added.invite_token))
    assert store.head() == head
    assert store.get(User, added.user_id).is_pending_invite


def test_an_invite_token_expires_after_seven_days(store: EventStore, hasher: PasswordHasher) -> None:
    now = [T0]
    auth = AuthHandlers(store, hasher, FirstProjects(), clock=lambda: now[0])
    projects = ProjectHandlers(store, clock=lambda: now[0])
    owner = register(auth, "ann@acme.io")
    added = projects.add_member(AddMember(actor=owner.user_id, project_id=owner.project_id,
                                          email="bob@acme.io", role=Role.MEMBER))
    now[0] = T0 + timedelta(days=7)
    with pytest.raises(InvalidInputError, match="expired"):
        auth.register(RegisterUser(email="bob@acme.io", password=PASSWORD, full_name="Bob",
                                   invite_token=added.invite_token))
    assert store.get(User, added.user_id).is_pending_invite


def test_inviting_a_pending_invitee_again_replaces_their_token(
    store: EventStore, auth: AuthHandlers, projects: ProjectHandlers
) -> None:
    owner = register(auth, "ann@acme.io")
    staging, _ = projects.create(CreateProject(actor=owner.user_id, tenant_id=owner.tenant_id, name="Staging"))
    first = projects.add_member(AddMember(actor=owner.user_id, project_id=owner.project_id,
                                          email="bob@acme.io", role=Role.MEMBER))
    second = projects.add_member(AddMember(actor=owner.user_id, project_id=staging, email="bob@acme.io",
                                           role=Role.VIEWER))
    assert second.user_id == first.user_id
    assert second.invite_token not in (None, first.invite_token)
    with pytest.raises(InvalidInputError):
        auth.register(RegisterUser(email="bob@acme.io", password=PASSWORD, full_name="Bob",
                                   invite_token=first.invite_token))
    started = auth.register(RegisterUser(email="bob@acme.io", password=PASSWORD, full_name="Bob",
                                         invite_token=second.invite_token))
    assert started.project_id == staging


def test_adding_a_registered_user_of_the_same_tenant_issues_no_invite(
    store: EventStore, auth: AuthHandlers, projects: ProjectHandlers
) -> None:
    owner = register(auth, "ann@acme.io")
    invite = projects.add_member(AddMember(actor=owner.user_id, project_id=owner.project_id,
                                           email="bob@acme.io", role=Role.MEMBER))
    auth.register(RegisterUser(email="bob@acme.io", password=PASSWORD, full_name="Bob",
                               invite_token=invite.invite_token))
    staging, _ = projects.create(CreateProject(actor=owner.user_id, tenant_id=owner.tenant_id, name="Staging"))

    added = projects.add_member(AddMember(actor=owner.user_id, project_id=staging, email="BOB@acme.io",
                                          role=Role.ADMIN))

    assert (added.user_id, added.invite_token) == (invite.user_id, None)
    assert store.get(Project, staging).role_of(invite.user_id) is Role.ADMIN


def test_a_user_of_another_tenant_cannot_be_added(
    store: EventStore, auth: AuthHandlers, projects: ProjectHandlers
) -> None:
    ann = register(auth, "ann@acme.io", tenant="Acme")
    bob = register(auth, "bob@globex.io", tenant="Globex")
    head = store.head()
    with pytest.raises(ConflictError, match="another organisation"):
        projects.add_member(AddMember(actor=ann.user_id, project_id=ann.project_id,
                                      email="bob@globex.io", role=Role.MEMBER))
    assert store.head() == head
    assert store.get(Project, ann.project_id).members == {ann.user_id: Role.OWNER}
    assert store.get(User, bob.user_id).tenant_id == bob.tenant_id


def test_an_outsider_adding_a_member_learns_nothing_about_the_email(
    store: EventStore, auth: AuthHandlers, projects: ProjectHandlers
) -> None:
    ann = register(auth, "ann@acme.io", tenant="Acme")
    bob = register(auth, "bob@globex.io", tenant="Globex")
    head = store.head()
    for email in ("ann@acme.io", "nobody@acme.io"):
        with pytest.raises(NotFoundError, match="project"):
            projects.add_member(AddMember(actor=bob.user_id, project_id=ann.project_id,
                                          email=email, role=Role.MEMBER))
    assert store.head() == head


# -- sessions ----------------------------------------------------------------------------------


def test_replaying_a_rotated_refresh_id_revokes_the_session_in_the_log(
    store: EventStore, auth: AuthHandlers
) -> None:
    started = register(auth, "ann@acme.io")
    rotated = auth.refresh(RefreshSession(session_id=started.session_id, refresh_id=started.refresh_id))
    assert rotated.refresh_id != started.refresh_id and rotated.project_id == started.project_id

    with pytest.raises(UnauthorizedError, match="revoked"):
        auth.refresh(RefreshSession(session_id=started.session_id, refresh_id=started.refresh_id))

    assert store.get(Session, started.session_id).revoked_reason == "refresh token reused"
    with pytest.raises(UnauthorizedError):
        auth.refresh(RefreshSession(session_id=started.session_id, refresh_id=rotated.refresh_id))


def test_log_in_starts_a_session_in_the_users_first_project(
    store: EventStore, auth: AuthHandlers, first_projects: FirstProjects
) -> None:
    registered = register(auth, "ann@acme.io")
    staging = uuid4()
    first_projects.by_user[registered.user_id] = staging
    head = store.head()
    with pytest.raises(UnauthorizedError):
        auth.log_in(LogIn(email="ann@acme.io", password="wrong password"))
    assert store.head() == head

    started = auth.log_in(LogIn(email="ANN@acme.io", password=PASSWORD))

    assert (started.user_id, started.project_id) == (registered.user_id, staging)
    assert started.session_id != registered.session_id
    assert started.position == store.head() > head


# -- concurrent writers --------------------------------------------------------------------


def project_with_two_owners(store: EventStore) -> tuple[UUID, UUID, UUID]:
    first, second = uuid4(), uuid4()
    project = Project(tenant_id=uuid4(), name="Production", description="", created_by=first)
    project.add_member(first, second, Role.OWNER)
    store.append(project)
    return project.id, first, second


def test_appending_a_stale_copy_of_an_aggregate_is_a_concurrent_write(store: EventStore) -> None:
    project_id, owner, _ = project_with_two_owners(store)
    mine, theirs = store.get(Project, project_id), store.get(Project, project_id)
    theirs.add_member(owner, uuid4(), Role.VIEWER)
    store.append(theirs)
    head = store.head()

    mine.add_member(owner, uuid4(), Role.MEMBER)
    with pytest.raises(ConcurrentWriteError):
        store.append(mine)
    assert store.head() == head


class InterleavingStore(EventStore):
    """The real in-memory store, where another writer appends right after the first load."""

    def __init__(self, app: CopilotLog) -> None:
        super().__init__(app)
        self.loads = 0
        self.meanwhile: Callable[[], Any] | None = None

    def get(self, cls: type[A], aggregate_id: UUID) -> A:
        found = super().get(cls, aggregate_id)
        self.loads += 1
        if self.meanwhile is not None:
            other_writer, self.meanwhile = self.meanwhile, None
            other_writer()
        return found


def test_a_command_still_valid_after_a_concurrent_write_is_retried_and_applied() -> None:
    store = InterleavingStore(in_memory_app())
    handlers = ProjectHandlers(store)
    project_id, owner, co_owner = project_with_two_owners(store)
    member = uuid4()
    project = store.get(Project, project_id)
    project.add_member(owner, member, Role.VIEWER)
    store.append(project)
    store.loads = 0
    store.meanwhile = lambda: handlers.change_member_role(
        ChangeMemberRole(actor=co_owner, project_id=project_id, user_id=co_owner, role=Role.ADMIN))

    handlers.change_member_role(ChangeMemberRole(actor=owner, project_id=project_id, user_id=member,
                                                 role=Role.MEMBER))

    assert store.loads == 3  # ours, the other writer's, ours again after the conflict
    assert store.get(Project, project_id).members == {
        owner: Role.OWNER, co_owner: Role.ADMIN, member: Role.MEMBER}


def test_a_command_made_illegal_by_a_concurrent_write_fails_with_the_domain_error() -> None:
    store = InterleavingStore(in_memory_app())
    handlers = ProjectHandlers(store)
    project_id, first, second = project_with_two_owners(store)
    # Each owner demotes the other at the same moment: applying both would leave no owner.
    store.meanwhile = lambda: handlers.change_member_role(
        ChangeMemberRole(actor=second, project_id=project_id, user_id=first, role=Role.ADMIN))

    with pytest.raises(ForbiddenError, match="owner"):
        handlers.change_member_role(ChangeMemberRole(actor=first, project_id=project_id, user_id=second,
                                                     role=Role.ADMIN))

    assert store.get(Project, project_id).members == {first: Role.ADMIN, second: Role.OWNER}


def test_with_retries_gives_up_with_a_conflict_after_repeated_concurrent_writes() -> None:
    calls: list[int] = []

    def always_beaten() -> None:
        calls.append(1)
        raise ConcurrentWriteError("someone else was first")

    with pytest.raises(ConflictError, match="concurrently"):
        with_retries(always_beaten, attempts=3)
    assert len(calls) == 3
