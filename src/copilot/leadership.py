"""One active worker of a kind at a time on PostgreSQL: an advisory lock held for the worker's lifetime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["hold_advisory_lock"]


async def hold_advisory_lock(conninfo: str, keys: Sequence[int], stopping: Callable[[], bool],
                             retry: float = 2.0) -> tuple[Any, int]:
    """Wait until this process holds one of the locks `keys`, tried in order; return the connection
    that holds it (close it to let go) and the index of the key it holds (-1 if it stopped first).

    A standby waits here and takes over within `retry` seconds of a holder's death, when
    PostgreSQL drops the dead connection and with it the lock.
    """
    import psycopg

    conn: Any = await asyncio.to_thread(lambda: psycopg.connect(conninfo, autocommit=True))
    while not stopping():
        for index, key in enumerate(keys):
            row = await asyncio.to_thread(_try_lock, conn, key)
            if row and row[0]:
                return conn, index
        await asyncio.sleep(retry)
    return conn, -1


def _try_lock(conn: Any, key: int) -> Any:
    return conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
