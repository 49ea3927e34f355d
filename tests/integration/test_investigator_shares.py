"""Investigators sharing the work on PostgreSQL (COPILOT_INVESTIGATOR_PARTITIONS): each active one
drives its own share of the investigations, every investigation is driven once, and a standby
takes over a share whose investigator stops."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg.conninfo import make_conninfo

from copilot.bootstrap import Container
from copilot.domain.investigation import Investigation
from copilot.investigation.workflow import Investigator
from copilot.ops.metrics import Metrics
from copilot.projections.runner import read_positions
from copilot.settings import Settings
from tests.integration.conftest import register


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:  # advisory locks: PostgreSQL only
    return str(request.param)


def _declare(client: TestClient[Any], headers: dict[str, str], count: int, start: int) -> list[UUID]:
    ids = []
    for n in range(start, start + count):
        answer = client.post("/api/v1/incidents", headers=headers,
                             json={"title": f"Queue {n} backing up", "service_name": f"svc-{n}", "severity": "low"})
        assert answer.status_code == 200, answer.text
        ids.append(UUID(answer.json()["id"]))
    return ids


def _completed(container: Container, incidents: list[UUID]) -> list[Investigation]:
    found = [container.store.find(Investigation, Investigation.create_id(i)) for i in incidents]
    return [i for i in found if i is not None and i.run == 1 and not i.running and i.hypotheses]


def _driven(investigator: Investigator) -> float:
    assert investigator.metrics is not None
    return investigator.metrics.registry.get_sample_value(
        "copilot_investigations_total", {"outcome": "completed"}) or 0.0


async def until(done: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(done):
        assert time.monotonic() < deadline, "the investigators did not get there in time"
        await asyncio.sleep(0.1)


def test_two_shares_split_the_investigations_and_a_standby_takes_over_a_stopped_one(
    client: TestClient[Any], container: Container, settings: Settings
) -> None:
    headers = register(client, "ann@example.com").headers
    incidents = _declare(client, headers, 12, 0)
    investigators = [Investigator(container.store, container.db, read_models=container.waiter, partitions=2,
                                  listen_conninfo=settings.postgres.conninfo, poll_interval=0.2) for _ in range(3)]
    for investigator in investigators:
        investigator.metrics = Metrics()

    async def scenario() -> None:
        tasks = [asyncio.create_task(investigator.run()) for investigator in investigators]
        await until(lambda: len(_completed(container, incidents)) == len(incidents))
        counts = sorted(_driven(i) for i in investigators)
        assert counts[0] == 0 and counts[1] > 0 and counts[2] > 0 and sum(counts) == len(incidents), counts
        leaders = [i for i in investigators if _driven(i) > 0]
        shares = {i.tracking_name for i in leaders}
        assert shares == {"investigator 1 of 2", "investigator 2 of 2"}

        stopped = leaders[0]
        stopped.stop()
        await tasks[investigators.index(stopped)]
        more = _declare(client, headers, 8, 100)
        await until(lambda: len(_completed(container, more)) == len(more))
        standby = next(i for i in investigators if i not in leaders)
        assert standby.tracking_name == stopped.tracking_name and _driven(standby) > 0
        for investigator in investigators:
            investigator.stop()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    # Each share kept its own tracking row, and no single-investigator row was written.
    assert {name for name in read_positions(container.db) if name.startswith("investigator")} == {
        "investigator 1 of 2", "investigator 2 of 2"}
    # Nothing was driven twice: one run each, and every investigation's events once.
    for incident in incidents:
        investigation = container.store.get(Investigation, Investigation.create_id(incident))
        assert investigation.run == 1


def test_an_investigator_started_with_another_split_stands_by_until_the_running_one_stops(
    client: TestClient[Any], container: Container, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # One investigator runs unsplit; another is started with COPILOT_INVESTIGATOR_PARTITIONS=2.
    # Leading "share 2 of 2" next to it would drive half the investigations a second time.
    headers = register(client, "ann@example.com").headers
    running, other = (Investigator(container.store, container.db, read_models=container.waiter, partitions=shares,
                                   listen_conninfo=settings.postgres.conninfo, poll_interval=0.2) for shares in (1, 2))
    for investigator in (running, other):
        investigator.metrics = Metrics()
    warning = "investigators with COPILOT_INVESTIGATOR_PARTITIONS=1 are running, this one has 2"
    # Investigators of another database on the same server, split three ways, are no rivals.
    elsewhere = psycopg.connect(make_conninfo(settings.postgres.conninfo, dbname="postgres"), autocommit=True)
    elsewhere.execute("SELECT pg_advisory_lock_shared(%s)", (Investigator(
        container.store, container.db, partitions=3, listen_conninfo=settings.postgres.conninfo).agreement().key,))

    async def scenario() -> None:
        first = asyncio.create_task(running.run())
        incidents = _declare(client, headers, 4, 0)
        await until(lambda: len(_completed(container, incidents)) == len(incidents))
        second = asyncio.create_task(other.run())
        await until(lambda: warning in caplog.text)
        incidents += _declare(client, headers, 8, 100)
        await until(lambda: len(_completed(container, incidents)) == len(incidents))
        assert (_driven(running), _driven(other)) == (len(incidents), 0)

        running.stop()
        await first
        later = _declare(client, headers, 1, 200)
        while Investigation.create_id(later[-1]).int % 2:  # until one falls in the share it takes (the first)
            later += _declare(client, headers, 1, 200 + len(later))
        await until(lambda: _driven(other) > 0)  # it leads now, one share of two
        assert other.tracking_name == "investigator 1 of 2"
        other.stop()
        await second
        for incident in incidents + later:
            investigation = container.store.find(Investigation, Investigation.create_id(incident))
            assert investigation is None or investigation.run == 1

    try:
        asyncio.run(scenario())
    finally:
        elsewhere.close()


def test_an_investigator_whose_lock_connection_is_lost_stops_leading_until_it_holds_the_lock_again(
    client: TestClient[Any], container: Container, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    headers = register(client, "ann@example.com").headers
    investigator = Investigator(container.store, container.db, read_models=container.waiter,
                                listen_conninfo=settings.postgres.conninfo, poll_interval=0.2)
    investigator.metrics = Metrics()
    key = investigator.lock_keys()[0]
    holders = ("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
               " AND mode = 'ExclusiveLock' AND (classid::int8 << 32) | objid::int8 = %s"
               " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
    other = psycopg.connect(settings.postgres.conninfo, autocommit=True)  # another leader, as PostgreSQL sees it

    async def scenario() -> None:
        task = asyncio.create_task(investigator.run())
        first = _declare(client, headers, 2, 0)
        await until(lambda: len(_completed(container, first)) == len(first))
        [(pid,)] = other.execute(holders, (key,)).fetchall()
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))  # its lock goes with its connection
        await until(lambda: bool(other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]))
        # Within a check (HOLD_CHECK_SECONDS) it notices, and from then on does not lead beside the holder.
        await until(lambda: "investigator lost the connection that holds its lock" in caplog.text)
        second = _declare(client, headers, 3, 100)
        await asyncio.sleep(3)
        assert _completed(container, second) == [] and _driven(investigator) == len(first)
        other.execute("SELECT pg_advisory_unlock(%s)", (key,))
        await until(lambda: len(_completed(container, second)) == len(second))  # it holds the lock again
        investigator.stop()
        await task

    try:
        asyncio.run(scenario())
    finally:
        other.close()
