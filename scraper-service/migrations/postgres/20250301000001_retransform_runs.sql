-- Re-transform runs: one row per run over the stored pages (all, or one company's), with
-- its counts and its checkpoint (the last source_data.id whose batch is committed), so a run
-- that stopped (crash, shutdown, error) resumes where it was. A running run is held by one
-- process (lease_owner until lease_until); at most one unfinished run per scope.

CREATE TABLE IF NOT EXISTS retransform_runs (
    id BIGSERIAL PRIMARY KEY,
    public_id VARCHAR(36) NOT NULL,
    -- 'all', or the IDNO whose pages are re-parsed.
    scope VARCHAR(13) NOT NULL,
    parser_version VARCHAR NOT NULL,
    state VARCHAR(16) NOT NULL
        CHECK (state IN ('running', 'interrupted', 'succeeded', 'abandoned')),
    total BIGINT NOT NULL DEFAULT 0,
    processed BIGINT NOT NULL DEFAULT 0,
    succeeded BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    checkpoint BIGINT NOT NULL DEFAULT 0,
    lease_owner VARCHAR,
    lease_until TIMESTAMP,
    error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
CREATE UNIQUE INDEX IF NOT EXISTS retransform_runs_public_id_uq ON retransform_runs (public_id);
CREATE UNIQUE INDEX IF NOT EXISTS retransform_runs_one_unfinished
    ON retransform_runs (scope) WHERE state IN ('running', 'interrupted');
