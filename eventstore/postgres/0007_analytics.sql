-- Read models of the analytics projection: every LLM call and every hypothesis generation,
-- enough to recompute each figure of /analytics exactly. Money is numeric, never float.
CREATE TABLE analytics_investigations (
    investigation_id  uuid PRIMARY KEY,
    incident_id       uuid NOT NULL,
    project_id        uuid NOT NULL,
    tenant_id         uuid NOT NULL
);

CREATE TABLE llm_requests (
    position           bigint PRIMARY KEY,
    incident_id        uuid NOT NULL,
    run                integer NOT NULL,
    project_id         uuid NOT NULL,
    tenant_id          uuid NOT NULL,
    model              text NOT NULL,
    request_type       text NOT NULL,
    prompt_tokens      integer NOT NULL,
    completion_tokens  integer NOT NULL,
    cost_usd           numeric(20, 12) NOT NULL,
    saved_usd          numeric(20, 12) NOT NULL,
    cached             boolean NOT NULL,
    success            boolean NOT NULL,
    latency_ms         double precision NOT NULL,
    occurred_at        timestamptz NOT NULL
);
CREATE INDEX llm_requests_project_time_idx ON llm_requests (project_id, occurred_at);
CREATE INDEX llm_requests_incident_idx ON llm_requests (incident_id);

CREATE TABLE hypothesis_generations (
    position     bigint PRIMARY KEY,
    incident_id  uuid NOT NULL,
    run          integer NOT NULL,
    project_id   uuid NOT NULL,
    engine       text NOT NULL,
    cached       boolean NOT NULL,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX hypothesis_generations_project_time_idx ON hypothesis_generations (project_id, occurred_at);
