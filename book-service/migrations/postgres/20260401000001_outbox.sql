-- Circulation events on their way to the event stream (the transactional outbox), the relay's
-- lease, and what the notice scheduler has already announced for each loan.

-- Written in the same transaction as the change that caused the event; published by the relay
-- in id order, then marked. Each title's events are written under the title's lock, so within
-- a title the id order is the commit order.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    -- The event's id: the stream's message id.
    event_id     TEXT      NOT NULL UNIQUE,
    kind         TEXT      NOT NULL,
    title_id     BIGINT    NOT NULL,
    user_id      BIGINT    NOT NULL,
    -- The event as published (JSON).
    body         TEXT      NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    -- When the stream acknowledged it (wall-clock time); NULL while it waits.
    published_at TIMESTAMP
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- One relay publishes at a time, whatever the number of instances: the one holding this lease.
CREATE TABLE outbox_relay (
    name       TEXT      PRIMARY KEY,
    holder     TEXT,
    expires_at TIMESTAMP NOT NULL
);
INSERT INTO outbox_relay (name, holder, expires_at) VALUES ('outbox', NULL, '1970-01-01 00:00:00');

-- Set by the scheduler in the transaction that writes the notice, so each is sent once; a
-- renewal clears them (the new due date gets its own notices).
ALTER TABLE loans ADD COLUMN due_soon_noticed_at TIMESTAMP;
ALTER TABLE loans ADD COLUMN overdue_noticed_at TIMESTAMP;
CREATE INDEX loans_due_unnoticed ON loans (due_at) WHERE returned_at IS NULL AND overdue_noticed_at IS NULL;
