//! Re-transform runs in `retransform_runs`, and the one transaction that commits a batch of
//! a run: its records and its checkpoint together, so a run stopped at any point resumes
//! after the last committed batch and no page is counted twice.
//!
//! A run's scope is `all` or one IDNO; a partial unique index allows one unfinished
//! (`running` or `interrupted`) run per scope. A running run is held by one process
//! (`lease_owner` until `lease_until`, renewed by every commit and by a heartbeat); every
//! write of a run is fenced by its holder, so a process that lost the lease (its run was
//! taken over after it stalled) cannot write over the new holder's progress.

use std::time::Duration;

use api::scrape::{CompanyRecord, Idno, RetransformRun, RetransformState};
use chrono::NaiveDateTime;
use service_kit::db::Db;
use service_kit::with_db;
use uuid::Uuid;

use super::pages::StoredPage;
use super::records::{self, bind_record, PARAMS_PER_RECORD};
use super::{after, now};
use crate::transform::{ParsedCompany, PARSER_VERSION};

/// The scope of the runs over every stored page.
pub const ALL: &str = "all";

/// The scope of a run over `idno`'s pages (`None`: all).
pub fn scope_of(idno: Option<&Idno>) -> &str {
    idno.map_or(ALL, Idno::as_str)
}

/// A row of `retransform_runs`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Run {
    /// The row id: internal only.
    pub id: i64,
    /// The run's name in the API: a random UUID.
    pub public_id: String,
    /// [`ALL`] or an IDNO.
    pub scope: String,
    pub parser_version: String,
    pub state: String,
    pub total: i64,
    pub processed: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// The last `source_data.id` whose batch is committed.
    pub checkpoint: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
    pub error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

impl Run {
    /// The company whose pages the run re-parses; `None`: all (or an unreadable scope).
    pub fn idno(&self) -> Option<Idno> {
        (self.scope != ALL)
            .then(|| Idno::parse(&self.scope).ok())
            .flatten()
    }

    /// The stored state; a running run whose lease ran out reads as interrupted.
    pub fn state(&self) -> RetransformState {
        match RetransformState::parse(&self.state) {
            Some(RetransformState::Running) if !self.holds_lease() => RetransformState::Interrupted,
            Some(state) => state,
            None => RetransformState::Interrupted,
        }
    }

    /// Whether a process holds the run now (running, lease not run out).
    pub fn holds_lease(&self) -> bool {
        self.state == "running" && self.lease_until.is_some_and(|until| until >= now())
    }

    /// The API view of the run.
    pub fn view(&self) -> RetransformRun {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        RetransformRun {
            id: self.public_id.clone(),
            idno: (self.scope != ALL).then(|| self.scope.clone()),
            parser_version: self.parser_version.clone(),
            state: self.state(),
            total: count(self.total),
            processed: count(self.processed),
            succeeded: count(self.succeeded),
            failed: count(self.failed),
            checkpoint: self.checkpoint,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
            finished_at: self.finished_at.map(|t| t.and_utc()),
            error: self.error.clone(),
        }
    }
}

const COLUMNS: &str = "CAST(id AS BIGINT) AS id, public_id, scope, parser_version, state, \
                       CAST(total AS BIGINT) AS total, CAST(processed AS BIGINT) AS processed, \
                       CAST(succeeded AS BIGINT) AS succeeded, CAST(failed AS BIGINT) AS failed, \
                       CAST(checkpoint AS BIGINT) AS checkpoint, lease_owner, lease_until, error, \
                       created_at, updated_at, finished_at";

/// The unfinished (running or interrupted) run of `scope`, if any.
#[tracing::instrument(skip_all, fields(scope))]
pub async fn unfinished(db: &Db, scope: &str) -> Result<Option<Run>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM retransform_runs \
         WHERE scope = $1 AND state IN ('running', 'interrupted')"
    );
    with_db!(db, pool => sqlx::query_as(&sql).bind(scope).fetch_optional(pool).await)
}

