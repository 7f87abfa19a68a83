//! The durable job queue in `scrape_jobs`.
//!
//! A job is `queued` (due at `run_at`), `running` (held by `lease_owner` until `lease_until`),
//! `succeeded` or `failed`. Claiming is one `UPDATE … RETURNING` statement, so several workers
//! and instances never take the same job: on PostgreSQL the candidate row is locked with
//! `FOR UPDATE SKIP LOCKED`, on SQLite writers are serialised anyway. A running job whose lease
//! ran out (its instance crashed) is claimable again. Every later transition is fenced by the
//! lease holder, so an instance that lost its lease cannot overwrite the new holder's result.
//!
//! A job belongs to the user who asked for it (`owner_id`) and is named outside the service
//! by a random UUID (`public_id`), never by its sequential `id`. A partial unique index allows
//! one pending (queued or running) job per IDNO and owner. Claiming takes at most one job per
//! company at a time — the first due one, and only while no other job of that company runs —
//! so the jobs of several users asking for one company run one after the other, and the later
//! ones find the record the first one fetched.

use std::time::Duration;

use api::scrape::{Idno, JobState};
use chrono::NaiveDateTime;
use service_kit::db::Db;
use service_kit::with_db;
use uuid::Uuid;

use super::{after, now};

/// A row of `scrape_jobs`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Job {
    /// The row id: internal only.
    pub id: i64,
    /// The job's name in the API: a random UUID (lower-case, hyphenated).
    pub public_id: String,
    /// The user who asked; `None` for jobs queued before jobs had owners.
    pub owner_id: Option<i64>,
    #[sqlx(try_from = "String")]
    pub idno: Idno,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: NaiveDateTime,
    pub lease_owner: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
    pub error: Option<String>,
    pub source_id: Option<i64>,
    pub transformed_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
}

impl Job {
    /// The job's state (an unknown stored value reads as `failed`).
    pub fn state(&self) -> JobState {
        JobState::parse(&self.state).unwrap_or(JobState::Failed)
    }
}

const COLUMNS: &str = "id, public_id, owner_id, idno, state, attempts, max_attempts, run_at, \
                       lease_owner, lease_until, error, source_id, transformed_id, created_at, \
                       updated_at, started_at, finished_at";

/// Queues a job for `idno` owned by `owner_id`, or returns that owner's job already pending
/// for it; `true` when it is new. Race-free: concurrent callers (one owner, one IDNO) all get
/// the same job.
#[tracing::instrument(skip_all, fields(idno = %idno, owner_id))]
pub async fn enqueue(
    db: &Db,
    idno: &Idno,
    owner_id: i64,
    max_attempts: u32,
) -> Result<(Job, bool), sqlx::Error> {
    let insert = format!(
        "INSERT INTO scrape_jobs \
         (public_id, owner_id, idno, state, attempts, max_attempts, run_at, created_at, updated_at) \
         VALUES ($4, $5, $1, 'queued', 0, $2, $3, $3, $3) \
         ON CONFLICT (idno, owner_id) WHERE state IN ('queued', 'running') DO NOTHING \
         RETURNING {COLUMNS}"
    );
    let pending = format!(
        "SELECT {COLUMNS} FROM scrape_jobs \
         WHERE idno = $1 AND owner_id = $2 AND state IN ('queued', 'running')"
    );
    let max_attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
    // The pending job may finish between the insert that found it and the select that reads
    // it; then the insert is tried again.
    for _ in 0..5 {
        let ts = now();
        let created: Option<Job> = with_db!(db, pool => sqlx::query_as(&insert)
            .bind(idno.as_str())
            .bind(max_attempts)
            .bind(ts)
            .bind(Uuid::new_v4().to_string())
            .bind(owner_id)
            .fetch_optional(pool)
            .await)?;
        if let Some(job) = created {
            return Ok((job, true));
        }
        let existing: Option<Job> = with_db!(db, pool => sqlx::query_as(&pending)
            .bind(idno.as_str())
            .bind(owner_id)
            .fetch_optional(pool)
            .await)?;
        if let Some(job) = existing {
            return Ok((job, false));
        }
    }
    Err(sqlx::Error::Protocol(
        "could not queue a job: the pending job kept changing".into(),
    ))
}

