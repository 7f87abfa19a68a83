//! `loans`: who has which copy, until when. A partial unique index allows one active loan
//! per copy and one per reader and title, whatever the transactions above it do.

use api::library::Loan;
use chrono::{DateTime, NaiveDateTime, Utc};
use service_kit::db::Db;
use service_kit::with_db;

use super::{bind_all, stored, utc, Bind, StoreError, Tx};
use crate::rules::Rules;
use crate::with_tx;

/// A loan with its title.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoanRow {
    pub id: i64,
    pub copy_id: i64,
    pub title_id: i64,
    pub user_id: i64,
    pub title: String,
    pub borrowed_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    pub renewals: i64,
    pub returned_at: Option<NaiveDateTime>,
}

impl LoanRow {
    /// The API view at `now`.
    pub fn to_api(&self, rules: &Rules, now: DateTime<Utc>) -> Loan {
        let due_at = utc(self.due_at);
        Loan {
            id: self.id,
            book_id: self.title_id,
            user_id: self.user_id,
            title: self.title.clone(),
            borrowed_at: utc(self.borrowed_at),
            due_at,
            renewals_left: rules.renewals_left(self.renewals),
            returned_at: self.returned_at.map(utc),
            overdue: self.returned_at.is_none() && due_at < now,
        }
    }
}

const LOAN_COLUMNS: &str = "l.id, l.copy_id, l.title_id, l.user_id, t.title, l.borrowed_at, \
     l.due_at, l.renewals, l.returned_at";

/// A reader's loans out now: how many, how many overdue at `now`, and whether one is of
/// `title_id`.
#[tracing::instrument(skip_all, fields(user_id, title_id))]
pub async fn standing(
    tx: &mut Tx,
    user_id: i64,
    title_id: i64,
    now: DateTime<Utc>,
) -> Result<(i64, i64, bool), StoreError> {
    let sql = "SELECT COUNT(*), \
               COALESCE(SUM(CASE WHEN due_at < $2 THEN 1 ELSE 0 END), 0), \
               COALESCE(SUM(CASE WHEN title_id = $3 THEN 1 ELSE 0 END), 0) \
               FROM loans WHERE user_id = $1 AND returned_at IS NULL";
    let (active, overdue, of_title): (i64, i64, i64) = with_tx!(tx, conn => sqlx::query_as(sql)
        .bind(user_id)
        .bind(stored(now))
        .bind(title_id)
        .fetch_one(conn)
        .await)?;
    Ok((active, overdue, of_title > 0))
}

/// Lends copy `copy_id` of `title_id` to `user_id`; the new loan's id.
#[tracing::instrument(skip_all, fields(copy_id, user_id))]
pub async fn insert(
    tx: &mut Tx,
    copy_id: i64,
    title_id: i64,
    user_id: i64,
    borrowed_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let sql = "INSERT INTO loans (copy_id, title_id, user_id, borrowed_at, due_at, renewals) \
               VALUES ($1, $2, $3, $4, $5, 0) RETURNING id";
    let (id,): (i64,) = with_tx!(tx, conn => sqlx::query_as(sql)
        .bind(copy_id)
        .bind(title_id)
        .bind(user_id)
        .bind(stored(borrowed_at))
        .bind(stored(due_at))
        .fetch_one(conn)
        .await)?;
    Ok(id)
}

/// The loan `id` (with `FOR UPDATE` when `lock`).
#[tracing::instrument(skip_all, fields(id, lock))]
pub async fn get_in(tx: &mut Tx, id: i64, lock: bool) -> Result<Option<LoanRow>, StoreError> {
    let lock = if lock {
        match tx {
            Tx::Postgres(_) => " FOR UPDATE OF l",
            Tx::Sqlite(_) => "",
        }
    } else {
        ""
    };
    let sql = format!(
        "SELECT {LOAN_COLUMNS} FROM loans l JOIN titles t ON t.id = l.title_id WHERE l.id = $1{lock}"
    );
    Ok(with_tx!(tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)?)
}

