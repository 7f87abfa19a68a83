-- scraper-service schema on PostgreSQL.
--
-- Works on a fresh database and on one created by the original FastAPI app: its tables
-- (source_data, transformed_data) keep their names and columns; new columns are added.

CREATE TABLE IF NOT EXISTS source_data (
    id BIGSERIAL PRIMARY KEY,
    idno VARCHAR NOT NULL,
    url VARCHAR NOT NULL,
    raw_html TEXT NOT NULL,
    status_code INTEGER,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
ALTER TABLE source_data ADD COLUMN IF NOT EXISTS content_hash VARCHAR(64);
ALTER TABLE source_data ADD COLUMN IF NOT EXISTS fetched_at TIMESTAMP;
ALTER TABLE source_data ADD COLUMN IF NOT EXISTS fetch_count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE source_data ADD COLUMN IF NOT EXISTS last_fetched_at TIMESTAMP;
-- Rows of the original app: their fetch time is their creation time.
UPDATE source_data SET fetched_at = created_at WHERE fetched_at IS NULL;
UPDATE source_data SET last_fetched_at = fetched_at WHERE last_fetched_at IS NULL;
CREATE INDEX IF NOT EXISTS source_data_idno_idx ON source_data (idno);
-- An identical re-fetch (same company, same bytes) is counted, not stored again.
CREATE UNIQUE INDEX IF NOT EXISTS source_data_idno_hash_uq
    ON source_data (idno, content_hash) WHERE content_hash IS NOT NULL;

CREATE TABLE IF NOT EXISTS transformed_data (
    id BIGSERIAL PRIMARY KEY,
    idno VARCHAR NOT NULL,
    company_name VARCHAR,
    address VARCHAR,
    created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
ALTER TABLE transformed_data ADD COLUMN IF NOT EXISTS legal_form VARCHAR;
ALTER TABLE transformed_data ADD COLUMN IF NOT EXISTS registration_date VARCHAR;
ALTER TABLE transformed_data ADD COLUMN IF NOT EXISTS status VARCHAR;
ALTER TABLE transformed_data ADD COLUMN IF NOT EXISTS directors TEXT;
ALTER TABLE transformed_data ADD COLUMN IF NOT EXISTS activities TEXT;
ALTER TABLE transformed_data ADD COLUMN IF NOT EXISTS source_id BIGINT REFERENCES source_data (id);
ALTER TABLE transformed_data ADD COLUMN IF NOT EXISTS parser_version VARCHAR;
ALTER TABLE transformed_data ADD COLUMN IF NOT EXISTS transformed_at TIMESTAMP;
UPDATE transformed_data SET transformed_at = created_at WHERE transformed_at IS NULL;
CREATE INDEX IF NOT EXISTS transformed_data_idno_idx ON transformed_data (idno);
-- One record per stored page: re-running Transform replaces it.
CREATE UNIQUE INDEX IF NOT EXISTS transformed_data_source_uq
    ON transformed_data (source_id) WHERE source_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS scrape_jobs (
    id BIGSERIAL PRIMARY KEY,
    idno VARCHAR(13) NOT NULL,
    state VARCHAR(16) NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at TIMESTAMP NOT NULL,
    lease_owner VARCHAR,
    lease_until TIMESTAMP,
    error TEXT,
    source_id BIGINT,
    transformed_id BIGINT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP
);
-- At most one pending job per company: a second request joins the pending one.
CREATE UNIQUE INDEX IF NOT EXISTS scrape_jobs_one_pending
    ON scrape_jobs (idno) WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS scrape_jobs_claim_idx ON scrape_jobs (state, run_at);
