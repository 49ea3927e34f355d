-- Read models of the investigations projection.
CREATE TABLE changes (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    project_id      uuid NOT NULL,
    service_name    text NOT NULL,
    kind            text NOT NULL,           -- deploy, config, feature_flag, infra
    description     text NOT NULL,
    version         text,
    occurred_at     timestamptz NOT NULL,
    recorded_by     uuid,
    integration_id  uuid,
    created_at      timestamptz NOT NULL
);
CREATE INDEX changes_project_time_idx ON changes (project_id, occurred_at DESC);

-- The latest run of each incident's investigation.
CREATE TABLE investigations (
    incident_id       uuid PRIMARY KEY,
    investigation_id  uuid NOT NULL UNIQUE,
    project_id        uuid NOT NULL,
    run           integer NOT NULL,
    status        text NOT NULL,             -- running, completed, failed
    trigger       text NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    engine        text,
    cached        boolean
);

CREATE TABLE investigation_steps (
    incident_id  uuid NOT NULL,
    run          integer NOT NULL,
    step         text NOT NULL,
    position     integer NOT NULL,          -- order of the step in the workflow
    status       text NOT NULL,             -- running, completed, skipped, failed
    started_at   timestamptz,
    finished_at  timestamptz,
    summary      text,
    findings     text,                      -- JSON
    PRIMARY KEY (incident_id, run, step)
);

CREATE TABLE hypotheses (
    id                      uuid PRIMARY KEY,
    incident_id             uuid NOT NULL,
    project_id              uuid NOT NULL,
    run                     integer NOT NULL,
    rank                    integer NOT NULL,
    category                text NOT NULL,
    claim                   text NOT NULL,
    description             text NOT NULL,
    confidence_score        double precision NOT NULL,
    confidence_lower        double precision NOT NULL,
    confidence_upper        double precision NOT NULL,
    supporting_evidence     text NOT NULL,  -- JSON list
    contradicting_evidence  text NOT NULL,  -- JSON list
    recommendation          text,
    evidence_fingerprint    text NOT NULL,      -- identical evidence later reuses these hypotheses
    user_feedback           text,
    feedback_comment        text,
    created_at              timestamptz NOT NULL
);
CREATE INDEX hypotheses_incident_idx ON hypotheses (incident_id, run, rank);
CREATE INDEX hypotheses_feedback_idx ON hypotheses (project_id, user_feedback);
CREATE INDEX hypotheses_fingerprint_idx ON hypotheses (project_id, evidence_fingerprint);
