"""A rebuild beside a live projector loses nothing the projector committed as the rebuild began.

On PostgreSQL only: on SQLite the log and the read models share one file, and a rebuild holds its
write lock from the start, so nothing is appended or projected meanwhile.
"""

from __future__ import annotations

import time
from uuid import uuid4

import pytest

from copilot.bootstrap import Container
from copilot.domain.tenant import Tenant
from copilot.projections import all_projections
from copilot.projections.rebuild import rebuild


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_what_the_live_projector_commits_as_a_rebuild_starts_stays(container: Container,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    runner = container.runner
    assert runner is not None
    store = container.store
    late = Tenant(name="late", slug="late", registered_by=uuid4())
    log_head = store.head

    def head_then_a_commit() -> int:
        """The log's head, then a registration the live projector takes up at once, unless the
        rebuild already holds it (then it waits, and takes it up after the rebuild)."""
        head = log_head()
        position = store.append(late)
        deadline = time.monotonic() + 2
        while runner.position < position and time.monotonic() < deadline:
            time.sleep(0.01)
        return head

    monkeypatch.setattr(store, "head", head_then_a_commit)
    rebuild(store, container.db, all_projections())
    monkeypatch.undo()
    deadline = time.monotonic() + 10
    while runner.position < store.head():
        assert time.monotonic() < deadline, "the live projector did not catch up after the rebuild"
        time.sleep(0.01)
    assert container.db.fetch_one("SELECT name FROM tenants WHERE id = :id", {"id": late.id}) == {"name": "late"}
