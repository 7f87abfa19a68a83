-- Roles in tokens, and uniqueness of usernames and emails ignoring case.

ALTER TABLE users ADD COLUMN IF NOT EXISTS role VARCHAR NOT NULL DEFAULT 'user';
ALTER TABLE users ADD COLUMN IF NOT EXISTS created_at TIMESTAMP;

-- The original app compared names case-sensitively, so an old database may hold "Bob" and
-- "bob". Say so plainly instead of failing on an index error.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM users GROUP BY lower(username) HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'users: some usernames differ only in case (SELECT lower(username) FROM users GROUP BY 1 HAVING count(*) > 1); rename them before upgrading';
    END IF;
    IF EXISTS (SELECT 1 FROM users GROUP BY lower(email) HAVING count(*) > 1) THEN
        RAISE EXCEPTION 'users: some emails differ only in case (SELECT lower(email) FROM users GROUP BY 1 HAVING count(*) > 1); merge them before upgrading';
    END IF;
END
$$;

CREATE UNIQUE INDEX IF NOT EXISTS users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (lower(email));
