-- The library: titles and their copies, loans, holds, the readers (one row each, locked by
-- every command of theirs) and the commands already applied (idempotency).
-- Timestamps are UTC without zone, computed in Rust.

CREATE TABLE titles (
    id          BIGSERIAL PRIMARY KEY,
    title       TEXT      NOT NULL,
    author      TEXT      NOT NULL,
    -- ISBN-13, digits only.
    isbn        TEXT      NOT NULL,
    -- Normalised in Rust (lowercase, diacritics stripped, punctuation as spaces): title,
    -- author, ISBN-13 and ISBN-10; what `q` is matched against.
    search_text TEXT      NOT NULL,
    -- The normalised author, what `author` is matched against.
    author_key  TEXT      NOT NULL,
    -- The normalised title: the order of search results.
    sort_key    TEXT      NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX titles_isbn ON titles (isbn);
CREATE INDEX titles_sort ON titles (sort_key, id);

-- Trigram indexes make `LIKE '%word%'` on the normalised text an index scan. pg_trgm is a
-- trusted extension (PostgreSQL 13+): the owner of the database may create it. It is put in
-- `public` (or used wherever it already is) so that dropping a service's schema never drops it.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
DO $$
DECLARE
    ext_schema TEXT;
BEGIN
    SELECT n.nspname INTO ext_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    EXECUTE format('CREATE INDEX titles_search_trgm ON titles USING gin (search_text %I.gin_trgm_ops)', ext_schema);
    EXECUTE format('CREATE INDEX titles_author_trgm ON titles USING gin (author_key %I.gin_trgm_ops)', ext_schema);
END
$$;

CREATE TABLE copies (
    id         BIGSERIAL PRIMARY KEY,
    title_id   BIGINT    NOT NULL REFERENCES titles (id),
    -- available: on the shelf for anyone; on_loan: lent; on_hold: set aside for a ready hold.
    status     TEXT      NOT NULL CHECK (status IN ('available', 'on_loan', 'on_hold')),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX copies_title_status ON copies (title_id, status);

CREATE TABLE loans (
    id          BIGSERIAL PRIMARY KEY,
    copy_id     BIGINT    NOT NULL REFERENCES copies (id),
    title_id    BIGINT    NOT NULL REFERENCES titles (id),
    user_id     BIGINT    NOT NULL,
    borrowed_at TIMESTAMP NOT NULL,
    due_at      TIMESTAMP NOT NULL,
    renewals    BIGINT    NOT NULL DEFAULT 0,
    returned_at TIMESTAMP
);
-- The last line of defence against lending a copy twice, or a title twice to one reader.
CREATE UNIQUE INDEX loans_one_active_per_copy ON loans (copy_id) WHERE returned_at IS NULL;
CREATE UNIQUE INDEX loans_one_active_per_reader_title ON loans (user_id, title_id) WHERE returned_at IS NULL;
CREATE INDEX loans_user ON loans (user_id, id);
CREATE INDEX loans_active_due ON loans (user_id, due_at) WHERE returned_at IS NULL;

CREATE TABLE holds (
    id              BIGSERIAL PRIMARY KEY,
    title_id        BIGINT    NOT NULL REFERENCES titles (id),
    user_id         BIGINT    NOT NULL,
    state           TEXT      NOT NULL CHECK (state IN ('waiting', 'ready', 'fulfilled', 'cancelled', 'expired')),
    placed_at       TIMESTAMP NOT NULL,
    -- The copy set aside while ready.
    copy_id         BIGINT    REFERENCES copies (id),
    ready_at        TIMESTAMP,
    pickup_deadline TIMESTAMP,
    closed_at       TIMESTAMP
);
-- One active hold per reader and title; one ready hold per copy.
CREATE UNIQUE INDEX holds_one_active_per_reader_title ON holds (user_id, title_id) WHERE state IN ('waiting', 'ready');
CREATE UNIQUE INDEX holds_one_ready_per_copy ON holds (copy_id) WHERE state = 'ready';
-- The waiting list of a title, first come first served.
CREATE INDEX holds_queue ON holds (title_id, id) WHERE state = 'waiting';
CREATE INDEX holds_pickup ON holds (pickup_deadline) WHERE state = 'ready';
CREATE INDEX holds_user ON holds (user_id, id) WHERE state IN ('waiting', 'ready');

-- One row per reader who ever sent a command: each command of theirs locks it first, so the
-- loan limit and the one-loan-per-title rule hold under concurrent commands.
CREATE TABLE readers (
    user_id       BIGINT    PRIMARY KEY,
    first_seen_at TIMESTAMP NOT NULL
);

-- Commands applied, written in the same transaction as their change: a redelivery or a retry
-- with the same Idempotency-Key is answered with the stored reply instead of being applied again.
CREATE TABLE processed_commands (
    message_id   TEXT      PRIMARY KEY,
    user_id      BIGINT    NOT NULL,
    kind         TEXT      NOT NULL,
    -- The command's kind and arguments: the same key with another request is refused.
    fingerprint  TEXT      NOT NULL,
    reply        TEXT,
    processed_at TIMESTAMP NOT NULL
);
CREATE INDEX processed_commands_age ON processed_commands (processed_at);
