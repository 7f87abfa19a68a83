-- Requests to end every session of a user, written in the same transaction as the change that
-- needs them (a role change). The command line may change a role from another process than
-- the one holding the sessions, so the request is durable: every user-service instance looks
-- for pending ones and carries them out (see src/revocations.rs).
CREATE TABLE IF NOT EXISTS session_revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    done_at TIMESTAMP
);

CREATE INDEX IF NOT EXISTS session_revocations_pending
    ON session_revocations (id) WHERE done_at IS NULL;
