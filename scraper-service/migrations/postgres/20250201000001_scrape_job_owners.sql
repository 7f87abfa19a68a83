-- Scrape jobs belong to the user who asked for them and are named by a random UUID, never by
-- their sequential id (which let anyone read everyone's look-ups).

ALTER TABLE scrape_jobs ADD COLUMN IF NOT EXISTS owner_id BIGINT;
ALTER TABLE scrape_jobs ADD COLUMN IF NOT EXISTS public_id VARCHAR(36);
-- Jobs queued before owners existed belong to nobody: only admins can read them.
UPDATE scrape_jobs SET public_id = gen_random_uuid()::text WHERE public_id IS NULL;
ALTER TABLE scrape_jobs ALTER COLUMN public_id SET NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS scrape_jobs_public_id_uq ON scrape_jobs (public_id);

-- One pending job per company and owner: a user asking again joins their own pending job,
-- another user gets a job of their own (which a worker completes from a record fetched
-- meanwhile, without fetching again).
DROP INDEX IF EXISTS scrape_jobs_one_pending;
CREATE UNIQUE INDEX IF NOT EXISTS scrape_jobs_one_pending_per_owner
    ON scrape_jobs (idno, owner_id) WHERE state IN ('queued', 'running');
