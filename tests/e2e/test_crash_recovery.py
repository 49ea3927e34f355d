"""Processes SIGKILLed in the middle of their work, with the server split into roles on a PostgreSQL
cluster of the test's own (its log tells whether a kill landed inside an open transaction).

- The projector killed while one of its batch transactions is writing (its locks seen in pg_locks),
  three times during a burst of commands: once restarted, the read models equal a full rebuild from the
  log, and every incident shows exactly the moves that were acknowledged — nothing lost, nothing twice.
- The API killed while it is appending to the log, with concurrent registrations, creates and moves in
  flight, twice: the log holds only whole commands (every aggregate's versions contiguous, every
  registration with all six of its aggregates), every acknowledged command is in it, at most the
  unanswered ones were added unseen, and the read models equal a rebuild.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg

from tests.e2e.api import PASSWORD, Account, Users, unique_email
from tests.e2e.log_checks import (
    READ_MODEL_TABLES,
    assert_rebuild_changes_nothing,
    log_events,
    wait_for_projections,
    whole_commands,
)
from tests.e2e.own_postgres import OwnPostgres, own_postgres
from tests.e2e.server import backend_env, free_port
from tests.e2e.test_scale_out import role

# The path every incident of the burst takes, one acknowledged move at a time.
PATH = ["acknowledged", "investigating", "mitigated", "resolved", "learned"]

# A transaction is writing to one of these tables: it holds a write lock on it until it ends.
WRITING = """
SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.granted AND l.mode IN ('RowExclusiveLock', 'ExclusiveLock') AND c.relname = ANY(%s)
"""
READ_MODEL_WRITES = [*READ_MODEL_TABLES, "projection_tracking"]  # only the projector writes these here
LOG_WRITES = ["copilot_events"]  # only the API writes this here


@dataclass
class Ledger:
    """What the clients were told: acknowledged commands, and requests whose outcome nobody saw."""

    users: set[str] = field(default_factory=set)
    incidents: dict[str, int] = field(default_factory=dict)  # incident -> the writer (owner) that made it
    moves: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    unanswered: int = 0  # sent, then the connection died: applied or not, nobody knows
    statuses: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Burst:
    """Writers driving the API as fast as it answers; each stops at its first transport error."""

    def __init__(self, api_url: str, owners: list[Account], ledger: Ledger, *, register_every: int = 0) -> None:
        self.api_url = api_url
        self.owners = owners
        self.ledger = ledger
        self.register_every = register_every
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(owner, n), daemon=True)
                        for n, owner in enumerate(owners)]

    def __enter__(self) -> Burst:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)
            assert not thread.is_alive(), "a writer did not finish"

    def _send(self, client: httpx.Client, method: str, path: str, body: dict[str, Any],
              headers: dict[str, str] | None = None) -> httpx.Response | None:
        try:
            response = client.request(method, path, json=body, headers=headers)
        except httpx.ConnectError:
            return None  # never reached a server: nothing was sent
        except httpx.TransportError:
            with self.ledger.lock:
                self.ledger.unanswered += 1
            return None
        with self.ledger.lock:
            self.ledger.statuses[response.status_code] += 1
        return response

    def _write(self, owner: Account, writer: int) -> None:
        with httpx.Client(base_url=self.api_url, timeout=30, headers=owner.bearer) as client:
            n = 0
            while not self.stopping.is_set():
                n += 1
                if self.register_every and n % self.register_every == 1:
                    answer = self._send(client, "POST", "/auth/register", headers={"Authorization": ""}, body={
                        "email": unique_email(f"w{writer}"), "password": PASSWORD, "full_name": "Writer",
                        "tenant_name": f"Tenant {writer}-{n}"})
                    if answer is None:
                        return
                    if answer.status_code == 200:
                        with self.ledger.lock:
                            self.ledger.users.add(answer.json()["user"]["id"])
                created = self._send(client, "POST", "/incidents",
                                     {"title": f"burst {writer}-{n}", "service_name": "api", "severity": "low"})
                if created is None:
                    return
                if created.status_code != 200:
                    continue
                incident = created.json()["id"]
                with self.ledger.lock:
                    self.ledger.incidents[incident] = writer
                for state in PATH:
                    moved = self._send(client, "PATCH", f"/incidents/{incident}/state", {"state": state})
                    if moved is None:
                        return
                    if moved.status_code != 200:
                        break
                    with self.ledger.lock:
                        self.ledger.moves[incident].append(state)


@contextmanager
def split_server(tmp_path: Path) -> Iterator[tuple[OwnPostgres, dict[str, str], ExitStack]]:
    """The test's own cluster; (cluster, env for the roles, a stack to start roles on)."""
    with own_postgres() as cluster, ExitStack() as stack:
        # A budget no writer reaches: the rate limit is not what is under test.
        env = {**backend_env("postgres", tmp_path / "var", cluster.url), "COPILOT_RATE_LIMIT_PER_MINUTE": "1000000"}
        yield cluster, env, stack


def aborted_by_a_kill(cluster: OwnPostgres) -> int:
    """How many client connections died with a transaction open (PostgreSQL rolled each one back)."""
    return (cluster.data / "server.log").read_text(errors="replace").count("client connection with an open transaction")