/// Starts a new run of `scope` over `total` pages, held by `holder` for `lease`; `None` when
/// the scope already has an unfinished run.
#[tracing::instrument(skip_all, fields(scope, total))]
pub async fn create(
    db: &Db,
    scope: &str,
    holder: &str,
    lease: Duration,
    total: i64,
) -> Result<Option<Run>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO retransform_runs \
         (public_id, scope, parser_version, state, total, lease_owner, lease_until, created_at, updated_at) \
         VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $7) \
         ON CONFLICT (scope) WHERE state IN ('running', 'interrupted') DO NOTHING \
         RETURNING {COLUMNS}"
    );
    with_db!(db, pool => sqlx::query_as(&sql)
        .bind(Uuid::new_v4().to_string())
        .bind(scope)
        .bind(PARSER_VERSION)
        .bind(total)
        .bind(holder)
        .bind(after(lease))
        .bind(now())
        .fetch_optional(pool)
        .await)
}

/// Takes over run `id` — interrupted, or running with its lease run out — for `holder`, with
/// `remaining` pages left after its checkpoint; `None` when it was not (any more) free.
#[tracing::instrument(skip_all, fields(run_id = id, remaining))]
pub async fn resume(
    db: &Db,
    id: i64,
    holder: &str,
    lease: Duration,
    remaining: i64,
) -> Result<Option<Run>, sqlx::Error> {
    let sql = format!(
        "UPDATE retransform_runs SET state = 'running', lease_owner = $1, lease_until = $2, \
         total = processed + $3, error = NULL, updated_at = $4 \
         WHERE id = $5 AND (state = 'interrupted' OR (state = 'running' AND lease_until < $4)) \
         RETURNING {COLUMNS}"
    );
    with_db!(db, pool => sqlx::query_as(&sql)
        .bind(holder)
        .bind(after(lease))
        .bind(remaining)
        .bind(now())
        .bind(id)
        .fetch_optional(pool)
        .await)
}

