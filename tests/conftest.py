"""Shared test plumbing: settings per backend, a fresh PostgreSQL database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from copilot.settings import Settings, load_settings

PG_HOST = os.environ.get("COPILOT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("COPILOT_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("COPILOT_TEST_PG_USER", "root")
NATS_URL = os.environ.get("COPILOT_TEST_NATS_URL", "nats://127.0.0.1:4222")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
BACKENDS = ("sqlite", "postgres")


def _admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    try:
        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as error:
        # Never a skip: a missing service is a failed run (CI=true or not).
        pytest.fail(f"PostgreSQL is required at {PG_HOST}:{PG_PORT} and is not reachable: {error}")


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database for one test, yield its URL, drop it afterwards."""
    name = f"copilot_test_{uuid.uuid4().hex[:12]}"
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with _admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_env(backend: str, var_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {"COPILOT_VAR_DIR": str(var_dir), "COPILOT_SECRET_KEY": TEST_SECRET, "COPILOT_LOG_LEVEL": "WARNING"}
    if backend == "postgres":
        assert database_url is not None
        env["COPILOT_DATABASE_URL"] = database_url
        env["COPILOT_NATS_URL"] = NATS_URL
    env.update(extra)
    return env


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str) -> Iterator[str | None]:
    if backend == "postgres":
        with fresh_postgres_database() as url:
            yield url
    else:
        yield None


@pytest.fixture
def settings(backend: str, database_url: str | None, tmp_path: Path) -> Settings:
    return load_settings(settings_env(backend, tmp_path / "var", database_url))
