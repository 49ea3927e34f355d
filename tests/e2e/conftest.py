"""The server started as a user starts it: `.venv/bin/copilot serve`, configured by environment only.

One server per backend is shared by the whole e2e session (tests keep to their own tenants);
`disposable_server` gives a test a server of its own when what it sends may break it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.e2e.api", "tests.e2e.server")

from tests.e2e.api import Users  # noqa: E402 - imported after registering it for assertion rewriting
from tests.e2e.server import Server, running_server  # noqa: E402


class ServerPool:
    """At most one shared server per backend, started on first use, stopped at the end of the session."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.servers: dict[str, Server] = {}
        self.stack = ExitStack()

    def get(self, backend: str) -> Server:
        if backend not in self.servers:
            self.servers[backend] = self.stack.enter_context(running_server(backend, self.workdir / backend))
        server = self.servers[backend]
        assert server.process.poll() is None, f"the shared {backend} server died:\n{server.output()}"
        return server


@pytest.fixture(scope="session")
def server_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory.mktemp("e2e-servers"))
    with pool.stack:
        yield pool


@pytest.fixture
def server(backend: str, server_pool: ServerPool) -> Server:
    """The shared running server of this test's backend."""
    return server_pool.get(backend)


@pytest.fixture
def disposable_server(backend: str, tmp_path: Path) -> Iterator[Server]:
    """A server of this test's own, for input that may leave a server unusable."""
    with running_server(backend, tmp_path / "server") as own:
        yield own


@pytest.fixture
def users(server: Server) -> Iterator[Users]:
    with Users(server.api_url) as factory:
        yield factory
