-- Notifications and their e-mails (same meaning as migrations/postgres).
CREATE TABLE IF NOT EXISTS notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    user_id         INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    book_id         INTEGER NOT NULL,
    title           TEXT    NOT NULL,
    author          TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    loan_id         INTEGER,
    hold_id         INTEGER,
    due_at          TEXT,
    pickup_deadline TEXT,
    occurred_at     TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    read_at         TEXT
);
CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, id);
CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (user_id, id) WHERE read_at IS NULL;

CREATE TABLE IF NOT EXISTS outgoing_mail (
    notification_id INTEGER PRIMARY KEY REFERENCES notifications (id),
    to_address      TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    last_error      TEXT,
    sent_at         TEXT,
    failed_at       TEXT
);
CREATE INDEX IF NOT EXISTS outgoing_mail_due ON outgoing_mail (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
