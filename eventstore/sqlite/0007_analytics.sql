-- Read models of the analytics projection: every LLM call and every hypothesis generation,
-- enough to recompute each figure of /analytics exactly. Money is decimal text (exact), never float.
CREATE TABLE analytics_investigations (
    investigation_id  UUID PRIMARY KEY,
    incident_id       UUID NOT NULL,
    project_id        UUID NOT NULL,
    tenant_id         UUID NOT NULL
);

CREATE TABLE llm_requests (
    position           INTEGER PRIMARY KEY,
    incident_id        UUID NOT NULL,
    run                INTEGER NOT NULL,
    project_id         UUID NOT NULL,
    tenant_id          UUID NOT NULL,
    model              TEXT NOT NULL,
    request_type       TEXT NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    cost_usd           TEXT NOT NULL,
    saved_usd          TEXT NOT NULL,
    cached             INTEGER NOT NULL,
    success            INTEGER NOT NULL,
    latency_ms         REAL NOT NULL,
    occurred_at        TIMESTAMP NOT NULL
);
CREATE INDEX llm_requests_project_time_idx ON llm_requests (project_id, occurred_at);
CREATE INDEX llm_requests_incident_idx ON llm_requests (incident_id);

CREATE TABLE hypothesis_generations (
    position     INTEGER PRIMARY KEY,
    incident_id  UUID NOT NULL,
    run          INTEGER NOT NULL,
    project_id   UUID NOT NULL,
    engine       TEXT NOT NULL,
    cached       INTEGER NOT NULL,
    occurred_at  TIMESTAMP NOT NULL
);
CREATE INDEX hypothesis_generations_project_time_idx ON hypothesis_generations (project_id, occurred_at);
