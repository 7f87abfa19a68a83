//! `holds`: the waiting list of each title, first come first served (by id), and the copy
//! set aside for a ready hold. Partial unique indexes allow one active hold per reader and
//! title, and one ready hold per copy.

use api::library::{Hold, HoldState};
use chrono::{DateTime, NaiveDateTime, Utc};
use service_kit::db::Db;
use service_kit::with_db;

use super::{bind_all, stored, utc, Bind, StoreError, Tx};
use crate::with_tx;

/// A hold with its title and, while waiting, its place in the queue.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HoldRow {
    pub id: i64,
    pub title_id: i64,
    pub user_id: i64,
    pub title: String,
    pub state: String,
    pub placed_at: NaiveDateTime,
    pub pickup_deadline: Option<NaiveDateTime>,
    pub position: Option<i64>,
}

impl HoldRow {
    /// The API view.
    pub fn to_api(&self) -> Hold {
        let state = HoldState::parse(&self.state).unwrap_or(HoldState::Cancelled);
        Hold {
            id: self.id,
            book_id: self.title_id,
            user_id: self.user_id,
            title: self.title.clone(),
            state,
            position: self.position.filter(|_| state == HoldState::Waiting),
            placed_at: utc(self.placed_at),
            pickup_deadline: self
                .pickup_deadline
                .filter(|_| state == HoldState::Ready)
                .map(utc),
        }
    }
}

const HOLD_COLUMNS: &str = "h.id, h.title_id, h.user_id, t.title, h.state, h.placed_at, \
     h.pickup_deadline, \
     CASE WHEN h.state = 'waiting' THEN (SELECT COUNT(*) FROM holds w \
         WHERE w.title_id = h.title_id AND w.state = 'waiting' AND w.id <= h.id) END AS position";

