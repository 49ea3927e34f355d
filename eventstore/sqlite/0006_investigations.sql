-- Read models of the investigations projection.
CREATE TABLE changes (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL,
    project_id      UUID NOT NULL,
    service_name    TEXT NOT NULL,
    kind            TEXT NOT NULL,           -- deploy, config, feature_flag, infra
    description     TEXT NOT NULL,
    version         TEXT,
    occurred_at     TIMESTAMP NOT NULL,
    recorded_by     UUID,
    integration_id  UUID,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX changes_project_time_idx ON changes (project_id, occurred_at DESC);

-- The latest run of each incident's investigation.
CREATE TABLE investigations (
    incident_id       UUID PRIMARY KEY,
    investigation_id  UUID NOT NULL UNIQUE,
    project_id        UUID NOT NULL,
    run           INTEGER NOT NULL,
    status        TEXT NOT NULL,             -- running, completed, failed
    trigger       TEXT NOT NULL,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    engine        TEXT,
    cached        INTEGER
);

CREATE TABLE investigation_steps (
    incident_id  UUID NOT NULL,
    run          INTEGER NOT NULL,
    step         TEXT NOT NULL,
    position     INTEGER NOT NULL,          -- order of the step in the workflow
    status       TEXT NOT NULL,             -- running, completed, skipped, failed
    started_at   TIMESTAMP,
    finished_at  TIMESTAMP,
    summary      TEXT,
    findings     TEXT,                      -- JSON
    PRIMARY KEY (incident_id, run, step)
);

CREATE TABLE hypotheses (
    id                      UUID PRIMARY KEY,
    incident_id             UUID NOT NULL,
    project_id              UUID NOT NULL,
    run                     INTEGER NOT NULL,
    rank                    INTEGER NOT NULL,
    category                TEXT NOT NULL,
    claim                   TEXT NOT NULL,
    description             TEXT NOT NULL,
    confidence_score        REAL NOT NULL,
    confidence_lower        REAL NOT NULL,
    confidence_upper        REAL NOT NULL,
    supporting_evidence     TEXT NOT NULL,  -- JSON list
    contradicting_evidence  TEXT NOT NULL,  -- JSON list
    recommendation          TEXT,
    evidence_fingerprint    TEXT NOT NULL,      -- identical evidence later reuses these hypotheses
    user_feedback           TEXT,
    feedback_comment        TEXT,
    created_at              TIMESTAMP NOT NULL
);
CREATE INDEX hypotheses_incident_idx ON hypotheses (incident_id, run, rank);
CREATE INDEX hypotheses_feedback_idx ON hypotheses (project_id, user_feedback);
CREATE INDEX hypotheses_fingerprint_idx ON hypotheses (project_id, evidence_fingerprint);
