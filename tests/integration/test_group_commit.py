"""Group commit on PostgreSQL: many commands, one transaction, and each still wins or loses alone."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import pytest

from copilot.commands.group_commit import GroupCommitRecorder
from copilot.commands.store import ConcurrentWriteError, EventStore, build_event_store
from copilot.domain.incident import Incident
from copilot.domain.tenant import Tenant
from copilot.migrations import migrate
from copilot.settings import Settings, load_settings
from tests.conftest import PG_HOST, PG_PORT, settings_env


@pytest.fixture(params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(settings: Settings) -> Iterator[EventStore]:
    migrate(settings)
    built = build_event_store(settings)
    try:
        yield built
    finally:
        built.close()


def _in_threads(count: int, work: object) -> None:
    start = threading.Barrier(count)

    def run(n: int) -> None:
        start.wait()
        work(n)  # type: ignore[operator]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def test_concurrent_appends_share_transactions_and_all_land_in_order(store: EventStore) -> None:
    recorder = store.recorder
    assert isinstance(recorder, GroupCommitRecorder)
    positions: dict[UUID, int] = {}

    def create(n: int) -> None:
        for i in range(20):
            tenant = Tenant(name=f"t{n}-{i}", slug=f"t{n}-{i}", registered_by=uuid4())
            positions[tenant.id] = store.append(tenant)

    _in_threads(16, create)

    assert len(positions) == 16 * 20
    for tenant_id, position in positions.items():
        loaded = store.get(Tenant, tenant_id)  # every acknowledged append is readable
        assert store.positions_of(tenant_id) == {1: position}
        assert loaded.name.startswith("t")
    ordered = sorted(positions.values())
    assert ordered == list(range(ordered[0], ordered[0] + len(ordered)))  # no gap a log reader could skip
    assert recorder.appends == 16 * 20
    assert recorder.batches < recorder.appends  # some callers really did share a commit


def test_a_lost_race_fails_only_its_own_command(store: EventStore) -> None:
    incident = Incident(tenant_id=uuid4(), project_id=uuid4(), title="5xx", description="", service_name="api",
                        severity="high", detected_at=datetime.now(UTC), detected_by=None)
    store.append(incident)
    outcomes: dict[int, str] = {}
    others: list[UUID] = []

    def contend(n: int) -> None:
        # Every thread moves the same version of one incident, and also creates something of its own.
        copy = store.get(Incident, incident.id)
        copy.change_severity(("low", "medium", "critical")[n % 3], by=None)
        own = Tenant(name=f"own {n}", slug=f"own-{n}", registered_by=uuid4())
        store.append(own)
        others.append(own.id)
        try:
            store.append(copy)
            outcomes[n] = "won"
        except ConcurrentWriteError:
            outcomes[n] = "lost"

    _in_threads(8, contend)

    assert sorted(outcomes.values()).count("won") == 1  # optimistic concurrency per aggregate holds
    assert len(store.positions_of(incident.id)) == 2
    assert len(others) == 8 and all(store.find(Tenant, other) is not None for other in others)


def test_appends_from_an_event_loop_and_from_threads_share_commits_and_each_gets_its_own_answer(
        store: EventStore) -> None:
    # Create appends from the API's event loop (`append_new`), everything else from threads: the
    # writer answers each caller where it waits, and one caller's lost race is its own.
    recorder = store.recorder
    assert isinstance(recorder, GroupCommitRecorder)
    positions: dict[UUID, int] = {}

    async def from_the_loop() -> list[str]:
        async def one(n: int) -> None:
            tenant = Tenant(name=f"loop {n}", slug=f"loop-{n}", registered_by=uuid4())
            positions[tenant.id] = await store.append_new(tenant)

        clash = Tenant(name="clash", slug="clash", registered_by=uuid4())
        again = [store.app.mapper.to_stored_event(e) for e in clash.collect_events()]
        first = await recorder.insert_events_async(again)  # then the same events once more, below
        outcomes = await asyncio.gather(*(one(n) for n in range(40)), recorder.insert_events_async(again),
                                        return_exceptions=True)
        assert len(first) == 1
        # A caller that stops waiting (its request cancelled) leaves its append to finish; the
        # writer's answer to it is dropped, and everyone after it is answered as before.
        gone = Tenant(name="gone", slug="gone", registered_by=uuid4())
        waiting = asyncio.ensure_future(store.append_new(gone))
        await asyncio.sleep(0)
        waiting.cancel()
        await one(40)
        assert waiting.cancelled() and store.find(Tenant, gone.id) is not None
        return [type(outcome).__name__ for outcome in outcomes if outcome is not None]

    def from_threads(n: int) -> None:
        for i in range(10):
            tenant = Tenant(name=f"thread {n}-{i}", slug=f"thread-{n}-{i}", registered_by=uuid4())
            positions[tenant.id] = store.append(tenant)

    threads = threading.Thread(target=_in_threads, args=(4, from_threads))
    threads.start()
    failures = asyncio.run(from_the_loop())
    threads.join(timeout=60)

    assert failures == ["IntegrityError"]  # the clash's second append, and only it
    assert len(positions) == 41 + 4 * 10
    for tenant_id, position in positions.items():
        assert store.positions_of(tenant_id) == {1: position}  # each answered with its own position
        assert store.get(Tenant, tenant_id).name.startswith(("loop", "thread"))
    assert recorder.batches < recorder.appends  # callers of both kinds really did share commits


class CommitCutter:
    """A TCP proxy on loopback in front of PostgreSQL. Once armed, it passes the next COMMIT on,
    lets the server commit, and cuts that connection before the server's answer gets back: the
    client cannot know whether its transaction committed."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._armed = threading.Event()
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self) -> None:
        self._armed.set()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection((PG_HOST, PG_PORT))
            holding = threading.Event()  # set: the server's answers are not passed on any more
            threading.Thread(target=self._to_server, args=(client, server, holding), daemon=True).start()
            threading.Thread(target=self._to_client, args=(server, client, holding), daemon=True).start()

    def _to_server(self, client: socket.socket, server: socket.socket, holding: threading.Event) -> None:
        with client, server:
            while data := _recv(client):
                commit = self._armed.is_set() and b"COMMIT\x00" in data
                if commit:
                    self._armed.clear()
                    holding.set()
                server.sendall(data)
                if commit:
                    time.sleep(0.3)  # the server commits and answers; the answer is dropped
                    self.cut.set()
                    return

    @staticmethod
    def _to_client(server: socket.socket, client: socket.socket, holding: threading.Event) -> None:
        while (data := _recv(server)) and not holding.is_set():
            try:
                client.sendall(data)
            except OSError:
                return


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def test_a_commit_whose_answer_was_lost_is_answered_once_not_refused(settings: Settings, tmp_path: Path) -> None:
    migrate(settings)
    cutter = CommitCutter()
    name = urlsplit(settings.database_url).path
    proxied = load_settings(settings_env("postgres", tmp_path / "proxied",
                                         f"postgresql://root@127.0.0.1:{cutter.port}{name}"))
    store = build_event_store(proxied)
    try:
        tenant = Tenant(name="acme", slug="acme", registered_by=uuid4())
        cutter.arm()
        position = store.append(tenant)  # the retry finds the rows its lost commit wrote
        assert cutter.cut.is_set()  # the connection really was cut after the server had the COMMIT
        assert store.positions_of(tenant.id) == {1: position}  # in the log once, where the caller was told
        again = Tenant(name="after", slug="after", registered_by=uuid4())
        assert store.append(again) > position  # and appends go on
    finally:
        store.close()
        cutter.close()
