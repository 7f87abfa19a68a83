-- The transactional outbox, the relay's lease and the notices sent per loan (same meaning as
-- migrations/postgres).

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT    NOT NULL UNIQUE,
    kind         TEXT    NOT NULL,
    title_id     INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    published_at TEXT
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

CREATE TABLE outbox_relay (
    name       TEXT PRIMARY KEY,
    holder     TEXT,
    expires_at TEXT NOT NULL
);
INSERT INTO outbox_relay (name, holder, expires_at) VALUES ('outbox', NULL, '1970-01-01 00:00:00');

ALTER TABLE loans ADD COLUMN due_soon_noticed_at TEXT;
ALTER TABLE loans ADD COLUMN overdue_noticed_at TEXT;
CREATE INDEX loans_due_unnoticed ON loans (due_at) WHERE returned_at IS NULL AND overdue_noticed_at IS NULL;
