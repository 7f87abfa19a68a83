-- The users table of the original app (same columns as on PostgreSQL). AUTOINCREMENT so that
-- the id of a deleted account is never given to a new one.
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email VARCHAR NOT NULL,
    username VARCHAR NOT NULL,
    hashed_password VARCHAR NOT NULL,
    created_at TIMESTAMP
);
