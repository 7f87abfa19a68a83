//! `processed_commands` and `readers`: what makes applying a command idempotent and a
//! reader's commands serial.
//!
//! A command's row is inserted first in its transaction (`ON CONFLICT DO NOTHING`): on
//! PostgreSQL a concurrent duplicate blocks on the primary key until the first commits, then
//! inserts nothing and reads the stored reply. The reply is written in the same transaction
//! as the change, so "applied" and "answer stored" commit together.

use chrono::{DateTime, Utc};
use service_kit::db::Db;
use service_kit::with_db;

use super::{stored, StoreError, Tx};
use crate::with_tx;

/// Locks the reader's row for the transaction (creating it on first use): a reader's
/// commands apply one at a time, so their limits hold under concurrency.
#[tracing::instrument(skip_all, fields(user_id))]
pub async fn lock_reader(tx: &mut Tx, user_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO readers (user_id, first_seen_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(stored(now))
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    let sql = format!(
        "SELECT user_id FROM readers WHERE user_id = $1{}",
        tx.lock()
    );
    let _: (i64,) = with_tx!(tx, conn => sqlx::query_as(&sql).bind(user_id).fetch_one(conn).await)?;
    Ok(())
}

/// Records that `message_id` is being applied; false when it was applied before (or is
/// being applied by a transaction that has since committed).
#[tracing::instrument(skip_all, fields(message_id))]
pub async fn claim(
    tx: &mut Tx,
    message_id: &str,
    user_id: i64,
    kind: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO processed_commands (message_id, user_id, kind, fingerprint, processed_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(message_id)
    .bind(user_id)
    .bind(kind)
    .bind(fingerprint)
    .bind(stored(now))
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Stores the reply of `message_id`.
#[tracing::instrument(skip_all, fields(message_id))]
pub async fn record_reply(tx: &mut Tx, message_id: &str, reply: &str) -> Result<(), StoreError> {
    with_tx!(tx, conn => sqlx::query("UPDATE processed_commands SET reply = $1 WHERE message_id = $2")
        .bind(reply)
        .bind(message_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The fingerprint and reply stored for `message_id`.
#[tracing::instrument(skip_all, fields(message_id))]
pub async fn stored_reply(
    db: &Db,
    message_id: &str,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT fingerprint, reply FROM processed_commands WHERE message_id = $1",
    )
    .bind(message_id)
    .fetch_optional(pool)
    .await)?)
}

/// Forgets commands applied before `before`; how many. A retry after that is applied anew.
#[tracing::instrument(skip_all)]
pub async fn purge(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let done = with_db!(db, pool => sqlx::query("DELETE FROM processed_commands WHERE processed_at < $1")
        .bind(stored(before))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(done)
}
