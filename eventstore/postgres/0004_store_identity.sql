-- Who this event store is: log positions are only unique within one store, so messages that
-- leave it (Nats-Msg-Id) are named "<store id>-<position>".
CREATE TABLE store_identity (
    id         uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO store_identity (id) VALUES (gen_random_uuid());
