//! Every SQL statement of the in-process queue (SQLite).
//!
//! A claim is one `UPDATE … RETURNING` on the oldest visible row: it counts the delivery and
//! hides the row for the lease, fenced by the claimer's id, so two consumers never hold the
//! same command and a consumer that lost its lease cannot settle a row another one holds.

use sqlx::SqlitePool;

/// A claimed command.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct Claimed {
    pub(super) seq: i64,
    pub(super) message_id: String,
    pub(super) correlation_id: String,
    pub(super) body: String,
    pub(super) deliveries: i64,
}

/// Unix milliseconds now.
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tracing::instrument(skip_all, fields(message_id))]
pub(super) async fn enqueue(
    pool: &SqlitePool,
    message_id: &str,
    correlation_id: &str,
    body: &str,
    deadline_ms: i64,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO bus_commands (message_id, correlation_id, body, deadline_ms, visible_at_ms, enqueued_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(message_id)
    .bind(correlation_id)
    .bind(body)
    .bind(deadline_ms)
    .bind(now)
    .execute(pool)
    .await
    .map(|_| ())
}

/// The oldest visible command still before its deadline, now held by `owner` for
/// `lease_ms`. An expired command is never handed out.
#[tracing::instrument(skip_all)]
pub(super) async fn claim(
    pool: &SqlitePool,
    owner: &str,
    lease_ms: i64,
) -> Result<Option<Claimed>, sqlx::Error> {
    let now = now_ms();
    sqlx::query_as(
        "UPDATE bus_commands SET deliveries = deliveries + 1, visible_at_ms = $1, lease_owner = $2 \
         WHERE seq = (SELECT seq FROM bus_commands WHERE visible_at_ms <= $3 AND deadline_ms > $3 \
         ORDER BY seq LIMIT 1) \
         RETURNING seq, message_id, correlation_id, body, deliveries",
    )
    .bind(now.saturating_add(lease_ms))
    .bind(owner)
    .bind(now)
    .fetch_optional(pool)
    .await
}

/// Settles a command `owner` holds (the acknowledgement).
#[tracing::instrument(skip_all, fields(seq))]
pub(super) async fn ack(pool: &SqlitePool, seq: i64, owner: &str) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM bus_commands WHERE seq = $1 AND lease_owner = $2")
        .bind(seq)
        .bind(owner)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// Gives a command back, claimable again after `delay_ms` (a transient failure).
#[tracing::instrument(skip_all, fields(seq))]
pub(super) async fn release(
    pool: &SqlitePool,
    seq: i64,
    owner: &str,
    delay_ms: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "UPDATE bus_commands SET visible_at_ms = $1, lease_owner = NULL \
         WHERE seq = $2 AND lease_owner = $3",
    )
    .bind(now_ms().saturating_add(delay_ms))
    .bind(seq)
    .bind(owner)
    .execute(pool)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Moves a command `owner` holds to the dead letters, in one transaction.
#[tracing::instrument(skip_all, fields(seq, reason))]
pub(super) async fn bury(
    pool: &SqlitePool,
    seq: i64,
    owner: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let moved = sqlx::query(
        "INSERT INTO bus_dead (seq, message_id, body, reason, deliveries, died_at_ms) \
         SELECT seq, message_id, body, $1, deliveries, $2 FROM bus_commands \
         WHERE seq = $3 AND lease_owner = $4",
    )
    .bind(reason)
    .bind(now_ms())
    .bind(seq)
    .bind(owner)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM bus_commands WHERE seq = $1 AND lease_owner = $2")
        .bind(seq)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(moved == 1)
}

/// Drops every command whose deadline has passed and that nobody holds; how many.
#[tracing::instrument(skip_all)]
pub(super) async fn purge_expired(pool: &SqlitePool) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    sqlx::query("DELETE FROM bus_commands WHERE deadline_ms <= $1 AND visible_at_ms <= $1")
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
}
