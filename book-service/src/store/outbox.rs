//! `outbox` and `outbox_relay`: circulation events waiting for the event stream, and the lease
//! that lets one relay at a time publish them.
//!
//! A row is inserted in the transaction of the change that caused it (see `crate::outbox`),
//! read in id order by the relay holding the lease, and marked published once the stream
//! acknowledged it. Published rows are kept for a while (an audit trail, and what an operator
//! replays from), then purged.

use chrono::{DateTime, Utc};
use service_kit::db::Db;
use service_kit::with_db;

use super::{bind_all, stored, Bind, StoreError, Tx};
use crate::with_tx;

/// The lease's row.
const RELAY: &str = "outbox";

/// An event waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Pending {
    pub id: i64,
    pub body: String,
}

/// Adds an event to the outbox.
#[tracing::instrument(skip_all, fields(kind, title_id))]
pub async fn insert(
    tx: &mut Tx,
    event_id: &str,
    kind: &str,
    title_id: i64,
    user_id: i64,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO outbox (event_id, kind, title_id, user_id, body, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event_id)
    .bind(kind)
    .bind(title_id)
    .bind(user_id)
    .bind(body)
    .bind(stored(now))
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The oldest `limit` events not yet published, in id order.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn unpublished(db: &Db, limit: i64) -> Result<Vec<Pending>, StoreError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT id, body FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await)?)
}

/// Marks the events `ids` published at `at`.
#[tracing::instrument(skip_all, fields(count = ids.len()))]
pub async fn mark_published(db: &Db, ids: &[i64], at: DateTime<Utc>) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut binds = vec![Bind::Time(stored(at))];
    binds.extend(ids.iter().map(|id| Bind::Int(*id)));
    let list: Vec<String> = (2..=binds.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "UPDATE outbox SET published_at = $1 WHERE id IN ({}) AND published_at IS NULL",
        list.join(", ")
    );
    with_db!(db, pool => bind_all!(sqlx::query(&sql), &binds)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Forgets events published before `before`; how many.
#[tracing::instrument(skip_all)]
pub async fn purge(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(with_db!(db, pool => sqlx::query(
        "DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1",
    )
    .bind(stored(before))
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?)
}

/// Takes, or extends, the relay's lease for `holder` until `until`; false while another
/// holder's lease runs (times are wall-clock).
#[tracing::instrument(skip_all)]
pub async fn take_lease(
    db: &Db,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = with_db!(db, pool => sqlx::query(
        "UPDATE outbox_relay SET holder = $1, expires_at = $2 \
         WHERE name = $3 AND (holder = $1 OR holder IS NULL OR expires_at < $4)",
    )
    .bind(holder)
    .bind(stored(until))
    .bind(RELAY)
    .bind(stored(now))
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Gives the lease up (stopping), so another instance takes over at once.
#[tracing::instrument(skip_all)]
pub async fn release_lease(db: &Db, holder: &str) -> Result<(), StoreError> {
    with_db!(db, pool => sqlx::query(
        "UPDATE outbox_relay SET holder = NULL WHERE name = $1 AND holder = $2",
    )
    .bind(RELAY)
    .bind(holder)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
