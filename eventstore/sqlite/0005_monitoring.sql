-- Read models of the monitoring projection: integrations, alerts, and each project's correlation rule.
ALTER TABLE projects ADD COLUMN alert_min_severity TEXT NOT NULL DEFAULT 'high';
ALTER TABLE projects ADD COLUMN alert_window_minutes INTEGER NOT NULL DEFAULT 30;

CREATE TABLE integrations (
    id                   UUID PRIMARY KEY,
    tenant_id            UUID NOT NULL,
    project_id           UUID NOT NULL,
    name                 TEXT NOT NULL,
    type                 TEXT NOT NULL,
    config               TEXT NOT NULL,          -- JSON object
    has_credentials      INTEGER NOT NULL,
    enabled              INTEGER NOT NULL,
    last_test_at         TIMESTAMP,
    last_test_success    INTEGER,
    last_test_detail     TEXT,
    created_by           UUID NOT NULL,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    deleted_at           TIMESTAMP
);
CREATE INDEX integrations_project_idx ON integrations (project_id, created_at);

CREATE TABLE alerts (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL,
    project_id      UUID NOT NULL,
    integration_id  UUID NOT NULL,
    fingerprint     TEXT NOT NULL,
    name            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    service         TEXT NOT NULL,
    description     TEXT NOT NULL,
    labels          TEXT NOT NULL,               -- JSON object
    annotations     TEXT NOT NULL,               -- JSON object
    status          TEXT NOT NULL,               -- 'firing' or 'resolved'
    starts_at       TIMESTAMP NOT NULL,
    ends_at         TIMESTAMP,
    incident_id     UUID,
    fired_count     INTEGER NOT NULL DEFAULT 1,  -- episodes: a re-fire after resolution counts again
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);
CREATE INDEX alerts_project_idx ON alerts (project_id, starts_at DESC, id DESC);
CREATE INDEX alerts_project_status_idx ON alerts (project_id, status, starts_at DESC);
CREATE INDEX alerts_incident_idx ON alerts (incident_id);
