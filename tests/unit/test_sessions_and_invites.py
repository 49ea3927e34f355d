"""Sessions rotate their refresh token and die on reuse; invitations are accepted with the right token only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from copilot.domain import ConflictError, InvalidInputError, Session, UnauthorizedError, User
from copilot.security import hash_secret

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
TENANT, USER, PROJECT, OTHER_PROJECT, INVITER = (uuid4() for _ in range(5))


def new_session() -> Session:
    session = Session(user_id=USER, tenant_id=TENANT, project_id=PROJECT, refresh_id="r1", expires_at=T0 + WEEK)
    session.collect_events()
    return session


def event_names(aggregate: Session | User) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


# -- sessions ------------------------------------------------------------------------------


def test_presenting_the_current_refresh_id_rotates_it() -> None:
    session = new_session()
    assert session.rotate("r1", "r2", PROJECT, now=T0 + timedelta(minutes=20)) is True
    [refreshed] = session.collect_events()
    assert type(refreshed).__name__ == "Refreshed"
    assert (refreshed.refresh_id, refreshed.project_id) == ("r2", PROJECT)
    assert session.refresh_id == "r2"
    assert not session.is_revoked


def test_presenting_a_rotated_out_refresh_id_revokes_the_session() -> None:
    session = new_session()
    session.rotate("r1", "r2", PROJECT, now=T0)
    session.collect_events()
    assert session.rotate("r1", "r3", PROJECT, now=T0) is False
    [revoked] = session.collect_events()
    assert type(revoked).__name__ == "Revoked"
    assert revoked.reason == "refresh token reused"
    assert session.is_revoked
    assert session.refresh_id == "r2"  # the stolen-and-replayed token did not mint a new one


def test_after_reuse_even_the_newest_refresh_id_is_refused() -> None:
    session = new_session()
    session.rotate("r1", "r2", PROJECT, now=T0)
    session.rotate("r1", "r3", PROJECT, now=T0)
    session.collect_events()
    with pytest.raises(UnauthorizedError, match="ended"):
        session.rotate("r2", "r4", PROJECT, now=T0)
    assert event_names(session) == []


def test_an_expired_session_cannot_be_refreshed() -> None:
    session = new_session()
    with pytest.raises(UnauthorizedError, match="expired"):
        session.rotate("r1", "r2", PROJECT, now=T0 + WEEK)
    assert event_names(session) == []
    assert session.refresh_id == "r1"


def test_a_session_can_be_refreshed_until_just_before_it_expires() -> None:
    session = new_session()
    assert session.rotate("r1", "r2", PROJECT, now=T0 + WEEK - timedelta(seconds=1)) is True


def test_revoking_twice_records_one_revocation() -> None:
    session = new_session()
    session.revoke("logout")
    session.revoke("logout")
    assert event_names(session) == ["Revoked"]
    assert session.revoked_reason == "logout"


def test_a_logged_out_session_cannot_be_refreshed() -> None:
    session = new_session()
    session.revoke("logout")
    session.collect_events()
    with pytest.raises(UnauthorizedError):
        session.rotate("r1", "r2", PROJECT, now=T0)
    assert event_names(session) == []


def test_switching_project_rotates_the_refresh_id_and_moves_the_session() -> None:
    session = new_session()
    session.switch_project(OTHER_PROJECT, "r2", now=T0)
    assert event_names(session) == ["Refreshed"]
    assert (session.project_id, session.refresh_id) == (OTHER_PROJECT, "r2")
    assert session.rotate("r1", "r3", OTHER_PROJECT, now=T0) is False  # the pre-switch id is now stale


@pytest.mark.parametrize("ended", ["revoked", "expired"])
def test_an_ended_session_cannot_switch_project(ended: str) -> None:
    session = new_session()
    now = T0
    if ended == "revoked":
        session.revoke("logout")
        session.collect_events()
    else:
        now = T0 + WEEK
    with pytest.raises(UnauthorizedError):
        session.switch_project(OTHER_PROJECT, "r2", now=now)
    assert event_names(session) == []
    assert session.project_id == PROJECT


# -- invitations -----------------------------------------------------------------------------


def invited(token: str = "inv_right") -> User:
    user = User.invite(TENANT, "  New.Person@Example.COM ", INVITER, PROJECT, hash_secret(token), T0 + WEEK)
    user.collect_events()
    return user


def test_an_invited_user_is_pending_with_a_normalized_email() -> None:
    user = User.invite(TENANT, "  New.Person@Example.COM ", INVITER, PROJECT, hash_secret("inv_x"), T0 + WEEK)
    [event] = user.collect_events()
    assert type(event).__name__ == "Invited"
    assert event.email == "new.person@example.com"
    assert (event.invited_by, event.project_id) == (INVITER, PROJECT)
    assert event.invite_token_hash == hash_secret("inv_x")  # only the hash is recorded
    assert user.is_pending_invite
    assert user.password_hash is None


def test_the_right_token_before_expiry_accepts_the_invite() -> None:
    user = invited()
    user.accept_invite(hash_secret("inv_right"), T0 + timedelta(days=6), "New Person", "argon-hash")
    [event] = user.collect_events()
    assert type(event).__name__ == "InviteAccepted"
    assert (event.full_name, event.password_hash) == ("New Person", "argon-hash")
    assert not user.is_pending_invite
    assert user.invite_token_hash is None
    assert user.invited_to == PROJECT


def test_a_wrong_token_is_refused() -> None:
    user = invited()
    with pytest.raises(InvalidInputError, match="not valid"):
        user.accept_invite(hash_secret("inv_wrong"), T0, "Mallory", "argon-hash")
    assert event_names(user) == []
    assert user.is_pending_invite


def test_an_expired_token_is_refused_even_when_right() -> None:
    user = invited()
    with pytest.raises(InvalidInputError, match="expired"):
        user.accept_invite(hash_secret("inv_right"), T0 + WEEK, "New Person", "argon-hash")
    assert event_names(user) == []
    assert user.is_pending_invite


def test_an_accepted_invite_cannot_be_accepted_again() -> None:
    user = invited()
    user.accept_invite(hash_secret("inv_right"), T0, "New Person", "argon-hash")
    user.collect_events()
    with pytest.raises(ConflictError):
        user.accept_invite(hash_secret("inv_right"), T0, "Someone Else", "other-hash")
    assert event_names(user) == []
    assert (user.full_name, user.password_hash) == ("New Person", "argon-hash")


def test_a_registered_user_cannot_accept_an_invite() -> None:
    user = User.register(TENANT, "ann@acme.io", "Ann", "argon-hash")
    user.collect_events()
    with pytest.raises(ConflictError):
        user.accept_invite(hash_secret("anything"), T0, "Ann", "other-hash")
    assert user.password_hash == "argon-hash"


def test_a_reinvite_replaces_the_token_and_its_expiry() -> None:
    user = invited("inv_old")
    user.reinvite(INVITER, OTHER_PROJECT, hash_secret("inv_new"), T0 + 2 * WEEK)
    [event] = user.collect_events()
    assert type(event).__name__ == "Reinvited"
    assert (event.project_id, event.invite_token_hash) == (OTHER_PROJECT, hash_secret("inv_new"))
    with pytest.raises(InvalidInputError, match="not valid"):
        user.accept_invite(hash_secret("inv_old"), T0, "New Person", "argon-hash")
    # The new expiry applies: a week and a day after the first invitation still works.
    user.accept_invite(hash_secret("inv_new"), T0 + WEEK + timedelta(days=1), "New Person", "argon-hash")
    assert not user.is_pending_invite
    assert user.invited_to == OTHER_PROJECT


def test_a_registered_user_cannot_be_reinvited() -> None:
    user = invited()
    user.accept_invite(hash_secret("inv_right"), T0, "New Person", "argon-hash")
    user.collect_events()
    with pytest.raises(ConflictError):
        user.reinvite(INVITER, OTHER_PROJECT, hash_secret("inv_new"), T0 + WEEK)
    assert event_names(user) == []