/// The owner and title of hold `id`.
#[tracing::instrument(skip_all, fields(id))]
pub async fn owner(tx: &mut Tx, id: i64) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(
        with_tx!(tx, conn => sqlx::query_as("SELECT user_id, title_id FROM holds WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await)?,
    )
}

/// The reader's active hold on the title, locked: its id and the copy set aside for it
/// (`None` while waiting).
#[tracing::instrument(skip_all, fields(user_id, title_id))]
pub async fn active_of(
    tx: &mut Tx,
    user_id: i64,
    title_id: i64,
) -> Result<Option<(i64, Option<i64>)>, StoreError> {
    let sql = format!(
        "SELECT id, copy_id FROM holds WHERE user_id = $1 AND title_id = $2 \
         AND state IN ('waiting', 'ready'){}",
        tx.lock()
    );
    Ok(with_tx!(tx, conn => sqlx::query_as(&sql)
        .bind(user_id)
        .bind(title_id)
        .fetch_optional(conn)
        .await)?)
}

/// How many active holds the reader has.
#[tracing::instrument(skip_all, fields(user_id))]
pub async fn count_active(tx: &mut Tx, user_id: i64) -> Result<i64, StoreError> {
    let (n,): (i64,) = with_tx!(tx, conn => sqlx::query_as(
        "SELECT COUNT(*) FROM holds WHERE user_id = $1 AND state IN ('waiting', 'ready')",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await)?;
    Ok(n)
}

/// How many holds wait for a copy of the title.
#[tracing::instrument(skip_all, fields(title_id))]
pub async fn count_waiting(tx: &mut Tx, title_id: i64) -> Result<i64, StoreError> {
    let (n,): (i64,) = with_tx!(tx, conn => sqlx::query_as(
        "SELECT COUNT(*) FROM holds WHERE title_id = $1 AND state = 'waiting'",
    )
    .bind(title_id)
    .fetch_one(conn)
    .await)?;
    Ok(n)
}

/// Puts the reader at the end of the title's waiting list; the hold's id.
#[tracing::instrument(skip_all, fields(user_id, title_id))]
pub async fn insert(
    tx: &mut Tx,
    user_id: i64,
    title_id: i64,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let (id,): (i64,) = with_tx!(tx, conn => sqlx::query_as(
        "INSERT INTO holds (title_id, user_id, state, placed_at) VALUES ($1, $2, 'waiting', $3) RETURNING id",
    )
    .bind(title_id)
    .bind(user_id)
    .bind(stored(now))
    .fetch_one(conn)
    .await)?;
    Ok(id)
}

/// The first hold waiting for the title, locked: its id and its reader.
#[tracing::instrument(skip_all, fields(title_id))]
pub async fn first_waiting(tx: &mut Tx, title_id: i64) -> Result<Option<(i64, i64)>, StoreError> {
    let sql = format!(
        "SELECT id, user_id FROM holds WHERE title_id = $1 AND state = 'waiting' ORDER BY id LIMIT 1{}",
        tx.lock()
    );
    Ok(with_tx!(tx, conn => sqlx::query_as(&sql).bind(title_id).fetch_optional(conn).await)?)
}

/// Sets copy `copy_id` aside for waiting hold `id` until `deadline`.
#[tracing::instrument(skip_all, fields(id, copy_id))]
pub async fn make_ready(
    tx: &mut Tx,
    id: i64,
    copy_id: i64,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = with_tx!(tx, conn => sqlx::query(
        "UPDATE holds SET state = 'ready', copy_id = $1, ready_at = $2, pickup_deadline = $3 \
         WHERE id = $4 AND state = 'waiting'",
    )
    .bind(copy_id)
    .bind(stored(now))
    .bind(stored(deadline))
    .bind(id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// Ends active hold `id` in `state` (fulfilled, cancelled) at `now`: `None` when it was not
/// active, else the copy that was set aside for it (`Some(None)` for a waiting hold).
#[tracing::instrument(skip_all, fields(id, state = state.as_str()))]
pub async fn close(
    tx: &mut Tx,
    id: i64,
    state: HoldState,
    now: DateTime<Utc>,
) -> Result<Option<Option<i64>>, StoreError> {
    let row: Option<(Option<i64>,)> = with_tx!(tx, conn => sqlx::query_as(
        "UPDATE holds SET state = $1, closed_at = $2 WHERE id = $3 AND state IN ('waiting', 'ready') \
         RETURNING copy_id",
    )
    .bind(state.as_str())
    .bind(stored(now))
    .bind(id)
    .fetch_optional(conn)
    .await)?;
    Ok(row.map(|(copy,)| copy))
}

/// Expires ready hold `id` if its pickup deadline passed before `now`: the copy it held and
/// its reader.
#[tracing::instrument(skip_all, fields(id))]
pub async fn expire(
    tx: &mut Tx,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<(i64, i64)>, StoreError> {
    let row: Option<(Option<i64>, i64)> = with_tx!(tx, conn => sqlx::query_as(
        "UPDATE holds SET state = 'expired', closed_at = $1 \
         WHERE id = $2 AND state = 'ready' AND pickup_deadline < $1 RETURNING copy_id, user_id",
    )
    .bind(stored(now))
    .bind(id)
    .fetch_optional(conn)
    .await)?;
    Ok(row.and_then(|(copy, user_id)| copy.map(|copy| (copy, user_id))))
}

/// The hold `id` as the API shows it.
#[tracing::instrument(skip_all, fields(id))]
pub async fn get_in(tx: &mut Tx, id: i64) -> Result<Option<HoldRow>, StoreError> {
    let sql = format!(
        "SELECT {HOLD_COLUMNS} FROM holds h JOIN titles t ON t.id = h.title_id WHERE h.id = $1"
    );
    Ok(with_tx!(tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)?)
}

/// A reader's active holds, oldest first, after id `after` (the cursor); at most `limit`.
#[tracing::instrument(skip_all, fields(user_id, limit))]
pub async fn list(
    db: &Db,
    user_id: i64,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<HoldRow>, StoreError> {
    let mut sql = format!(
        "SELECT {HOLD_COLUMNS} FROM holds h JOIN titles t ON t.id = h.title_id \
         WHERE h.user_id = $1 AND h.state IN ('waiting', 'ready')"
    );
    let mut binds = vec![Bind::Int(user_id)];
    if let Some(after) = after {
        binds.push(Bind::Int(after));
        sql.push_str(&format!(" AND h.id > ${}", binds.len()));
    }
    binds.push(Bind::Int(limit));
    sql.push_str(&format!(" ORDER BY h.id LIMIT ${}", binds.len()));
    Ok(with_db!(db, pool => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(pool).await)?)
}

/// Ready holds whose pickup deadline passed before `now` (hold id, title id), oldest first.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn overdue_pickups(
    db: &Db,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT id, title_id FROM holds WHERE state = 'ready' AND pickup_deadline < $1 \
         ORDER BY pickup_deadline LIMIT $2",
    )
    .bind(stored(now))
    .bind(limit)
    .fetch_all(pool)
    .await)?)
}

/// Titles where holds wait although a copy is available (a transaction that set a copy
/// aside rolled back at the wrong moment): the sweep gives those copies to the holders.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn stranded_titles(db: &Db, limit: i64) -> Result<Vec<i64>, StoreError> {
    let rows: Vec<(i64,)> = with_db!(db, pool => sqlx::query_as(
        "SELECT DISTINCT h.title_id FROM holds h WHERE h.state = 'waiting' AND EXISTS \
         (SELECT 1 FROM copies c WHERE c.title_id = h.title_id AND c.status = 'available') LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