/// Marks loan `id` returned at `now`; false when it was returned already.
#[tracing::instrument(skip_all, fields(id))]
pub async fn close(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let done = with_tx!(tx, conn => sqlx::query(
        "UPDATE loans SET returned_at = $1 WHERE id = $2 AND returned_at IS NULL",
    )
    .bind(stored(now))
    .bind(id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Renews loan `id` until `due_at`; the notices of the old due date no longer count.
#[tracing::instrument(skip_all, fields(id))]
pub async fn renew(tx: &mut Tx, id: i64, due_at: DateTime<Utc>) -> Result<(), StoreError> {
    with_tx!(tx, conn => sqlx::query(
        "UPDATE loans SET due_at = $1, renewals = renewals + 1, due_soon_noticed_at = NULL, \
         overdue_noticed_at = NULL WHERE id = $2 AND returned_at IS NULL",
    )
    .bind(stored(due_at))
    .bind(id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A reader's loans, newest first: `active` true for those out, false for those returned,
/// `None` for all; only ids below `before` (the cursor); at most `limit`.
#[tracing::instrument(skip_all, fields(user_id, limit))]
pub async fn list(
    db: &Db,
    user_id: i64,
    active: Option<bool>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<LoanRow>, StoreError> {
    let mut sql = format!(
        "SELECT {LOAN_COLUMNS} FROM loans l JOIN titles t ON t.id = l.title_id WHERE l.user_id = $1"
    );
    let mut binds = vec![Bind::Int(user_id)];
    match active {
        Some(true) => sql.push_str(" AND l.returned_at IS NULL"),
        Some(false) => sql.push_str(" AND l.returned_at IS NOT NULL"),
        None => {}
    }
    if let Some(before) = before {
        binds.push(Bind::Int(before));
        sql.push_str(&format!(" AND l.id < ${}", binds.len()));
    }
    binds.push(Bind::Int(limit));
    sql.push_str(&format!(" ORDER BY l.id DESC LIMIT ${}", binds.len()));
    Ok(with_db!(db, pool => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(pool).await)?)
}

/// A notice the scheduler sends about a loan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Due within the notice period, not yet overdue.
    DueSoon,
    /// Past its due date.
    Overdue,
}

impl Notice {
    /// The loan's column recording that the notice went out, and the due-date condition.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Notice::DueSoon => ("due_soon_noticed_at", "due_at <= $1 AND due_at >= $2"),
            Notice::Overdue => ("overdue_noticed_at", "due_at < $2"),
        }
    }
}

/// Active loans that `notice` is owed to at `now` (`soon`: the end of the due-soon period),
/// by due date: (loan id, title id). Read without locks; [`mark_noticed`] decides.
#[tracing::instrument(skip_all, fields(?notice, limit))]
pub async fn owed(
    db: &Db,
    notice: Notice,
    now: DateTime<Utc>,
    soon: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let (column, due) = notice.sql();
    let sql = format!(
        "SELECT id, title_id FROM loans WHERE returned_at IS NULL AND {column} IS NULL AND {due} \
         ORDER BY due_at LIMIT $3"
    );
    Ok(with_db!(db, pool => sqlx::query_as(&sql)
        .bind(stored(soon))
        .bind(stored(now))
        .bind(limit)
        .fetch_all(pool)
        .await)?)
}

/// Records that `notice` goes out for loan `id` now, if it is still owed (a guarded update:
/// of two schedulers racing, one gets the row): its reader and due date; `None` otherwise.
#[tracing::instrument(skip_all, fields(id, ?notice))]
pub async fn mark_noticed(
    tx: &mut Tx,
    id: i64,
    notice: Notice,
    now: DateTime<Utc>,
    soon: DateTime<Utc>,
) -> Result<Option<(i64, NaiveDateTime)>, StoreError> {
    let (column, due) = notice.sql();
    let sql = format!(
        "UPDATE loans SET {column} = $2 WHERE id = $3 AND returned_at IS NULL AND {column} IS NULL \
         AND {due} RETURNING user_id, due_at"
    );
    Ok(with_tx!(tx, conn => sqlx::query_as(&sql)
        .bind(stored(soon))
        .bind(stored(now))
        .bind(id)
        .fetch_optional(conn)
        .await)?)
}
