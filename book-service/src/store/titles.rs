//! `titles`: the catalogue, each title listed under its terms as it is written
//! ([`super::terms`]); searching it is [`super::search`].

use api::library::Book;
use chrono::{DateTime, Utc};
use service_kit::db::Db;
use service_kit::with_db;

use super::terms::{self, TitleTerms};
use super::{bind_all, stored, Bind, StoreError, Tx};
use crate::search;
use crate::with_tx;

/// A title with its circulation figures.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BookRow {
    pub id: i64,
    pub title: String,
    pub author: String,
    pub isbn: String,
    pub sort_key: String,
    pub copies_total: i64,
    pub copies_available: i64,
    pub holds_waiting: i64,
}

impl BookRow {
    /// The API view.
    pub fn into_api(self) -> Book {
        Book {
            id: self.id,
            title: self.title,
            author: self.author,
            isbn: self.isbn,
            copies_total: self.copies_total,
            copies_available: self.copies_available,
            holds_waiting: self.holds_waiting,
        }
    }
}

pub(super) const BOOK_COLUMNS: &str = "t.id, t.title, t.author, t.isbn, t.sort_key, \
     (SELECT COUNT(*) FROM copies c WHERE c.title_id = t.id) AS copies_total, \
     (SELECT COUNT(*) FROM copies c WHERE c.title_id = t.id AND c.status = 'available') AS copies_available, \
     (SELECT COUNT(*) FROM holds h WHERE h.title_id = t.id AND h.state = 'waiting') AS holds_waiting";

/// A title's stored text: as given, and normalised for search and order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleText {
    pub title: String,
    pub author: String,
    pub isbn: String,
    pub search_text: String,
    pub author_key: String,
    pub sort_key: String,
}

impl TitleText {
    /// How title `id` is listed under its terms.
    fn terms_of(&self, title_id: i64) -> TitleTerms<'_> {
        TitleTerms {
            title_id,
            sort_key: &self.sort_key,
            terms: search::terms(&self.search_text),
        }
    }
}

/// Adds a title; `Duplicate` when its ISBN is catalogued already.
#[tracing::instrument(skip_all, fields(isbn = %text.isbn))]
pub async fn insert(tx: &mut Tx, text: &TitleText, now: DateTime<Utc>) -> Result<i64, StoreError> {
    let sql = "INSERT INTO titles (title, author, isbn, search_text, author_key, sort_key, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id";
    let (id,): (i64,) = with_tx!(tx, conn => sqlx::query_as(sql)
        .bind(&text.title)
        .bind(&text.author)
        .bind(&text.isbn)
        .bind(&text.search_text)
        .bind(&text.author_key)
        .bind(&text.sort_key)
        .bind(stored(now))
        .fetch_one(conn)
        .await)?;
    terms::add(tx, &[text.terms_of(id)]).await?;
    Ok(id)
}

/// The title's stored text, locked for the transaction; `None` when there is no such title.
#[tracing::instrument(skip_all, fields(id))]
pub async fn lock_text(tx: &mut Tx, id: i64) -> Result<Option<TitleText>, StoreError> {
    let sql = format!(
        "SELECT title, author, isbn, search_text, author_key, sort_key FROM titles WHERE id = $1{}",
        tx.lock()
    );
    let row: Option<(String, String, String, String, String, String)> =
        with_tx!(tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)?;
    Ok(row.map(
        |(title, author, isbn, search_text, author_key, sort_key)| TitleText {
            title,
            author,
            isbn,
            search_text,
            author_key,
            sort_key,
        },
    ))
}

/// Locks the title for the transaction (every change to its holds and set-aside copies
/// takes this lock first); false when there is no such title.
#[tracing::instrument(skip_all, fields(id))]
pub async fn lock(tx: &mut Tx, id: i64) -> Result<bool, StoreError> {
    let sql = format!("SELECT id FROM titles WHERE id = $1{}", tx.lock());
    let row: Option<(i64,)> =
        with_tx!(tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)?;
    Ok(row.is_some())
}

/// The title's name and author, locking it for the transaction (what an event of it
/// carries; see `crate::outbox`); `None` when there is no such title.
#[tracing::instrument(skip_all, fields(id))]
pub async fn lock_names(tx: &mut Tx, id: i64) -> Result<Option<(String, String)>, StoreError> {
    let sql = format!(
        "SELECT title, author FROM titles WHERE id = $1{}",
        tx.lock()
    );
    Ok(with_tx!(tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)?)
}

