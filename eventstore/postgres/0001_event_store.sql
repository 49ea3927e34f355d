-- The ordered log of every event, as the eventsourcing library's PostgreSQL recorder uses it.
CREATE TYPE stored_event_uuid AS (
    originator_id uuid,
    originator_version bigint,
    topic text,
    state bytea
);

CREATE TABLE copilot_events (
    originator_id      uuid    NOT NULL,
    originator_version bigint  NOT NULL,
    topic              text,
    state              bytea,
    notification_id    bigserial,
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);

-- The log position: readers follow the log in this order.
CREATE UNIQUE INDEX copilot_events_notification_id_idx ON copilot_events (notification_id ASC);

-- Where each projection has got to; written in the same transaction as its rows.
CREATE TABLE projection_tracking (
    name     text PRIMARY KEY,
    position bigint NOT NULL
);
