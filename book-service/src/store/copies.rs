//! `copies`: each copy of a title is a row with a status (see `crate::rules::CopyStatus`).
//!
//! Picking a copy to lend or set aside is one `UPDATE … WHERE id = (SELECT … LIMIT 1
//! FOR UPDATE SKIP LOCKED) RETURNING id`: concurrent borrowers on PostgreSQL each lock a
//! different copy, or find none, instead of queueing behind one another — and two of them can
//! never take the same copy. On SQLite the write transaction already serialises them.

use chrono::{DateTime, Utc};

use super::{stored, StoreError, Tx};
use crate::rules::CopyStatus;
use crate::with_tx;

/// Adds `count` available copies of `title_id`; their ids.
#[tracing::instrument(skip_all, fields(title_id, count))]
pub async fn insert(
    tx: &mut Tx,
    title_id: i64,
    count: u32,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let sql = "INSERT INTO copies (title_id, status, created_at) VALUES ($1, $2, $3) RETURNING id";
    let mut ids = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (id,): (i64,) = with_tx!(tx, conn => sqlx::query_as(sql)
            .bind(title_id)
            .bind(CopyStatus::Available.as_str())
            .bind(stored(now))
            .fetch_one(conn)
            .await)?;
        ids.push(id);
    }
    Ok(ids)
}

/// Takes an available copy of `title_id` into `status` (lent, or set aside); `None` when
/// no copy is available (or every available one is being taken by another transaction).
#[tracing::instrument(skip_all, fields(title_id))]
pub async fn take_available(
    tx: &mut Tx,
    title_id: i64,
    status: CopyStatus,
) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "UPDATE copies SET status = $1 WHERE status = 'available' AND id = \
         (SELECT id FROM copies WHERE title_id = $2 AND status = 'available' ORDER BY id LIMIT 1{}) \
         RETURNING id",
        tx.skip_locked()
    );
    let row: Option<(i64,)> = with_tx!(tx, conn => sqlx::query_as(&sql)
        .bind(status.as_str())
        .bind(title_id)
        .fetch_optional(conn)
        .await)?;
    Ok(row.map(|(id,)| id))
}

/// Moves copy `id` from `from` to `to`; false when it was not in `from`.
#[tracing::instrument(skip_all, fields(id))]
pub async fn move_status(
    tx: &mut Tx,
    id: i64,
    from: CopyStatus,
    to: CopyStatus,
) -> Result<bool, StoreError> {
    let sql = "UPDATE copies SET status = $1 WHERE id = $2 AND status = $3";
    let done = with_tx!(tx, conn => sqlx::query(sql)
        .bind(to.as_str())
        .bind(id)
        .bind(from.as_str())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// How many copies of `title_id` are set aside for holders.
#[tracing::instrument(skip_all, fields(title_id))]
pub async fn count_set_aside(tx: &mut Tx, title_id: i64) -> Result<i64, StoreError> {
    let (n,): (i64,) = with_tx!(tx, conn => sqlx::query_as(
        "SELECT COUNT(*) FROM copies WHERE title_id = $1 AND status = 'on_hold'",
    )
    .bind(title_id)
    .fetch_one(conn)
    .await)?;
    Ok(n)
}
