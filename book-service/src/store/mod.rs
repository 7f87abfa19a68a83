//! All SQL of book-service, written once for PostgreSQL and SQLite (`$1` parameters,
//! timestamps bound as UTC `NaiveDateTime`).
//!
//! Reads run on the pool ([`service_kit::with_db!`]); every change runs in a [`Tx`]
//! ([`with_tx!`]). A write transaction on SQLite is `BEGIN IMMEDIATE`: it takes the database's
//! write lock at once, so writers queue instead of failing on a lock upgrade. On PostgreSQL
//! rows are locked explicitly (`FOR UPDATE`, `FOR UPDATE SKIP LOCKED` for picking a copy);
//! [`Tx::lock`] and [`Tx::skip_locked`] give the clause, empty on SQLite where the write lock
//! already serialises writers.

pub mod commands;
pub mod copies;
pub mod holds;
pub mod loans;
pub mod outbox;
pub mod search;
pub mod terms;
pub mod titles;

use chrono::{DateTime, NaiveDateTime, Utc};
use service_kit::db::{is_unavailable, is_unique_violation, Db};

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached (503; commands are retried).
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// Concurrent transactions collided (a deadlock, a serialization failure, SQLite busy):
    /// running the transaction again is expected to succeed.
    #[error("transaction conflict: {0}")]
    Conflict(sqlx::Error),
    /// A unique index refused the change.
    #[error("duplicate: {0}")]
    Duplicate(sqlx::Error),
    #[error("database error: {0}")]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            StoreError::Unavailable(e)
        } else if is_unique_violation(&e) {
            StoreError::Duplicate(e)
        } else if is_conflict(&e) {
            StoreError::Conflict(e)
        } else {
            StoreError::Other(e)
        }
    }
}

/// PostgreSQL 40001 (serialization failure) and 40P01 (deadlock), SQLite BUSY (5) and
/// LOCKED (6) with their extended codes.
fn is_conflict(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
    } else {
        code == "40001" || code == "40P01"
    }
}

/// A write transaction on either backend.
pub enum Tx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Tx {
    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(db: &Db) -> Result<Tx, StoreError> {
        Ok(match db {
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Postgres(tx) => tx.commit().await?,
            Tx::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Postgres(tx) => tx.rollback().await?,
            Tx::Sqlite(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    /// ` FOR UPDATE` on PostgreSQL: the rows read stay locked until the transaction ends.
    pub fn lock(&self) -> &'static str {
        match self {
            Tx::Postgres(_) => " FOR UPDATE",
            Tx::Sqlite(_) => "",
        }
    }

    /// ` FOR UPDATE SKIP LOCKED` on PostgreSQL: rows another transaction holds are passed
    /// over instead of waited for.
    pub fn skip_locked(&self) -> &'static str {
        match self {
            Tx::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Tx::Sqlite(_) => "",
        }
    }
}

/// Runs the same statement-building code inside either kind of [`Tx`]:
/// `with_tx!(tx, conn => sqlx::query("…").execute(conn).await)`.
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::store::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

/// A time as stored.
pub fn stored(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

/// A stored time as UTC.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A value bound to a statement built at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Time(NaiveDateTime),
}

/// Binds `binds` in order to `$query` (a `sqlx::query_as`), on either backend.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                $crate::store::Bind::Text(s) => query.bind(s.clone()),
                $crate::store::Bind::Int(i) => query.bind(*i),
                $crate::store::Bind::Time(t) => query.bind(*t),
            };
        }
        query
    }};
}
pub(crate) use bind_all;
