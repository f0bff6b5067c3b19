-- opsc-events-postgres, migration 1: the outbox and the inbox.

-- One row per staged event, written in the service's own transaction. `id` orders the rows of a
-- stream: the relay publishes a stream's unsent rows by `id`, one relay per stream at a time
-- (an advisory lock), so a transaction committed before another stages is published first.
CREATE TABLE opsc_outbox (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream     TEXT        NOT NULL,
    event_id   UUID        NOT NULL,
    event_type TEXT        NOT NULL,
    -- The entry's fields, encoded at staging (see `entry.rs`): the relay needs no Rust type.
    entry      BYTEA       NOT NULL,
    staged_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set when the relay appended the row to Redis (or gave up on an unreadable row).
    sent_at    TIMESTAMPTZ,
    -- The Redis entry id it was appended as.
    entry_id   TEXT,
    -- Why the row was not published (an unreadable row); NULL for a published one.
    error      TEXT
);

-- What the relay reads: unsent rows of one stream in order; small, since sent rows leave it.
CREATE INDEX opsc_outbox_unsent ON opsc_outbox (stream, id) WHERE sent_at IS NULL;
-- What retention deletes.
CREATE INDEX opsc_outbox_sent ON opsc_outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Wakes the relays when a transaction that staged rows commits (NOTIFY is delivered at commit,
-- never for a rolled-back transaction, and once per transaction however many rows it staged).
CREATE FUNCTION opsc_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('opsc_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER opsc_outbox_notify AFTER INSERT ON opsc_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION opsc_outbox_notify();

-- One row per event a consumer group applied, written in the handler's own transaction.
CREATE TABLE opsc_inbox (
    consumer_group TEXT        NOT NULL,
    event_id       UUID        NOT NULL,
    stream         TEXT        NOT NULL,
    handled_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX opsc_inbox_handled_at ON opsc_inbox (handled_at);
