-- Same meaning as migrations/postgres: jobs have an owner and a random UUID as public id.

ALTER TABLE scrape_jobs ADD COLUMN owner_id INTEGER;
-- SQLite cannot make an added column NOT NULL; the service always writes it.
ALTER TABLE scrape_jobs ADD COLUMN public_id TEXT;
-- A random version-4 UUID for each job queued before owners existed (they belong to nobody).
UPDATE scrape_jobs SET public_id =
    lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||
    substr(lower(hex(randomblob(2))), 2) || '-' ||
    substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||
    lower(hex(randomblob(6)))
WHERE public_id IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS scrape_jobs_public_id_uq ON scrape_jobs (public_id);

DROP INDEX IF EXISTS scrape_jobs_one_pending;
CREATE UNIQUE INDEX IF NOT EXISTS scrape_jobs_one_pending_per_owner
    ON scrape_jobs (idno, owner_id) WHERE state IN ('queued', 'running');
