-- The ordered log of every event, as the eventsourcing library's SQLite recorder uses it.
-- The notification id (the log position) is the table's rowid.
CREATE TABLE stored_events (
    originator_id      TEXT,
    originator_version INTEGER,
    topic              TEXT,
    state              BLOB,
    PRIMARY KEY (originator_id, originator_version)
);

-- Where each projection has got to; written in the same transaction as its rows.
CREATE TABLE projection_tracking (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
