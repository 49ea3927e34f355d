"""One active worker of a kind at a time on PostgreSQL: an advisory lock held for the worker's lifetime."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Agreement", "hold_advisory_lock"]

log = logging.getLogger(__name__)

# Advisory locks as pg_locks shows them: a bigint key is split into classid (high 32 bits) and
# objid (low 32 bits), with objsubid 1. pg_locks shows every database's; a key is this one's.
_HELD_IN_FAMILY = (
    "SELECT DISTINCT (classid::int8 << 32) | objid::int8 AS key FROM pg_locks"
    " WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND (classid::int8 << 32) | objid::int8 BETWEEN %s AND %s"
)


@dataclass(frozen=True)
class Agreement:
    """Workers that must run under one setting at a time (say, how many shares the work is split
    into): each holds the setting's key of `family` in shared mode while it leads or waits to, and
    one that finds another key of the family held stands by instead of leading (`describe` tells
    the log what such a key means)."""

    key: int
    family: range
    describe: Callable[[int], str]


async def hold_advisory_lock(conninfo: str, keys: Sequence[int], stopping: Callable[[], bool],
                             retry: float = 2.0, agreement: Agreement | None = None) -> tuple[Any, int]:
    """Wait until this process holds one of the locks `keys`, tried in order; return the connection
    that holds it (close it to let go) and the index of the key it holds (-1 if it stopped first).

    A standby waits here and takes over within about `retry` seconds of a holder's death, when
    PostgreSQL drops the dead connection and with it the lock. With an `agreement`, it waits too
    while workers of another setting hold theirs, and leads once they have all stopped.
    """
    import psycopg

    conn: Any = await asyncio.to_thread(lambda: psycopg.connect(conninfo, autocommit=True))
    agreed = agreement is None
    told: frozenset[int] = frozenset()
    try:
        while not stopping():
            if not agreed:
                assert agreement is not None
                rivals = await asyncio.to_thread(_join, conn, agreement)
                agreed = not rivals
                if rivals and rivals != told:
                    log.error("%s; this one stands by until they stop",
                              ", ".join(map(agreement.describe, sorted(rivals))))
                told = rivals
            if agreed:
                for index, key in enumerate(keys):
                    row = await asyncio.to_thread(_try_lock, conn, key)
                    if row and row[0]:
                        return conn, index
            # Jittered: two workers of different settings starting together must not keep meeting.
            await asyncio.sleep(retry * random.uniform(0.75, 1.25))
    except BaseException:  # cancelled or the connection failed: let go of whatever it holds
        await asyncio.to_thread(conn.close)
        raise
    return conn, -1


def _try_lock(conn: Any, key: int) -> Any:
    return conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()


def _join(conn: Any, agreement: Agreement) -> frozenset[int]:
    """Take the setting's shared key and keep it, unless another key of its family is held: then
    let it go again and return the keys held."""
    conn.execute("SELECT pg_advisory_lock_shared(%s)", (agreement.key,))
    held = {row[0] for row in conn.execute(_HELD_IN_FAMILY, (agreement.family.start, agreement.family.stop - 1))}
    rivals = frozenset(held - {agreement.key})
    if rivals:
        conn.execute("SELECT pg_advisory_unlock_shared(%s)", (agreement.key,))
    return rivals