/// Gives up run `id` (interrupted, or running with its lease run out) for good: it was made
/// by another parser version. False when it was not free.
#[tracing::instrument(skip_all, fields(run_id = id))]
pub async fn abandon(db: &Db, id: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE retransform_runs SET state = 'abandoned', lease_owner = NULL, \
               lease_until = NULL, finished_at = $1, updated_at = $1 \
               WHERE id = $2 AND (state = 'interrupted' OR (state = 'running' AND lease_until < $1))";
    let r = with_db!(db, pool => sqlx::query(sql)
        .bind(now())
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

/// Extends `holder`'s lease on run `id`; false when the lease was lost.
#[tracing::instrument(level = "debug", skip_all, fields(run_id = id))]
pub async fn heartbeat(
    db: &Db,
    id: i64,
    holder: &str,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE retransform_runs SET lease_until = $1, updated_at = $2 \
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

/// A record parsed by a run, to be written.
#[derive(Debug)]
pub struct NewRecord {
    pub page: StoredPage,
    pub idno: Idno,
    pub company: ParsedCompany,
}

/// A batch of a run, processed: the pages after the checkpoint up to `last_id`.
#[derive(Debug, Default)]
pub struct Batch {
    /// The last page of the batch: the run's checkpoint once committed.
    pub last_id: i64,
    /// Pages in the batch.
    pub processed: i64,
    /// The records parsed (one per page that yielded one).
    pub records: Vec<NewRecord>,
}

/// Records per statement: PostgreSQL binds at most 65 535 parameters, SQLite 32 766.
const RECORDS_PER_STATEMENT: usize = 1000;
const _: () = assert!(PARAMS_PER_RECORD * RECORDS_PER_STATEMENT < 32_766);

/// Commits `batch` of run `id` in one transaction: upserts its records (multi-row), adds its
/// counts and moves the checkpoint to its last page, renewing `holder`'s lease. Returns the
/// records written that are now their company's latest (the ones to cache), built from what
/// was written; `None` (and nothing written) when `holder` no longer holds the run.
#[tracing::instrument(skip_all, fields(run_id = id, pages = batch.processed, records = batch.records.len()))]
pub async fn commit_batch(
    db: &Db,
    id: i64,
    holder: &str,
    lease: Duration,
    batch: &Batch,
) -> Result<Option<Vec<CompanyRecord>>, sqlx::Error> {
    let ts = now();
    let succeeded = i64::try_from(batch.records.len()).unwrap_or(i64::MAX);
    let advance = "UPDATE retransform_runs SET processed = processed + $1, \
                   succeeded = succeeded + $2, failed = failed + $3, checkpoint = $4, \
                   lease_until = $5, updated_at = $6 \
                   WHERE id = $7 AND lease_owner = $8 AND state = 'running'";
    let chunks: Vec<&[NewRecord]> = batch.records.chunks(RECORDS_PER_STATEMENT).collect();
    // These statements touch a few rows each, but PostgreSQL's estimates for tables that
    // just grew can pass the JIT threshold: compiling would cost far more than running.
    let no_jit = matches!(db, Db::Postgres(_));
    let latest: Option<Vec<i64>> = with_db!(db, pool => async {
        let mut tx = pool.begin().await?;
        if no_jit {
            sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
        }
        let fenced = sqlx::query(advance)
            .bind(batch.processed)
            .bind(succeeded)
            .bind(batch.processed - succeeded)
            .bind(batch.last_id)
            .bind(after(lease))
            .bind(ts)
            .bind(id)
            .bind(holder)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if fenced != 1 {
            tx.rollback().await?;
            return Ok::<_, sqlx::Error>(None);
        }
        let mut latest = Vec::new();
        for chunk in &chunks {
            let sql = records::upsert_sql(chunk.len());
            let mut q = sqlx::query(&sql);
            for r in *chunk {
                q = bind_record!(q, r.page, r.idno, r.company, ts);
            }
            q.execute(&mut *tx).await?;
            let sql = records::latest_among_sql(chunk.len());
            let mut q = sqlx::query_scalar::<_, i64>(&sql);
            for r in *chunk {
                q = q.bind(r.page.id);
            }
            latest.extend(q.fetch_all(&mut *tx).await?);
        }
        tx.commit().await?;
        Ok(Some(latest))
    }
    .await)?;
    Ok(latest.map(|latest| {
        batch
            .records
            .iter()
            .filter(|r| latest.contains(&r.page.id))
            .map(|r| records::record_of(&r.page, &r.idno, &r.company, ts))
            .collect()
    }))
}

/// Marks run `id` succeeded and releases it; `None` when `holder` no longer held it.
#[tracing::instrument(skip_all, fields(run_id = id))]
pub async fn finish(db: &Db, id: i64, holder: &str) -> Result<Option<Run>, sqlx::Error> {
    let sql = format!(
        "UPDATE retransform_runs SET state = 'succeeded', lease_owner = NULL, lease_until = NULL, \
         error = NULL, finished_at = $1, updated_at = $1 \
         WHERE id = $2 AND lease_owner = $3 AND state = 'running' RETURNING {COLUMNS}"
    );
    with_db!(db, pool => sqlx::query_as(&sql)
        .bind(now())
        .bind(id)
        .bind(holder)
        .fetch_optional(pool)
        .await)
}

/// Releases run `id` unfinished (resumable), noting `error` when one stopped it; `None` when
/// `holder` no longer held it.
#[tracing::instrument(skip_all, fields(run_id = id))]
pub async fn interrupt(
    db: &Db,
    id: i64,
    holder: &str,
    error: Option<&str>,
) -> Result<Option<Run>, sqlx::Error> {
    let sql = format!(
        "UPDATE retransform_runs SET state = 'interrupted', lease_owner = NULL, lease_until = NULL, \
         error = $1, updated_at = $2 \
         WHERE id = $3 AND lease_owner = $4 AND state = 'running' RETURNING {COLUMNS}"
    );
    with_db!(db, pool => sqlx::query_as(&sql)
        .bind(error)
        .bind(now())
        .bind(id)
        .bind(holder)
        .fetch_optional(pool)
        .await)
}

/// The run named `public_id` in the API.
#[tracing::instrument(skip_all, fields(public_id = %public_id))]
pub async fn by_public_id(db: &Db, public_id: &Uuid) -> Result<Option<Run>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM retransform_runs WHERE public_id = $1");
    with_db!(db, pool => sqlx::query_as(&sql)
        .bind(public_id.to_string())
        .fetch_optional(pool)
        .await)
}

/// Run `id` as stored.
#[tracing::instrument(skip_all, fields(run_id = id))]
pub async fn by_id(db: &Db, id: i64) -> Result<Option<Run>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM retransform_runs WHERE id = $1");
    with_db!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
}
