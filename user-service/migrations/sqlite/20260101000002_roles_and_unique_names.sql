-- Roles in tokens, and uniqueness of usernames and emails ignoring case. (SQLite has no
-- ADD COLUMN IF NOT EXISTS; this migration runs exactly once, after the table exists without
-- the column, whether it was created by the first migration or by the original app.)

ALTER TABLE users ADD COLUMN role VARCHAR NOT NULL DEFAULT 'user';

CREATE UNIQUE INDEX IF NOT EXISTS users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (lower(email));
