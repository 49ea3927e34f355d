"""Seed a project with many incidents, or one incident with a long history, straight into the log.

`python bench/seed.py incidents DATABASE_URL PROJECT_ID COUNT` writes COUNT incidents of an
existing project into the log (see seed_incidents), so the read models are then built by the
projector or by `copilot projections rebuild` exactly as for incidents declared through the API.
`... history DATABASE_URL INCIDENT_ID COUNT` appends COUNT severity changes to one incident.
Prints one JSON line: what it wrote and how fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg

from copilot.commands.store import EventStore, build_event_store
from copilot.domain.incident import SEVERITIES, Incident
from copilot.domain.project import Project
from copilot.settings import load_settings

CHUNK = 2000


def seed_incidents(store: EventStore, project_id: UUID, count: int, database_url: str) -> int:
    """COUNT `Incident.Detected` events for the project, written with COPY.

    One event is made by the domain and turned into a stored event by the library's own mapper;
    every row is that event with its id, title, service, severity and time substituted, so the
    log holds exactly what the application would have written, a million rows in seconds.
    """
    project = store.get(Project, project_id)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    template = Incident(tenant_id=project.tenant_id, project_id=project_id, title="seeded incident 0000000",
                        description="bench data", service_name="svc-00", severity="low",
                        detected_at=start, detected_by=None)
    stored = store.app.mapper.to_stored_event(template.collect_events()[0])
    stamp = start.isoformat().encode()
    with psycopg.connect(database_url, autocommit=False) as conn, conn.cursor() as cur, cur.copy(
            "COPY copilot_events (originator_id, originator_version, topic, state) FROM STDIN") as copy:
        for n in range(count):
            when = (start + timedelta(seconds=n)).isoformat().encode()
            state = (stored.state.replace(b"seeded incident 0000000", b"seeded incident %07d" % n)
                     .replace(b'"svc-00"', b'"svc-%02d"' % (n % 50))
                     .replace(b'"low"', b'"%s"' % SEVERITIES[n % len(SEVERITIES)].encode())
                     .replace(stamp, when))
            copy.write_row((uuid4(), 1, stored.topic, state))
    return count


def seed_history(store: EventStore, incident_id: UUID, count: int) -> int:
    """COUNT severity changes of one incident, through the domain, CHUNK per append."""
    written = 0
    while written < count:
        incident = store.get(Incident, incident_id)
        steps = min(CHUNK, count - written)
        for _ in range(steps):
            # Alternate between two severities so every call records a change.
            incident.change_severity("low" if incident.severity != "low" else "high", by=None)
        store.append(incident)
        written += steps
    return written


def main() -> int:
    kind, url, target, count = sys.argv[1], sys.argv[2], UUID(sys.argv[3]), int(sys.argv[4])
    settings = load_settings({**os.environ, "COPILOT_DATABASE_URL": url,
                              "COPILOT_SECRET_KEY": os.environ.get("COPILOT_SECRET_KEY", "x" * 40)})
    store = build_event_store(settings)
    started = time.perf_counter()
    try:
        if kind == "incidents":
            written = seed_incidents(store, target, count, url)
        else:
            written = seed_history(store, target, count)
    finally:
        store.close()
    seconds = time.perf_counter() - started
    print(json.dumps({"kind": kind, "written": written, "seconds": round(seconds, 2),
                      "per_second": round(written / seconds)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
