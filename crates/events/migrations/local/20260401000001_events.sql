-- The in-process event stream (one-process mode): what the JetStream streams and durable
-- consumers are when NATS_URL is unset. Times are Unix milliseconds.

-- The stream: append-only, in publish order (seq). A second publish of the same event id is
-- dropped, as JetStream's duplicate window does (here for as long as the event is kept).
CREATE TABLE stream_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    subject      TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    stored_at_ms INTEGER NOT NULL
);
CREATE INDEX stream_events_age ON stream_events (stored_at_ms);

-- Each durable consumer's position: the next sequence it has never been handed.
CREATE TABLE stream_consumers (
    name     TEXT    PRIMARY KEY,
    next_seq INTEGER NOT NULL
);

-- Events handed to a consumer and not yet acknowledged: the ack floor is just below the
-- lowest of them. A lease (visible_at_ms) runs out when the consumer died or asked for a
-- pause; the event is then handed out again.
CREATE TABLE stream_pending (
    consumer      TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    deliveries    INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    lease_owner   TEXT,
    PRIMARY KEY (consumer, seq)
);
CREATE INDEX stream_pending_visible ON stream_pending (consumer, visible_at_ms, seq);

CREATE TABLE stream_dead (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer    TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    subject     TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    deliveries  INTEGER NOT NULL,
    died_at_ms  INTEGER NOT NULL,
    UNIQUE (consumer, seq)
);
