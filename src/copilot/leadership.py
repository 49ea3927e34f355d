"""One active worker of a kind at a time on PostgreSQL: an advisory lock held for the worker's lifetime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["hold_advisory_lock"]


async def hold_advisory_lock(conninfo: str, key: int, stopping: Callable[[], bool], retry: float = 2.0) -> Any:
    """Wait until this process holds lock `key`; return the connection that holds it (close it to let go).

    A standby waits here and takes over within `retry` seconds of the holder's death, when
    PostgreSQL drops the dead connection and with it the lock.
    """
    import psycopg

    conn: Any = await asyncio.to_thread(lambda: psycopg.connect(conninfo, autocommit=True))
    while not stopping():
        row = await asyncio.to_thread(
            lambda: conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone())
        if row and row[0]:
            return conn
        await asyncio.sleep(retry)
    return conn
