//! `notifications` (and their `outgoing_mail` rows, written with them): what readers were
//! told, read and unread.
//!
//! A batch is stored in one transaction whose first statement is the insert (so SQLite takes
//! its write lock at once): `ON CONFLICT (event_id) DO NOTHING` makes storing an event twice
//! (a redelivery) a no-op, and only the notifications actually inserted get an e-mail.

use api::notifications::{Notification, NotificationKind};
use chrono::{DateTime, NaiveDateTime, Utc};
use service_kit::db::Db;
use service_kit::with_db;
use sqlx::QueryBuilder;

use super::StoreError;

/// A notification to store, with its e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    pub event_id: String,
    pub user_id: i64,
    pub kind: NotificationKind,
    pub book_id: i64,
    pub title: String,
    pub author: String,
    pub message: String,
    pub loan_id: Option<i64>,
    pub hold_id: Option<i64>,
    pub due_at: Option<DateTime<Utc>>,
    pub pickup_deadline: Option<DateTime<Utc>>,
    pub occurred_at: DateTime<Utc>,
    pub mail: NewMail,
}

/// The e-mail of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub user_id: i64,
    pub kind: String,
    pub book_id: i64,
    pub title: String,
    pub author: String,
    pub message: String,
    pub loan_id: Option<i64>,
    pub hold_id: Option<i64>,
    pub due_at: Option<NaiveDateTime>,
    pub pickup_deadline: Option<NaiveDateTime>,
    pub occurred_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
}

impl NotificationRow {
    /// The API view; `None` for a kind this version does not know.
    pub fn to_api(&self) -> Option<Notification> {
        Some(Notification {
            id: self.id,
            kind: NotificationKind::parse(&self.kind)?,
            book_id: self.book_id,
            title: self.title.clone(),
            author: self.author.clone(),
            message: self.message.clone(),
            loan_id: self.loan_id,
            hold_id: self.hold_id,
            due_at: self.due_at.map(|t| t.and_utc()),
            pickup_deadline: self.pickup_deadline.map(|t| t.and_utc()),
            occurred_at: self.occurred_at.and_utc(),
            created_at: self.created_at.and_utc(),
            read: self.read_at.is_some(),
            read_at: self.read_at.map(|t| t.and_utc()),
        })
    }
}

const COLUMNS: &str = "id, user_id, kind, book_id, title, author, message, loan_id, hold_id, \
     due_at, pickup_deadline, occurred_at, created_at, read_at";

/// Stores `batch` and the e-mails of those not stored before, in one transaction, at `now`;
/// the (id, reader) of each notification inserted now.
#[tracing::instrument(skip_all, fields(count = batch.len()))]
pub async fn store(
    db: &Db,
    batch: &[NewNotification],
    now: DateTime<Utc>,
) -> Result<Vec<(i64, i64)>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let now = now.naive_utc();
    let inserted: Vec<(i64, String, i64)> = with_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let mut insert = QueryBuilder::new(
            "INSERT INTO notifications (event_id, user_id, kind, book_id, title, author, message, \
             loan_id, hold_id, due_at, pickup_deadline, occurred_at, created_at) ",
        );
        insert.push_values(batch, |mut row, n| {
            row.push_bind(n.event_id.clone())
                .push_bind(n.user_id)
                .push_bind(n.kind.as_str())
                .push_bind(n.book_id)
                .push_bind(n.title.clone())
                .push_bind(n.author.clone())
                .push_bind(n.message.clone())
                .push_bind(n.loan_id)
                .push_bind(n.hold_id)
                .push_bind(n.due_at.map(|t| t.naive_utc()))
                .push_bind(n.pickup_deadline.map(|t| t.naive_utc()))
                .push_bind(n.occurred_at.naive_utc())
                .push_bind(now);
        });
        insert.push(" ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id, user_id");
        let inserted: Vec<(i64, String, i64)> =
            insert.build_query_as().fetch_all(&mut *tx).await?;
        if !inserted.is_empty() {
            let mut mail = QueryBuilder::new(
                "INSERT INTO outgoing_mail (notification_id, to_address, subject, body, next_attempt_at) ",
            );
            mail.push_values(&inserted, |mut row, (id, event_id, _)| {
                let n = batch
                    .iter()
                    .find(|n| &n.event_id == event_id)
                    .expect("an inserted notification is one of the batch");
                row.push_bind(*id)
                    .push_bind(n.mail.to.clone())
                    .push_bind(n.mail.subject.clone())
                    .push_bind(n.mail.body.clone())
                    .push_bind(now);
            });
            mail.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        inserted
    });
    Ok(inserted
        .into_iter()
        .map(|(id, _, user_id)| (id, user_id))
        .collect())
}

/// A reader's notifications, newest first: `unread` true for unread ones, false for read
/// ones, `None` for all; only ids below `before` (the cursor); at most `limit`.
#[tracing::instrument(skip_all, fields(user_id, limit))]
pub async fn list(
    db: &Db,
    user_id: i64,
    unread: Option<bool>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<NotificationRow>, StoreError> {
    let read = match unread {
        Some(true) => " AND read_at IS NULL",
        Some(false) => " AND read_at IS NOT NULL",
        None => "",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND id < $2{read} \
         ORDER BY id DESC LIMIT $3"
    );
    Ok(with_db!(db, pool => sqlx::query_as(&sql)
        .bind(user_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?)
}

/// A reader's notifications after id `after`, oldest first (what a live stream sends next).
#[tracing::instrument(skip_all, fields(user_id, after))]
pub async fn after(
    db: &Db,
    user_id: i64,
    after: i64,
    limit: u32,
) -> Result<Vec<NotificationRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    );
    Ok(with_db!(db, pool => sqlx::query_as(&sql)
        .bind(user_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)?)
}

/// The id of a reader's newest notification (0 when none): where a live stream starts.
#[tracing::instrument(skip_all, fields(user_id))]
pub async fn newest_id(db: &Db, user_id: i64) -> Result<i64, StoreError> {
    let (id,): (i64,) = with_db!(db, pool => sqlx::query_as(
        "SELECT COALESCE(MAX(id), 0) FROM notifications WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await)?;
    Ok(id)
}

/// Marks notification `id` of `user_id` read at `now` (kept if it was read before); the
/// notification, `None` when the reader has no such notification.
#[tracing::instrument(skip_all, fields(id, user_id))]
pub async fn mark_read(
    db: &Db,
    id: i64,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<NotificationRow>, StoreError> {
    let sql = format!(
        "UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE id = $2 AND user_id = $3 \
         RETURNING {COLUMNS}"
    );
    Ok(with_db!(db, pool => sqlx::query_as(&sql)
        .bind(now.naive_utc())
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await)?)
}
