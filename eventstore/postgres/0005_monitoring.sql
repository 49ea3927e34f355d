-- Read models of the monitoring projection: integrations, alerts, and each project's correlation rule.
ALTER TABLE projects ADD COLUMN alert_min_severity text NOT NULL DEFAULT 'high';
ALTER TABLE projects ADD COLUMN alert_window_minutes integer NOT NULL DEFAULT 30;

CREATE TABLE integrations (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL,
    project_id           uuid NOT NULL,
    name                 text NOT NULL,
    type                 text NOT NULL,
    config               text NOT NULL,          -- JSON object
    has_credentials      boolean NOT NULL,
    enabled              boolean NOT NULL,
    last_test_at         timestamptz,
    last_test_success    boolean,
    last_test_detail     text,
    created_by           uuid NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    deleted_at           timestamptz
);
CREATE INDEX integrations_project_idx ON integrations (project_id, created_at);

CREATE TABLE alerts (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    project_id      uuid NOT NULL,
    integration_id  uuid NOT NULL,
    fingerprint     text NOT NULL,
    name            text NOT NULL,
    severity        text NOT NULL,
    service         text NOT NULL,
    description     text NOT NULL,
    labels          text NOT NULL,               -- JSON object
    annotations     text NOT NULL,               -- JSON object
    status          text NOT NULL,               -- 'firing' or 'resolved'
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz,
    incident_id     uuid,
    fired_count     integer NOT NULL DEFAULT 1,  -- episodes: a re-fire after resolution counts again
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX alerts_project_idx ON alerts (project_id, starts_at DESC, id DESC);
CREATE INDEX alerts_project_status_idx ON alerts (project_id, status, starts_at DESC);
CREATE INDEX alerts_incident_idx ON alerts (incident_id);
