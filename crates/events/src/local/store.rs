//! Every SQL statement of the in-process stream (SQLite).
//!
//! A claim is one write transaction: the consumer's pending events whose lease ran out come
//! back (their delivery counted), then events past the consumer's position are added, all
//! leased to the claimer, who alone may settle them.

use sqlx::SqlitePool;

use crate::event::DeadLetter;

/// An event handed to a consumer.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct Claimed {
    pub(super) seq: i64,
    pub(super) body: String,
    pub(super) deliveries: i64,
}

/// Unix milliseconds now.
pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Appends `events` (id, subject, body) in order, in one transaction; an id already in the
/// stream is dropped.
#[tracing::instrument(skip_all, fields(count = events.len()))]
pub(super) async fn append(
    pool: &SqlitePool,
    events: &[(String, String, String)],
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for (id, subject, body) in events {
        sqlx::query(
            "INSERT INTO stream_events (event_id, subject, body, stored_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(id)
        .bind(subject)
        .bind(body)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Creates the durable consumer `name` at the start of the stream, unless it exists.
#[tracing::instrument(skip_all, fields(name))]
pub(super) async fn register(pool: &SqlitePool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO stream_consumers (name, next_seq) VALUES ($1, 1) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Up to `limit` events for `consumer`, leased to `owner` for `lease_ms`: redeliveries
/// first, then new events; in stream order.
#[tracing::instrument(skip_all, fields(consumer, limit))]
pub(super) async fn claim(
    pool: &SqlitePool,
    consumer: &str,
    owner: &str,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let now = now_ms();
    let until = now.saturating_add(lease_ms);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let again = sqlx::query(
        "UPDATE stream_pending SET deliveries = deliveries + 1, visible_at_ms = $1, lease_owner = $2 \
         WHERE consumer = $3 AND seq IN (SELECT seq FROM stream_pending \
             WHERE consumer = $3 AND visible_at_ms <= $4 ORDER BY seq LIMIT $5)",
    )
    .bind(until)
    .bind(owner)
    .bind(consumer)
    .bind(now)
    .bind(limit)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let room = limit - i64::try_from(again).unwrap_or(limit);
    if room > 0 {
        sqlx::query(
            "INSERT INTO stream_pending (consumer, seq, deliveries, visible_at_ms, lease_owner) \
             SELECT $1, seq, 1, $2, $3 FROM stream_events \
             WHERE seq >= (SELECT next_seq FROM stream_consumers WHERE name = $1) \
             ORDER BY seq LIMIT $4",
        )
        .bind(consumer)
        .bind(until)
        .bind(owner)
        .bind(room)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE stream_consumers SET next_seq = MAX(next_seq, \
                 (SELECT COALESCE(MAX(seq), 0) + 1 FROM stream_pending WHERE consumer = $1)) \
             WHERE name = $1",
        )
        .bind(consumer)
        .execute(&mut *tx)
        .await?;
    }
    // Pending events whose event the retention removed meanwhile are gone for good.
    sqlx::query(
        "DELETE FROM stream_pending WHERE consumer = $1 AND lease_owner = $2 AND visible_at_ms = $3 \
         AND seq NOT IN (SELECT seq FROM stream_events)",
    )
    .bind(consumer)
    .bind(owner)
    .bind(until)
    .execute(&mut *tx)
    .await?;
    let claimed = sqlx::query_as(
        "SELECT p.seq, e.body, p.deliveries FROM stream_pending p JOIN stream_events e ON e.seq = p.seq \
         WHERE p.consumer = $1 AND p.lease_owner = $2 AND p.visible_at_ms = $3 ORDER BY p.seq",
    )
    .bind(consumer)
    .bind(owner)
    .bind(until)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// Acknowledges events `owner` holds.
#[tracing::instrument(skip_all, fields(consumer, count = seqs.len()))]
pub(super) async fn ack(
    pool: &SqlitePool,
    consumer: &str,
    owner: &str,
    seqs: &[i64],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for seq in seqs {
        sqlx::query(
            "DELETE FROM stream_pending WHERE consumer = $1 AND seq = $2 AND lease_owner = $3",
        )
        .bind(consumer)
        .bind(seq)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Gives an event back, to be handed out again after `delay_ms`.
#[tracing::instrument(skip_all, fields(consumer, seq))]
pub(super) async fn release(
    pool: &SqlitePool,
    consumer: &str,
    owner: &str,
    seq: i64,
    delay_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE stream_pending SET visible_at_ms = $1, lease_owner = NULL \
         WHERE consumer = $2 AND seq = $3 AND lease_owner = $4",
    )
    .bind(now_ms().saturating_add(delay_ms))
    .bind(consumer)
    .bind(seq)
    .bind(owner)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Moves an event `owner` holds to the dead letters, in one transaction.
#[tracing::instrument(skip_all, fields(consumer, seq, reason))]
pub(super) async fn bury(
    pool: &SqlitePool,
    consumer: &str,
    owner: &str,
    seq: i64,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(
        "INSERT INTO stream_dead (consumer, seq, subject, body, reason, deliveries, died_at_ms) \
         SELECT p.consumer, p.seq, e.subject, e.body, $1, p.deliveries, $2 \
         FROM stream_pending p JOIN stream_events e ON e.seq = p.seq \
         WHERE p.consumer = $3 AND p.seq = $4 AND p.lease_owner = $5 \
         ON CONFLICT (consumer, seq) DO NOTHING",
    )
    .bind(reason)
    .bind(now_ms())
    .bind(consumer)
    .bind(seq)
    .bind(owner)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM stream_pending WHERE consumer = $1 AND seq = $2 AND lease_owner = $3")
        .bind(consumer)
        .bind(seq)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Removes events stored before `events_before_ms` and dead letters before
/// `dead_before_ms` (limits retention); how many events.
#[tracing::instrument(skip_all)]
pub(super) async fn purge(
    pool: &SqlitePool,
    events_before_ms: i64,
    dead_before_ms: i64,
) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM stream_events WHERE stored_at_ms < $1")
        .bind(events_before_ms)
        .execute(pool)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM stream_dead WHERE died_at_ms < $1")
        .bind(dead_before_ms)
        .execute(pool)
        .await?;
    Ok(removed)
}

/// Every dead letter, oldest first.
#[tracing::instrument(skip_all)]
pub(super) async fn dead(pool: &SqlitePool) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let rows: Vec<(String, String, i64, String)> =
        sqlx::query_as("SELECT consumer, reason, deliveries, body FROM stream_dead ORDER BY id")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(consumer, reason, deliveries, body)| DeadLetter {
            consumer,
            reason,
            deliveries: u32::try_from(deliveries).unwrap_or(0),
            body,
        })
        .collect())
}