def start_role(stack: ExitStack, name: str, env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return stack.enter_context(role(name, {**env, "COPILOT_API_PORT": str(port)}, log, port))


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def kill_while_writing(url: str, process: subprocess.Popen[bytes], tables: list[str], timeout: float = 30.0) -> None:
    """SIGKILL the process the moment a transaction of its holds write locks on these tables."""
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + timeout
        while not conn.execute(WRITING, (tables,)).fetchall():
            assert time.monotonic() < deadline, f"nothing wrote to {tables} within {timeout:.0f} s"
        kill(process)


def assert_incidents_show_the_log(api_url: str, owners: list[Account], ledger: Ledger,
                                  moves: dict[UUID, list[str]]) -> None:
    """After the crash the API shows each incident in the state of its last move, counting each move once."""
    clients = [httpx.Client(base_url=api_url, timeout=30, headers=owner.bearer) for owner in owners]
    try:
        for incident, writer in ledger.incidents.items():
            logged = moves.get(UUID(incident), [])
            shown = clients[writer].get(f"/incidents/{incident}/metrics").json()
            assert shown["state"] == (logged[-1] if logged else "detected"), (incident, shown, logged)
            assert shown["state_changes"] == len(logged), (incident, shown, logged)
    finally:
        for client in clients:
            client.close()


def test_a_projector_killed_mid_batch_catches_up_exactly_once(tmp_path: Path) -> None:
    with split_server(tmp_path) as (cluster, env, stack):
        url = cluster.url
        projector_port, api_port = free_port(), free_port()
        projector = start_role(stack, "projector", env, projector_port, tmp_path / "projector.log")
        start_role(stack, "api", env, api_port, tmp_path / "api.log")
        api_url = f"http://127.0.0.1:{api_port}/api/v1"
        ledger = Ledger()
        with Users(api_url) as users:
            owner = users.register(who="sre")
            with Burst(api_url, [owner] * 6, ledger):
                # Three kills, and more (up to ten) until one has landed inside an open batch: a
                # kill can also land while the batch's COMMIT is already on its way.
                for kills in range(1, 11):
                    kill_while_writing(url, projector, READ_MODEL_WRITES)
                    # Commands keep landing in the log while no projector runs, until it is back.
                    projector = start_role(stack, "projector", env, projector_port, tmp_path / "projector.log")
                    if kills >= 3 and aborted_by_a_kill(cluster) >= 1:
                        break
                time.sleep(1)
            wait_for_projections(url)
            assert aborted_by_a_kill(cluster) >= 1, "no kill landed inside an open batch"
            assert ledger.unanswered == 0 and set(ledger.statuses) == {200}, ledger.statuses

            assert_rebuild_changes_nothing(url, env)
            log = whole_commands(log_events(env))
            assert {str(i) for i in log["incidents"]} == set(ledger.incidents)
            assert {str(i): m for i, m in log["moves"].items()} == dict(ledger.moves)
            assert len(ledger.incidents) >= 10, "the burst was too small to mean anything"
            assert_incidents_show_the_log(api_url, [owner] * 6, ledger, log["moves"])


def test_an_api_killed_mid_command_leaves_only_whole_commands(tmp_path: Path) -> None:
    with split_server(tmp_path) as (cluster, env, stack):
        url = cluster.url
        api_port = free_port()
        start_role(stack, "projector", env, free_port(), tmp_path / "projector.log")
        api = start_role(stack, "api", env, api_port, tmp_path / "api.log")
        api_url = f"http://127.0.0.1:{api_port}/api/v1"
        ledger = Ledger()
        with Users(api_url) as users:
            owners = [users.register(who=f"sre{n}") for n in range(8)]
            ledger.users.update(owner.user_id for owner in owners)
            rounds = 0
            while rounds < 2 or (aborted_by_a_kill(cluster) == 0 and rounds < 5):
                rounds += 1
                with Burst(api_url, owners, ledger, register_every=2):
                    target = len(ledger.incidents) + 10
                    deadline = time.monotonic() + 60
                    while len(ledger.incidents) < target and time.monotonic() < deadline:
                        time.sleep(0.05)
                    kill_while_writing(url, api, LOG_WRITES)  # eight writers in flight, one appending
                api = start_role(stack, "api", env, api_port, tmp_path / "api.log")
            assert aborted_by_a_kill(cluster) >= 1, "no kill landed inside an append"
            assert ledger.unanswered >= 1, "no command was in flight when the API died"
            assert not [code for code in ledger.statuses if code >= 500], ledger.statuses

            log = whole_commands(log_events(env))
            incidents = {str(i) for i in log["incidents"]}
            users_in_log = {str(u) for u in log["users"]}
            moves = {str(i): m for i, m in log["moves"].items()}
            # Every acknowledged command is there; anything more came from a request left unanswered.
            assert set(ledger.incidents) <= incidents and ledger.users <= users_in_log
            unseen = len(incidents - set(ledger.incidents)) + len(users_in_log - ledger.users)
            for incident, acknowledged in ledger.moves.items():
                logged = moves.get(incident, [])
                assert logged[:len(acknowledged)] == acknowledged, (incident, logged, acknowledged)
                unseen += len(logged) - len(acknowledged)
            for incident in incidents - set(ledger.moves):
                unseen += len(moves.get(incident, []))
            assert unseen <= ledger.unanswered, (unseen, ledger.unanswered)

            wait_for_projections(url)
            assert_rebuild_changes_nothing(url, env)
            assert_incidents_show_the_log(api_url, owners, ledger, log["moves"])
