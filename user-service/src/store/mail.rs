//! `outgoing_mail`: e-mails waiting to be sent, each leased to one mailer at a time.
//!
//! A mailer claims due rows with a lease (`lease_until`), fenced by its name: after a send it
//! marks the row sent, or schedules the next attempt, only if it still holds the row. A mailer
//! that dies leaves its rows to be claimed again when the lease runs out.

use chrono::{DateTime, Utc};
use service_kit::db::Db;
use service_kit::with_db;

use super::StoreError;

/// An e-mail to send.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutgoingMail {
    pub notification_id: i64,
    pub to_address: String,
    pub subject: String,
    pub body: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Claims up to `limit` e-mails due at `now` for `owner` until `until`, oldest first.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn claim(
    db: &Db,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OutgoingMail>, StoreError> {
    // Two mailers on PostgreSQL each take other rows instead of waiting for one another.
    let skip_locked = match db {
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        Db::Sqlite(_) => "",
    };
    let sql = format!(
        "UPDATE outgoing_mail SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
         WHERE notification_id IN (SELECT notification_id FROM outgoing_mail \
             WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $3 \
             AND (lease_until IS NULL OR lease_until < $3) \
             ORDER BY notification_id LIMIT $4{skip_locked}) \
         RETURNING notification_id, to_address, subject, body, attempts"
    );
    let mut claimed: Vec<OutgoingMail> = with_db!(db, pool => sqlx::query_as(&sql)
        .bind(owner)
        .bind(until.naive_utc())
        .bind(now.naive_utc())
        .bind(limit)
        .fetch_all(pool)
        .await)?;
    claimed.sort_by_key(|m| m.notification_id);
    Ok(claimed)
}

/// Marks e-mail `id` sent at `now`, if `owner` still holds it.
#[tracing::instrument(skip_all, fields(id))]
pub async fn mark_sent(
    db: &Db,
    id: i64,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    with_db!(db, pool => sqlx::query(
        "UPDATE outgoing_mail SET sent_at = $1, lease_owner = NULL, lease_until = NULL, last_error = NULL \
         WHERE notification_id = $2 AND lease_owner = $3",
    )
    .bind(now.naive_utc())
    .bind(id)
    .bind(owner)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Schedules the next attempt of e-mail `id` at `at` after `error`, if `owner` holds it.
#[tracing::instrument(skip_all, fields(id))]
pub async fn retry_at(
    db: &Db,
    id: i64,
    owner: &str,
    at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    with_db!(db, pool => sqlx::query(
        "UPDATE outgoing_mail SET next_attempt_at = $1, last_error = $2, lease_owner = NULL, \
         lease_until = NULL WHERE notification_id = $3 AND lease_owner = $4",
    )
    .bind(at.naive_utc())
    .bind(error)
    .bind(id)
    .bind(owner)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}

/// Gives e-mail `id` up at `now` (the server refused it for good: a bad address), if
/// `owner` holds it. It stays in the table with the error, for an operator.
#[tracing::instrument(skip_all, fields(id))]
pub async fn give_up(
    db: &Db,
    id: i64,
    owner: &str,
    now: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    with_db!(db, pool => sqlx::query(
        "UPDATE outgoing_mail SET failed_at = $1, last_error = $2, lease_owner = NULL, \
         lease_until = NULL WHERE notification_id = $3 AND lease_owner = $4",
    )
    .bind(now.naive_utc())
    .bind(error)
    .bind(id)
    .bind(owner)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(())
}
