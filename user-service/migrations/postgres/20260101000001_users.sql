-- The users table of the original FastAPI/SQLAlchemy app. On a database that already has it
-- this does nothing, so existing accounts and their passlib bcrypt hashes are kept.
CREATE TABLE IF NOT EXISTS users (
    id SERIAL PRIMARY KEY,
    email VARCHAR NOT NULL,
    username VARCHAR NOT NULL,
    hashed_password VARCHAR NOT NULL,
    created_at TIMESTAMP
);
