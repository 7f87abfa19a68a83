//! `titles`: the catalogue and its search.
//!
//! Search matches each query word anywhere in the normalised text (see `crate::search`):
//! on PostgreSQL with `LIKE '%word%'` served by the pg_trgm GIN indexes, on SQLite through the
//! FTS5 trigram index (words of fewer than three characters, which trigrams cannot index, fall
//! back to `LIKE` on the table). Results are ordered by the normalised title, then id; the
//! cursor of a page is where the previous one ended.

use api::library::Book;
use chrono::{DateTime, Utc};
use service_kit::db::Db;
use service_kit::with_db;

use super::{bind_all, stored, Bind, StoreError, Tx};
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

const BOOK_COLUMNS: &str = "t.id, t.title, t.author, t.isbn, t.sort_key, \
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

/// Rewrites a title's text; `Duplicate` when the new ISBN belongs to another title.
#[tracing::instrument(skip_all, fields(id))]
pub async fn update(
    tx: &mut Tx,
    id: i64,
    text: &TitleText,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
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
    Ok(())
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

/// What to search for, already normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// Each must occur in the search text.
    pub words: Vec<String>,
    /// Each must occur in the author.
    pub author_words: Vec<String>,
    /// An exact ISBN-13.
    pub isbn: Option<String>,
    /// Only titles with a copy available now.
    pub available: bool,
    /// Only titles after this (sort key, id): the cursor.
    pub after: Option<(String, i64)>,
    /// At most this many rows.
    pub limit: i64,
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
    sql.push_str(" RETURNING id");
    let ids: Vec<(i64,)> =
        with_tx!(tx, conn => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(conn).await)?;
    let first = ids.iter().map(|(id,)| *id).min().unwrap_or(0);
    let last = ids.iter().map(|(id,)| *id).max().unwrap_or(0);
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

/// Refreshes the planner's statistics after a bulk load (`ANALYZE`).
#[tracing::instrument(skip_all)]
pub async fn refresh_statistics(db: &Db) -> Result<(), StoreError> {
    let sql = match db {
        Db::Postgres(_) => "ANALYZE titles, copies, holds",
        Db::Sqlite(_) => "ANALYZE",
    };
    with_db!(db, pool => sqlx::query(sql).execute(pool).await.map(|_| ()))?;
    Ok(())
}

/// The query plan of `search` (PostgreSQL: `EXPLAIN ANALYZE`, SQLite: `EXPLAIN QUERY PLAN`),
/// one line per row: to check that searches use the indexes.
#[tracing::instrument(skip_all)]
pub async fn explain_search(db: &Db, search: &Search) -> Result<Vec<String>, StoreError> {
    let (sql, binds) = search_sql(db, search);
    Ok(match db {
        Db::Postgres(pool) => {
            let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {sql}");
            let rows: Vec<(String,)> = bind_all!(sqlx::query_as(&sql), &binds)
                .fetch_all(pool)
                .await?;
            rows.into_iter().map(|(line,)| line).collect()
        }
        Db::Sqlite(pool) => {
            let sql = format!("EXPLAIN QUERY PLAN {sql}");
            let rows: Vec<(i64, i64, i64, String)> = bind_all!(sqlx::query_as(&sql), &binds)
                .fetch_all(pool)
                .await?;
            rows.into_iter().map(|(_, _, _, detail)| detail).collect()
        }
    })
}

/// The titles matching `search`, in order.
#[tracing::instrument(skip_all, fields(words = search.words.len(), limit = search.limit))]
pub async fn search(db: &Db, search: &Search) -> Result<Vec<BookRow>, StoreError> {
    let (sql, binds) = search_sql(db, search);
    Ok(with_db!(db, pool => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(pool).await)?)
}

/// The statement and its parameters for `search` on `db`'s backend.
pub fn search_sql(db: &Db, search: &Search) -> (String, Vec<Bind>) {
    let mut sql = format!("SELECT {BOOK_COLUMNS} FROM titles t WHERE 1 = 1");
    let mut binds = Vec::new();
    let param = |binds: &mut Vec<Bind>, value: Bind| {
        binds.push(value);
        format!("${}", binds.len())
    };
    match db {
        Db::Postgres(_) => {
            for (column, words) in [
                ("search_text", &search.words),
                ("author_key", &search.author_words),
            ] {
                for word in words {
                    let p = param(&mut binds, Bind::Text(format!("%{word}%")));
                    sql.push_str(&format!(" AND t.{column} LIKE {p}"));
                }
            }
        }
        Db::Sqlite(_) => {
            let mut terms = Vec::new();
            for (column, words) in [
                ("search_text", &search.words),
                ("author_key", &search.author_words),
            ] {
                for word in words {
                    if word.chars().count() >= 3 {
                        // Normalised words hold letters and digits only: safe in quotes.
                        terms.push(format!("{column} : \"{word}\""));
                    } else {
                        let p = param(&mut binds, Bind::Text(format!("%{word}%")));
                        sql.push_str(&format!(" AND t.{column} LIKE {p}"));
                    }
                }
            }
            if !terms.is_empty() {
                let p = param(&mut binds, Bind::Text(terms.join(" AND ")));
                sql.push_str(&format!(
                    " AND t.id IN (SELECT rowid FROM titles_fts WHERE titles_fts MATCH {p})"
                ));
            }
        }
    }
    if let Some(isbn) = &search.isbn {
        let p = param(&mut binds, Bind::Text(isbn.clone()));
        sql.push_str(&format!(" AND t.isbn = {p}"));
    }
    if search.available {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM copies c WHERE c.title_id = t.id AND c.status = 'available')",
        );
    }
    if let Some((sort_key, id)) = &search.after {
        let k = param(&mut binds, Bind::Text(sort_key.clone()));
        let i = param(&mut binds, Bind::Int(*id));
        sql.push_str(&format!(
            " AND (t.sort_key > {k} OR (t.sort_key = {k} AND t.id > {i}))"
        ));
    }
    let l = param(&mut binds, Bind::Int(search.limit));
    sql.push_str(&format!(" ORDER BY t.sort_key, t.id LIMIT {l}"));
    (sql, binds)
}