/// Takes the next due job (queued and due, or running with an expired lease) for `holder`,
/// holding it for `lease`, and counts the attempt. A job is passed over while another job of
/// the same company runs (with a live lease) or is due before it.
#[tracing::instrument(level = "debug", skip_all, fields(holder))]
pub async fn claim(db: &Db, holder: &str, lease: Duration) -> Result<Option<Job>, sqlx::Error> {
    let pick = "SELECT j.id FROM scrape_jobs j \
                WHERE ((j.state = 'queued' AND j.run_at <= $3) \
                       OR (j.state = 'running' AND j.lease_until < $3)) \
                AND NOT EXISTS (SELECT 1 FROM scrape_jobs o \
                    WHERE o.idno = j.idno AND o.id <> j.id \
                    AND ((o.state = 'running' AND o.lease_until >= $3) \
                         OR (o.state = 'queued' AND o.run_at <= $3 \
                             AND (o.run_at < j.run_at OR (o.run_at = j.run_at AND o.id < j.id))))) \
                ORDER BY j.run_at, j.id LIMIT 1";
    let lock = match db {
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        Db::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE scrape_jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, \
         lease_until = $2, started_at = COALESCE(started_at, $3), updated_at = $3 \
         WHERE id = ({pick}{lock}) RETURNING {COLUMNS}"
    );
    let ts = now();
    with_db!(db, pool => sqlx::query_as(&sql)
        .bind(holder)
        .bind(after(lease))
        .bind(ts)
        .fetch_optional(pool)
        .await)
}

/// Extends `holder`'s lease on job `id`; false when the lease was lost.
#[tracing::instrument(level = "debug", skip_all, fields(job_id = id))]
pub async fn heartbeat(
    db: &Db,
    id: i64,
    holder: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE scrape_jobs SET lease_until = $1, updated_at = $2 \
               WHERE id = $3 AND lease_owner = $4 AND state = 'running'";
    let r = with_db!(db, pool => sqlx::query(sql)
        .bind(after(lease))
        .bind(now())
        .bind(id)
        .bind(holder)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Marks job `id` succeeded with its page and record; false when `holder` no longer held it.
#[tracing::instrument(skip_all, fields(job_id = id, source_id, transformed_id))]
pub async fn complete(
    db: &Db,
    id: i64,
    holder: &str,
    source_id: i64,
    transformed_id: i64,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE scrape_jobs SET state = 'succeeded', finished_at = $1, updated_at = $1, \
               lease_owner = NULL, lease_until = NULL, error = NULL, source_id = $2, transformed_id = $3 \
               WHERE id = $4 AND lease_owner = $5 AND state = 'running'";
    let ts = now();
    let r = with_db!(db, pool => sqlx::query(sql)
        .bind(ts)
        .bind(source_id)
        .bind(transformed_id)
        .bind(id)
        .bind(holder)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Puts job `id` back in the queue, due after `delay`, remembering why it failed.
#[tracing::instrument(skip_all, fields(job_id = id, delay_ms = delay.as_millis() as u64))]
pub async fn retry_later(
    db: &Db,
    id: i64,
    holder: &str,
    delay: Duration,
    error: &str,
    source_id: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE scrape_jobs SET state = 'queued', run_at = $1, updated_at = $2, lease_owner = NULL, \
               lease_until = NULL, error = $3, source_id = COALESCE($4, source_id) \
               WHERE id = $5 AND lease_owner = $6 AND state = 'running'";
    let r = with_db!(db, pool => sqlx::query(sql)
        .bind(after(delay))
        .bind(now())
        .bind(error)
        .bind(source_id)
        .bind(id)
        .bind(holder)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Marks job `id` failed for good.
#[tracing::instrument(skip_all, fields(job_id = id))]
pub async fn fail(
    db: &Db,
    id: i64,
    holder: &str,
    error: &str,
    source_id: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE scrape_jobs SET state = 'failed', finished_at = $1, updated_at = $1, lease_owner = NULL, \
               lease_until = NULL, error = $2, source_id = COALESCE($3, source_id) \
               WHERE id = $4 AND lease_owner = $5 AND state = 'running'";
    let ts = now();
    let r = with_db!(db, pool => sqlx::query(sql)
        .bind(ts)
        .bind(error)
        .bind(source_id)
        .bind(id)
        .bind(holder)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Returns every job `holder` still holds to the queue, due now, without counting the
/// interrupted attempt (graceful shutdown). Returns how many.
#[tracing::instrument(skip_all, fields(holder))]
pub async fn release_held(db: &Db, holder: &str) -> Result<u64, sqlx::Error> {
    let sql = "UPDATE scrape_jobs SET state = 'queued', \
               attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
               lease_owner = NULL, lease_until = NULL, run_at = $1, updated_at = $1 \
               WHERE lease_owner = $2 AND state = 'running'";
    let ts = now();
    with_db!(db, pool => sqlx::query(sql)
        .bind(ts)
        .bind(holder)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
}

/// The job named `public_id` in the API.
#[tracing::instrument(skip_all, fields(public_id = %public_id))]
pub async fn by_public_id(db: &Db, public_id: &Uuid) -> Result<Option<Job>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM scrape_jobs WHERE public_id = $1");
    with_db!(db, pool => sqlx::query_as(&sql)
        .bind(public_id.to_string())
        .fetch_optional(pool)
        .await)
}

/// How many jobs are in each state (for the queue-depth metric).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn count_by_state(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = "SELECT state, CAST(COUNT(*) AS BIGINT) FROM scrape_jobs GROUP BY state";
    with_db!(db, pool => sqlx::query_as(sql).fetch_all(pool).await)
}