/// Rewrites a title's text from `before` (as [`lock_text`] read it) to `text`; `Duplicate`
/// when the new ISBN belongs to another title.
#[tracing::instrument(skip_all, fields(id))]
pub async fn update(
    tx: &mut Tx,
    id: i64,
    before: &TitleText,
    text: &TitleText,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    terms::remove(tx, &before.terms_of(id)).await?;
    let sql =
        "UPDATE titles SET title = $1, author = $2, isbn = $3, search_text = $4, author_key = $5, \
               sort_key = $6, updated_at = $7 WHERE id = $8";
    with_tx!(tx, conn => sqlx::query(sql)
        .bind(&text.title)
        .bind(&text.author)
        .bind(&text.isbn)
        .bind(&text.search_text)
        .bind(&text.author_key)
        .bind(&text.sort_key)
        .bind(stored(now))
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    terms::add(tx, &[text.terms_of(id)]).await
}

/// One title with its figures.
#[tracing::instrument(skip_all, fields(id))]
pub async fn get(db: &Db, id: i64) -> Result<Option<BookRow>, StoreError> {
    let sql = format!("SELECT {BOOK_COLUMNS} FROM titles t WHERE t.id = $1");
    Ok(with_db!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?)
}

/// One title with its figures, inside a transaction (to answer a change with its result).
#[tracing::instrument(skip_all, fields(id))]
pub async fn get_in(tx: &mut Tx, id: i64) -> Result<Option<BookRow>, StoreError> {
    let sql = format!("SELECT {BOOK_COLUMNS} FROM titles t WHERE t.id = $1");
    Ok(with_tx!(tx, conn => sqlx::query_as(&sql).bind(id).fetch_optional(conn).await)?)
}

/// Adds many titles at once with one available copy each (bulk imports, benchmarks): one
/// multi-row statement per call; ISBNs must be new.
#[tracing::instrument(skip_all, fields(count = texts.len()))]
pub async fn insert_many(
    tx: &mut Tx,
    texts: &[TitleText],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if texts.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO titles (title, author, isbn, search_text, author_key, sort_key, created_at, updated_at) VALUES ",
    );
    let mut binds = Vec::with_capacity(texts.len() * 6 + 1);
    binds.push(Bind::Time(stored(now)));
    for (i, text) in texts.iter().enumerate() {
        let base = binds.len();
        for value in [
            &text.title,
            &text.author,
            &text.isbn,
            &text.search_text,
            &text.author_key,
            &text.sort_key,
        ] {
            binds.push(Bind::Text(value.clone()));
        }
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, $1, $1)",
            base + 1,
            base + 2,
            base + 3,
            base + 4,
            base + 5,
            base + 6
        ));
    }
    sql.push_str(" RETURNING id, isbn");
    let ids: Vec<(i64, String)> =
        with_tx!(tx, conn => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(conn).await)?;
    let id_of: std::collections::HashMap<&str, i64> =
        ids.iter().map(|(id, isbn)| (isbn.as_str(), *id)).collect();
    let listed: Vec<TitleTerms<'_>> = texts
        .iter()
        .map(|text| text.terms_of(id_of[text.isbn.as_str()]))
        .collect();
    terms::add(tx, &listed).await?;
    let first = ids.iter().map(|(id, _)| *id).min().unwrap_or(0);
    let last = ids.iter().map(|(id, _)| *id).max().unwrap_or(0);
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO copies (title_id, status, created_at) \
         SELECT id, 'available', created_at FROM titles WHERE id BETWEEN $1 AND $2",
    )
    .bind(first)
    .bind(last)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// After a bulk load, what autovacuum would do soon after: fresh statistics for the planner
/// and, on PostgreSQL, the visibility map that lets searches read the terms' index alone
/// (`VACUUM ANALYZE`).
#[tracing::instrument(skip_all)]
pub async fn refresh_statistics(db: &Db) -> Result<(), StoreError> {
    match db {
        Db::Postgres(pool) => {
            // VACUUM runs outside a transaction: the simple protocol, one statement.
            sqlx::raw_sql("VACUUM ANALYZE titles, copies, holds, terms, title_terms")
                .execute(pool)
                .await?;
        }
        Db::Sqlite(pool) => {
            sqlx::query("ANALYZE").execute(pool).await?;
        }
    }
    Ok(())
}
