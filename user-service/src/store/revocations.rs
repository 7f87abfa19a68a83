//! The `session_revocations` table: durable requests to end every session of a user.
//!
//! A request is written in the same transaction as the change that needs it (see
//! [`super::users::change_role`]) and marked done once the sessions are gone. Whoever carries
//! requests out first *takes* them ([`take`]) under a lock held until they are marked done
//! ([`Taken::finish`]) or let go (dropped: they stay pending):
//!
//! * PostgreSQL: `SELECT … FOR UPDATE` on the rows — with `SKIP LOCKED` for the background
//!   batches, so several instances share the work; waiting otherwise, so that a caller who must
//!   see a user's requests settled (a login, the command that wrote one) waits for an instance
//!   busy with them;
//! * SQLite: `BEGIN IMMEDIATE`, the database's one write lock, which serialises the same way.
//!
//! So no two parties carry out one request at the same time, and once a take returns, nobody
//! is still in the middle of it.

use service_kit::db::{now, Db};
use service_kit::with_db;
use sqlx::{Postgres, Sqlite, Transaction};

use super::StoreError;

/// The statement that adds a request (`$1` user id, `$2` time), returning its id; run inside
/// the transaction of the change that needs it.
pub(super) const INSERT: &str = "INSERT INTO session_revocations (user_id, requested_at) \
                                 VALUES ($1, $2) RETURNING CAST(id AS BIGINT)";

const SELECT_PENDING: &str = "SELECT CAST(id AS BIGINT) AS id, CAST(user_id AS BIGINT) AS user_id \
                              FROM session_revocations WHERE done_at IS NULL";

const MARK_DONE: &str = "UPDATE session_revocations SET done_at = $1 WHERE id = $2";

/// A pending request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Revocation {
    pub id: i64,
    pub user_id: i64,
}

/// Which pending requests to take.
#[derive(Clone, Copy, Debug)]
pub enum Which {
    /// The oldest ones, at most this many, skipping those another instance holds.
    Oldest(i64),
    /// Every one of this user's.
    OfUser(i64),
    /// This one, if still pending.
    Id(i64),
}

/// Pending requests taken for carrying out, locked until [`Taken::finish`] (or until this
/// value is dropped, which lets them go still pending).
pub struct Taken {
    pub requests: Vec<Revocation>,
    lock: Lock,
}

enum Lock {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// Takes the pending requests `which` names (see the module documentation for the locks).
#[tracing::instrument(skip_all, fields(which = ?which))]
pub async fn take(db: &Db, which: Which) -> Result<Taken, StoreError> {
    let (filter, value) = match which {
        Which::Oldest(limit) => (" ORDER BY id LIMIT $1", limit),
        Which::OfUser(user_id) => (" AND user_id = $1 ORDER BY id", user_id),
        Which::Id(id) => (" AND id = $1", id),
    };
    match db {
        Db::Postgres(pool) => {
            let lock = match which {
                Which::Oldest(_) => " FOR UPDATE SKIP LOCKED",
                Which::OfUser(_) | Which::Id(_) => " FOR UPDATE",
            };
            let mut tx = pool.begin().await?;
            let requests = sqlx::query_as(&format!("{SELECT_PENDING}{filter}{lock}"))
                .bind(value)
                .fetch_all(&mut *tx)
                .await?;
            Ok(Taken {
                requests,
                lock: Lock::Postgres(tx),
            })
        }
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            let requests = sqlx::query_as(&format!("{SELECT_PENDING}{filter}"))
                .bind(value)
                .fetch_all(&mut *tx)
                .await?;
            Ok(Taken {
                requests,
                lock: Lock::Sqlite(tx),
            })
        }
    }
}

/// Whether user `user_id` has pending requests: a cheap look, without locks, before [`take`].
/// A request being carried out still counts until it is marked done.
#[tracing::instrument(skip_all, fields(user_id = user_id))]
pub async fn any_pending(db: &Db, user_id: i64) -> Result<bool, StoreError> {
    let sql = format!("{SELECT_PENDING} AND user_id = $1 LIMIT 1");
    let found: Option<Revocation> = with_db!(db, pool => {
        sqlx::query_as(&sql).bind(user_id).fetch_optional(pool).await
    })?;
    Ok(found.is_some())
}

impl Taken {
    /// Marks the requests `done` (ids among these) as carried out and lets go of the others,
    /// which stay pending.
    #[tracing::instrument(skip_all, fields(done = done.len()))]
    pub async fn finish(self, done: &[i64]) -> Result<(), StoreError> {
        let at = now();
        match self.lock {
            Lock::Postgres(mut tx) => {
                for id in done {
                    sqlx::query(MARK_DONE)
                        .bind(at)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
            Lock::Sqlite(mut tx) => {
                for id in done {
                    sqlx::query(MARK_DONE)
                        .bind(at)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }
}
