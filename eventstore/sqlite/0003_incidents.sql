-- Snapshots of long-lived aggregates (the eventsourcing library's snapshot store).
CREATE TABLE stored_snapshots (
    originator_id      TEXT,
    originator_version INTEGER,
    topic              TEXT,
    state              BLOB,
    PRIMARY KEY (originator_id, originator_version)
) WITHOUT ROWID;

-- Read models of the incidents projection.
CREATE TABLE incidents (
    id                        UUID PRIMARY KEY,
    tenant_id                 UUID NOT NULL,
    project_id                UUID NOT NULL,
    title                     TEXT NOT NULL,
    description               TEXT NOT NULL,
    service_name              TEXT NOT NULL,
    severity                  TEXT NOT NULL,
    state                     TEXT NOT NULL,
    detected_at               TIMESTAMP NOT NULL,
    detected_by               UUID,
    acknowledged_at           TIMESTAMP,
    investigating_started_at  TIMESTAMP,
    mitigated_at              TIMESTAMP,
    resolved_at               TIMESTAMP,
    learned_at                TIMESTAMP,
    state_since               TIMESTAMP NOT NULL,
    state_changes             INTEGER NOT NULL DEFAULT 0,
    reopen_count              INTEGER NOT NULL DEFAULT 0,
    created_at                TIMESTAMP NOT NULL,
    updated_at                TIMESTAMP NOT NULL
);
-- Listing is always per project, newest detection first, optionally by state or severity.
CREATE INDEX incidents_project_detected_idx ON incidents (project_id, detected_at DESC, id DESC);
CREATE INDEX incidents_project_state_idx ON incidents (project_id, state, detected_at DESC);
CREATE INDEX incidents_project_severity_idx ON incidents (project_id, severity, detected_at DESC);

-- Seconds spent in each state, for stays that have ended.
CREATE TABLE incident_state_time (
    incident_id UUID NOT NULL,
    state       TEXT NOT NULL,
    seconds     REAL NOT NULL,
    PRIMARY KEY (incident_id, state)
);

-- The audit trail: every event of an incident with its log position, actor and change.
CREATE TABLE incident_events (
    position     INTEGER PRIMARY KEY,
    incident_id  UUID NOT NULL,
    type         TEXT NOT NULL,
    occurred_at  TIMESTAMP NOT NULL,
    actor_id     UUID,
    change       TEXT NOT NULL       -- JSON object of what changed
);
CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, position);
