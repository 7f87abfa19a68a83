-- The library (same meaning as migrations/postgres): titles and their copies, loans, holds,
-- readers and the commands already applied. Timestamps are UTC text, computed in Rust.

CREATE TABLE titles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT    NOT NULL,
    author      TEXT    NOT NULL,
    isbn        TEXT    NOT NULL,
    search_text TEXT    NOT NULL,
    author_key  TEXT    NOT NULL,
    sort_key    TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE UNIQUE INDEX titles_isbn ON titles (isbn);
CREATE INDEX titles_sort ON titles (sort_key, id);

-- Substring search over the normalised text: an FTS5 index with the trigram tokenizer, kept in
-- step with `titles` by triggers (an external-content table: the text is stored once).
CREATE VIRTUAL TABLE titles_fts USING fts5(
    search_text, author_key, content = 'titles', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER titles_fts_insert AFTER INSERT ON titles BEGIN
    INSERT INTO titles_fts (rowid, search_text, author_key) VALUES (new.id, new.search_text, new.author_key);
END;
CREATE TRIGGER titles_fts_delete AFTER DELETE ON titles BEGIN
    INSERT INTO titles_fts (titles_fts, rowid, search_text, author_key) VALUES ('delete', old.id, old.search_text, old.author_key);
END;
CREATE TRIGGER titles_fts_update AFTER UPDATE OF search_text, author_key ON titles BEGIN
    INSERT INTO titles_fts (titles_fts, rowid, search_text, author_key) VALUES ('delete', old.id, old.search_text, old.author_key);
    INSERT INTO titles_fts (rowid, search_text, author_key) VALUES (new.id, new.search_text, new.author_key);
END;

CREATE TABLE copies (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    title_id   INTEGER NOT NULL REFERENCES titles (id),
    status     TEXT    NOT NULL CHECK (status IN ('available', 'on_loan', 'on_hold')),
    created_at TEXT    NOT NULL
);
CREATE INDEX copies_title_status ON copies (title_id, status);

CREATE TABLE loans (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    copy_id     INTEGER NOT NULL REFERENCES copies (id),
    title_id    INTEGER NOT NULL REFERENCES titles (id),
    user_id     INTEGER NOT NULL,
    borrowed_at TEXT    NOT NULL,
    due_at      TEXT    NOT NULL,
    renewals    INTEGER NOT NULL DEFAULT 0,
    returned_at TEXT
);
CREATE UNIQUE INDEX loans_one_active_per_copy ON loans (copy_id) WHERE returned_at IS NULL;
CREATE UNIQUE INDEX loans_one_active_per_reader_title ON loans (user_id, title_id) WHERE returned_at IS NULL;
CREATE INDEX loans_user ON loans (user_id, id);
CREATE INDEX loans_active_due ON loans (user_id, due_at) WHERE returned_at IS NULL;

CREATE TABLE holds (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    title_id        INTEGER NOT NULL REFERENCES titles (id),
    user_id         INTEGER NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('waiting', 'ready', 'fulfilled', 'cancelled', 'expired')),
    placed_at       TEXT    NOT NULL,
    copy_id         INTEGER REFERENCES copies (id),
    ready_at        TEXT,
    pickup_deadline TEXT,
    closed_at       TEXT
);
CREATE UNIQUE INDEX holds_one_active_per_reader_title ON holds (user_id, title_id) WHERE state IN ('waiting', 'ready');
CREATE UNIQUE INDEX holds_one_ready_per_copy ON holds (copy_id) WHERE state = 'ready';
CREATE INDEX holds_queue ON holds (title_id, id) WHERE state = 'waiting';
CREATE INDEX holds_pickup ON holds (pickup_deadline) WHERE state = 'ready';
CREATE INDEX holds_user ON holds (user_id, id) WHERE state IN ('waiting', 'ready');

CREATE TABLE readers (
    user_id       INTEGER PRIMARY KEY,
    first_seen_at TEXT    NOT NULL
);

CREATE TABLE processed_commands (
    message_id   TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    reply        TEXT,
    processed_at TEXT    NOT NULL
);
CREATE INDEX processed_commands_age ON processed_commands (processed_at);
