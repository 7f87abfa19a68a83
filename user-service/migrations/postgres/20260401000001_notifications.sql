-- Notifications of readers (one per circulation event that concerns them: the event id makes
-- storing it idempotent), and the e-mail of each, sent from this table by the mailer.
CREATE TABLE IF NOT EXISTS notifications (
    id              BIGSERIAL PRIMARY KEY,
    event_id        TEXT      NOT NULL UNIQUE,
    user_id         BIGINT    NOT NULL,
    kind            TEXT      NOT NULL,
    book_id         BIGINT    NOT NULL,
    title           TEXT      NOT NULL,
    author          TEXT      NOT NULL,
    message         TEXT      NOT NULL,
    loan_id         BIGINT,
    hold_id         BIGINT,
    due_at          TIMESTAMP,
    pickup_deadline TIMESTAMP,
    occurred_at     TIMESTAMP NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    read_at         TIMESTAMP
);
CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, id);
CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (user_id, id) WHERE read_at IS NULL;

-- Written in the notification's transaction; the mailer leases due rows, sends, and marks them
-- sent (or, on a transient failure, schedules the next attempt; on a permanent refusal, failed).
CREATE TABLE IF NOT EXISTS outgoing_mail (
    notification_id BIGINT    PRIMARY KEY REFERENCES notifications (id),
    to_address      TEXT      NOT NULL,
    subject         TEXT      NOT NULL,
    body            TEXT      NOT NULL,
    attempts        INTEGER   NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_owner     TEXT,
    lease_until     TIMESTAMP,
    last_error      TEXT,
    sent_at         TIMESTAMP,
    failed_at       TIMESTAMP
);
CREATE INDEX IF NOT EXISTS outgoing_mail_due ON outgoing_mail (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
