//! The durable job queue in `scrape_jobs`.
//!
//! A job is `queued` (due at `run_at`), `running` (held by `lease_owner` until `lease_until`),
//! `succeeded` or `failed`. Claiming is one `UPDATE … RETURNING` statement, so several workers
//! and instances never take the same job: on PostgreSQL the candidate row is locked with
//! `FOR UPDATE SKIP LOCKED`, on SQLite writers are serialised anyway. A running job whose lease
//! ran out (its instance crashed) is claimable again. Every later transition is fenced by the
//! lease owner, so an instance that lost its lease cannot overwrite the new holder's result.
//! A partial unique index allows one pending (queued or running) job per IDNO.

use std::time::Duration;

use chrono::NaiveDateTime;
use common::api::scrape::{JobState, ScrapeJobResponse};
use common::db::{now, Db};
use common::with_db;

/// A row of `scrape_jobs`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub idno: String,
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

    /// The API view of the job, without its result.
    pub fn to_response(&self) -> ScrapeJobResponse {
        ScrapeJobResponse {
            id: self.id,
            idno: self.idno.clone(),
            state: self.state(),
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            error: self.error.clone(),
            data: None,
        }
    }
}

const COLUMNS: &str =
    "id, idno, state, attempts, max_attempts, run_at, lease_owner, lease_until, error, \
                       source_id, transformed_id, created_at, updated_at, started_at, finished_at";

fn after(d: Duration) -> NaiveDateTime {
    now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Queues a job for `idno`, or returns the one already pending; `true` when it is new.
/// Race-free: concurrent callers for one IDNO all get the same job.
pub async fn enqueue(db: &Db, idno: &str, max_attempts: u32) -> Result<(Job, bool), sqlx::Error> {
    let insert = format!(
        "INSERT INTO scrape_jobs (idno, state, attempts, max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, 'queued', 0, $2, $3, $3, $3) \
         ON CONFLICT (idno) WHERE state IN ('queued', 'running') DO NOTHING \
         RETURNING {COLUMNS}"
    );
    let pending = format!(
        "SELECT {COLUMNS} FROM scrape_jobs WHERE idno = $1 AND state IN ('queued', 'running')"
    );
    let max_attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
    // The pending job may finish between the insert that found it and the select that reads
    // it; then the insert is tried again.
    for _ in 0..5 {
        let ts = now();
        let created: Option<Job> = with_db!(db, pool => sqlx::query_as(&insert)
            .bind(idno)
            .bind(max_attempts)
            .bind(ts)
            .fetch_optional(pool)
            .await)?;
        if let Some(job) = created {
            return Ok((job, true));
        }
        let existing: Option<Job> =
            with_db!(db, pool => sqlx::query_as(&pending).bind(idno).fetch_optional(pool).await)?;
        if let Some(job) = existing {
            return Ok((job, false));
        }
    }
    Err(sqlx::Error::Protocol(
        "could not queue a job: the pending job kept changing".into(),
    ))
}

/// Takes the next due job (queued and due, or running with an expired lease) for `owner`,
/// holding it for `lease`. Counts the attempt.
pub async fn claim(db: &Db, owner: &str, lease: Duration) -> Result<Option<Job>, sqlx::Error> {
    let pick = "SELECT id FROM scrape_jobs \
                WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND lease_until < $3) \
                ORDER BY run_at, id LIMIT 1";
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
        .bind(owner)
        .bind(after(lease))
        .bind(ts)
        .fetch_optional(pool)
        .await)
}

/// Extends `owner`'s lease on job `id`; false when the lease was lost.
pub async fn heartbeat(
    db: &Db,
    id: i64,
    owner: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE scrape_jobs SET lease_until = $1, updated_at = $2 \
               WHERE id = $3 AND lease_owner = $4 AND state = 'running'";
    let r = with_db!(db, pool => sqlx::query(sql)
        .bind(after(lease))
        .bind(now())
        .bind(id)
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Marks job `id` succeeded; false when `owner` no longer held it.
pub async fn complete(
    db: &Db,
    id: i64,
    owner: &str,
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
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Puts job `id` back in the queue, due after `delay`, remembering why it failed.
pub async fn retry_later(
    db: &Db,
    id: i64,
    owner: &str,
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
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Marks job `id` failed for good.
pub async fn fail(
    db: &Db,
    id: i64,
    owner: &str,
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
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Returns every job `owner` still holds to the queue, due now, without counting the
/// interrupted attempt (graceful shutdown). Returns how many.
pub async fn release_owned(db: &Db, owner: &str) -> Result<u64, sqlx::Error> {
    let sql = "UPDATE scrape_jobs SET state = 'queued', \
               attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
               lease_owner = NULL, lease_until = NULL, run_at = $1, updated_at = $1 \
               WHERE lease_owner = $2 AND state = 'running'";
    let ts = now();
    with_db!(db, pool => sqlx::query(sql).bind(ts).bind(owner).execute(pool).await.map(|r| r.rows_affected()))
}

/// The job with this id.
pub async fn get(db: &Db, id: i64) -> Result<Option<Job>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM scrape_jobs WHERE id = $1");
    with_db!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
}

/// How many jobs are in each state (for the queue-depth metric).
pub async fn count_by_state(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = "SELECT state, COUNT(*) FROM scrape_jobs GROUP BY state";
    with_db!(db, pool => sqlx::query_as(sql).fetch_all(pool).await)
}

/// The `/metrics` text of the queue: `scrape_jobs{state="…"}` for every state.
pub async fn queue_metrics(db: &Db) -> String {
    let mut out = String::from("# HELP scrape_jobs Scrape jobs by state (queued = queue depth).\n# TYPE scrape_jobs gauge\n");
    match count_by_state(db).await {
        Ok(counts) => {
            for state in ["queued", "running", "succeeded", "failed"] {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == state)
                    .map_or(0, |(_, n)| *n);
                out.push_str(&format!("scrape_jobs{{state=\"{state}\"}} {n}\n"));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot count jobs for /metrics"),
    }
    out
}
