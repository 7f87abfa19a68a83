//! Fetched pages in `source_data`, stored verbatim before anything parses them.
//!
//! An identical re-fetch (same IDNO, same SHA-256 of the body) is not stored again: the
//! existing row's `fetch_count` and `last_fetched_at` are bumped instead. Ids are read with
//! `CAST(… AS BIGINT)` because tables created by the original app use 32-bit ids.

use api::scrape::Idno;
use chrono::NaiveDateTime;
use service_kit::db::Db;
use service_kit::with_db;
use sha2::{Digest, Sha256};

use super::now;
use crate::extract::FetchedPage;

/// A page as stored: what a record parsed from it refers to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredPage {
    /// `source_data.id`.
    pub id: i64,
    /// The address it was fetched from (`NULL` in rows of the original app).
    pub url: Option<String>,
    /// When this body was last fetched (`NULL` only in rows the migrations could not date).
    pub fetched_at: Option<NaiveDateTime>,
}

/// The SHA-256 of `body`, in lower-case hex.
pub fn content_hash(body: &str) -> String {
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stores `page` for company `idno`, or counts a re-fetch of an identical body.
#[tracing::instrument(skip_all, fields(idno = %idno, status = page.status, bytes = page.html.len()))]
pub async fn store(db: &Db, idno: &Idno, page: &FetchedPage) -> Result<StoredPage, sqlx::Error> {
    // PostgreSQL text cannot hold NUL; nothing else is changed.
    let html = if page.html.contains('\0') {
        page.html.replace('\0', "\u{fffd}")
    } else {
        page.html.clone()
    };
    let hash = content_hash(&html);
    let sql = "INSERT INTO source_data \
               (idno, url, raw_html, status_code, created_at, content_hash, fetched_at, fetch_count, last_fetched_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $5, 1, $5) \
               ON CONFLICT (idno, content_hash) WHERE content_hash IS NOT NULL \
               DO UPDATE SET fetch_count = source_data.fetch_count + 1, last_fetched_at = excluded.last_fetched_at \
               RETURNING CAST(id AS BIGINT) AS id, url, last_fetched_at AS fetched_at";
    let ts = now();
    with_db!(db, pool => sqlx::query_as(sql)
        .bind(idno.as_str())
        .bind(&page.url)
        .bind(&html)
        .bind(i32::from(page.status))
        .bind(ts)
        .bind(&hash)
        .fetch_one(pool)
        .await)
}

/// A stored page with its body, as re-transform reads it. `idno` is as stored: rows of the
/// original app may hold anything there.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredHtml {
    #[sqlx(flatten)]
    pub page: StoredPage,
    pub idno: Option<String>,
    pub raw_html: Option<String>,
}

/// Which stored pages a parser can use (`$1`: after this id, `$2`: of this IDNO or any):
/// successful answers, and rows of the original app whose status is unknown.
const USABLE: &str = "id > $1 AND ($2 IS NULL OR idno = $2) \
     AND (status_code IS NULL OR (status_code >= 200 AND status_code < 300))";

/// Up to `limit` usable stored pages after id `after_id` (of `idno` only, when given), in id
/// order: one step of a keyset walk over `source_data`.
#[tracing::instrument(skip_all, fields(after_id, idno = idno.map(Idno::as_str), limit))]
pub async fn usable_after(
    db: &Db,
    after_id: i64,
    idno: Option<&Idno>,
    limit: i64,
) -> Result<Vec<StoredHtml>, sqlx::Error> {
    let sql = format!(
        "SELECT CAST(id AS BIGINT) AS id, url, last_fetched_at AS fetched_at, idno, raw_html \
         FROM source_data WHERE {USABLE} ORDER BY id LIMIT $3"
    );
    with_db!(db, pool => sqlx::query_as(&sql)
        .bind(after_id)
        .bind(idno.map(Idno::as_str))
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// How many usable stored pages come after id `after_id` (of `idno` only, when given).
#[tracing::instrument(skip_all, fields(after_id, idno = idno.map(Idno::as_str)))]
pub async fn count_usable_after(
    db: &Db,
    after_id: i64,
    idno: Option<&Idno>,
) -> Result<i64, sqlx::Error> {
    let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM source_data WHERE {USABLE}");
    with_db!(db, pool => sqlx::query_scalar(&sql)
        .bind(after_id)
        .bind(idno.map(Idno::as_str))
        .fetch_one(pool)
        .await)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            super::content_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
