-- Who this event store is: log positions are only unique within one store, so messages that
-- leave it (Nats-Msg-Id) are named "<store id>-<position>".
CREATE TABLE store_identity (
    id         TEXT PRIMARY KEY,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO store_identity (id) VALUES (lower(hex(randomblob(16))));
