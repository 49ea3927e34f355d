-- Snapshots of long-lived aggregates (the eventsourcing library's snapshot store).
CREATE TABLE copilot_snapshots (
    originator_id      uuid   NOT NULL,
    originator_version bigint NOT NULL,
    topic              text,
    state              bytea,
    PRIMARY KEY (originator_id, originator_version)
);

-- Read models of the incidents projection.
CREATE TABLE incidents (
    id                        uuid PRIMARY KEY,
    tenant_id                 uuid NOT NULL,
    project_id                uuid NOT NULL,
    title                     text NOT NULL,
    description               text NOT NULL,
    service_name              text NOT NULL,
    severity                  text NOT NULL,
    state                     text NOT NULL,
    detected_at               timestamptz NOT NULL,
    detected_by               uuid,
    acknowledged_at           timestamptz,
    investigating_started_at  timestamptz,
    mitigated_at              timestamptz,
    resolved_at               timestamptz,
    learned_at                timestamptz,
    state_since               timestamptz NOT NULL,
    state_changes             integer NOT NULL DEFAULT 0,
    reopen_count              integer NOT NULL DEFAULT 0,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL
);
-- Listing is always per project, newest detection first, optionally by state or severity.
CREATE INDEX incidents_project_detected_idx ON incidents (project_id, detected_at DESC, id DESC);
CREATE INDEX incidents_project_state_idx ON incidents (project_id, state, detected_at DESC);
CREATE INDEX incidents_project_severity_idx ON incidents (project_id, severity, detected_at DESC);

-- Seconds spent in each state, for stays that have ended.
CREATE TABLE incident_state_time (
    incident_id uuid NOT NULL,
    state       text NOT NULL,
    seconds     double precision NOT NULL,
    PRIMARY KEY (incident_id, state)
);

-- The audit trail: every event of an incident with its log position, actor and change.
CREATE TABLE incident_events (
    position     bigint PRIMARY KEY,
    incident_id  uuid NOT NULL,
    type         text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    actor_id     uuid,
    change       text NOT NULL       -- JSON object of what changed
);
CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, position);
