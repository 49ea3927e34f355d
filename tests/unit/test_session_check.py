"""The session check of every request: a session seen live is trusted for a second, and when that
lapses the requests arriving together share one question to the read models."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

from copilot.projections.views import AccountsView


class Sessions:
    """The sessions table as the check reads it; each question takes `delay` seconds to answer."""

    def __init__(self, delay: float = 0.05) -> None:
        self.revoked: set[UUID] = set()
        self.questions = 0
        self.delay = delay

    async def afetch_one(self, sql: str, params: dict[str, Any]) -> dict[str, Any]:
        self.questions += 1
        revoked = params["id"] in self.revoked  # the state when the question was asked
        await asyncio.sleep(self.delay)
        return {"revoked_at": "2026-11-28T00:00:00Z" if revoked else None}


def test_requests_arriving_together_share_one_question() -> None:
    sessions = Sessions()
    accounts = AccountsView(sessions)  # type: ignore[arg-type]
    session = uuid4()

    async def scenario() -> list[bool]:
        return list(await asyncio.gather(*(accounts.session_is_active(session) for _ in range(32))))

    assert asyncio.run(scenario()) == [True] * 32
    assert sessions.questions == 1


def test_a_caller_that_goes_away_does_not_cancel_the_answer_for_the_others() -> None:
    sessions = Sessions()
    accounts = AccountsView(sessions)  # type: ignore[arg-type]
    session = uuid4()

    async def scenario() -> bool:
        first = asyncio.ensure_future(accounts.session_is_active(session))
        second = asyncio.ensure_future(accounts.session_is_active(session))
        await asyncio.sleep(0.01)
        first.cancel()
        return await second

    assert asyncio.run(scenario()) is True
    assert sessions.questions == 1


def test_after_a_logout_here_the_session_is_asked_again_and_an_older_answer_is_not_kept() -> None:
    sessions = Sessions()
    accounts = AccountsView(sessions)  # type: ignore[arg-type]
    session = uuid4()

    async def scenario() -> tuple[bool, bool]:
        asked_before = asyncio.ensure_future(accounts.session_is_active(session))
        await asyncio.sleep(0.01)  # its question is under way, asked while the session was live
        sessions.revoked.add(session)
        accounts.forget_session(session)
        return await asked_before, await accounts.session_is_active(session)

    # The answer to the earlier question goes to its own caller, but is not remembered as "live".
    assert asyncio.run(scenario()) == (True, False)
    assert sessions.questions == 2
