"""The floor: the thinnest app that does what a request must — decode, one durable INSERT, answer;
one SELECT of 10 rows for a list. Served the same way as the copilot (litestar on uvicorn)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
from litestar import Litestar, get, post
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

DSN = os.environ["FLOOR_DATABASE_URL"]
pool = AsyncConnectionPool(DSN, min_size=4, max_size=20, open=False, kwargs={"row_factory": dict_row})


class IncidentCreate(msgspec.Struct):
    title: str
    service_name: str
    severity: str
    description: str = ""


class Incident(msgspec.Struct):
    id: UUID
    title: str
    description: str
    service_name: str
    severity: str
    state: str
    detected_at: datetime


@post("/incidents", status_code=200)
async def create(data: IncidentCreate) -> Incident:
    incident = Incident(id=uuid4(), title=data.title, description=data.description, service_name=data.service_name,
                        severity=data.severity, state="detected", detected_at=datetime.now(UTC))
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO incidents (id, title, description, service_name, severity, state, detected_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (incident.id, incident.title, incident.description, incident.service_name, incident.severity,
             incident.state, incident.detected_at))
    return incident


@get("/incidents")
async def list_incidents() -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT * FROM incidents ORDER BY detected_at DESC LIMIT 10")
        return await cursor.fetchall()


async def startup() -> None:
    await pool.open()
    async with pool.connection() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS incidents (id uuid PRIMARY KEY, title text, description text,"
            " service_name text, severity text, state text, detected_at timestamptz)")
        await conn.execute("CREATE INDEX IF NOT EXISTS incidents_detected ON incidents (detected_at DESC)")


async def shutdown() -> None:
    await pool.close()


app = Litestar([create, list_incidents], on_startup=[startup], on_shutdown=[shutdown], openapi_config=None,
               logging_config=None)
