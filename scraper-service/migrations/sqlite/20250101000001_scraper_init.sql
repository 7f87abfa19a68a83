-- scraper-service schema on SQLite (same meaning as migrations/postgres).

CREATE TABLE IF NOT EXISTS source_data (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idno TEXT NOT NULL,
    url TEXT NOT NULL,
    raw_html TEXT NOT NULL,
    status_code INTEGER,
    created_at TIMESTAMP NOT NULL,
    content_hash TEXT,
    fetched_at TIMESTAMP,
    fetch_count INTEGER NOT NULL DEFAULT 1,
    last_fetched_at TIMESTAMP
);
CREATE INDEX IF NOT EXISTS source_data_idno_idx ON source_data (idno);
CREATE UNIQUE INDEX IF NOT EXISTS source_data_idno_hash_uq
    ON source_data (idno, content_hash) WHERE content_hash IS NOT NULL;

CREATE TABLE IF NOT EXISTS transformed_data (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idno TEXT NOT NULL,
    company_name TEXT,
    address TEXT,
    created_at TIMESTAMP NOT NULL,
    legal_form TEXT,
    registration_date TEXT,
    status TEXT,
    directors TEXT,
    activities TEXT,
    source_id INTEGER REFERENCES source_data (id),
    parser_version TEXT,
    transformed_at TIMESTAMP
);
CREATE INDEX IF NOT EXISTS transformed_data_idno_idx ON transformed_data (idno);
CREATE UNIQUE INDEX IF NOT EXISTS transformed_data_source_uq
    ON transformed_data (source_id) WHERE source_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS scrape_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idno TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at TIMESTAMP NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    error TEXT,
    source_id INTEGER,
    transformed_id INTEGER,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP
);
CREATE UNIQUE INDEX IF NOT EXISTS scrape_jobs_one_pending
    ON scrape_jobs (idno) WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS scrape_jobs_claim_idx ON scrape_jobs (state, run_at);
