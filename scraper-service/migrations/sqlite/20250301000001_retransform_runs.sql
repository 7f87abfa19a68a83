-- Same meaning as migrations/postgres: re-transform runs with their checkpoint and lease.

CREATE TABLE IF NOT EXISTS retransform_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL,
    -- 'all', or the IDNO whose pages are re-parsed.
    scope TEXT NOT NULL,
    parser_version TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('running', 'interrupted', 'succeeded', 'abandoned')),
    total INTEGER NOT NULL DEFAULT 0,
    processed INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    checkpoint INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE UNIQUE INDEX IF NOT EXISTS retransform_runs_public_id_uq ON retransform_runs (public_id);
CREATE UNIQUE INDEX IF NOT EXISTS retransform_runs_one_unfinished
    ON retransform_runs (scope) WHERE state IN ('running', 'interrupted');
