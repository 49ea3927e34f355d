"""A PostgreSQL cluster of a test's own, on a free port, so the shared one is never stopped."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.server import free_port

__all__ = ["OwnPostgres", "own_postgres"]


def _bin(name: str) -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not versions:
        raise RuntimeError("PostgreSQL server binaries are missing under /usr/lib/postgresql")
    return str(versions[-1] / name)


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=60)


@dataclass
class OwnPostgres:
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://root@127.0.0.1:{self.port}/copilot"

    def start(self) -> None:
        done = _as_postgres(_bin("pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.data / "server.log"),
                            "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1", "start")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}")

    def stop(self) -> None:
        _as_postgres(_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", "immediate", "stop")


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    # Outside pytest's private temp tree, which the postgres user cannot enter.
    workdir = Path(tempfile.mkdtemp(prefix="copilot-pg-"))
    data = workdir / "pgdata"
    data.mkdir()
    shutil.chown(workdir, "postgres")
    shutil.chown(data, "postgres")
    init = _as_postgres(_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "root", "--no-sync")
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed: {init.stdout}{init.stderr}")
    cluster = OwnPostgres(data, free_port())
    cluster.start()
    try:
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "root", "-d", "postgres", "-c",
                        "CREATE DATABASE copilot"], check=True, capture_output=True, timeout=30)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
