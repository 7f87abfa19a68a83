//! Load: pages go into `source_data` verbatim before anything parses them; company records
//! go into `transformed_data`, one per stored page.
//!
//! An identical re-fetch (same IDNO, same SHA-256 of the body) is not stored again: the
//! existing row's `fetch_count` and `last_fetched_at` are bumped instead. Ids are read with
//! `CAST(… AS BIGINT)` because tables created by the original app use 32-bit ids.

use chrono::NaiveDateTime;
use common::api::scrape::CompanyRecord;
use common::db::{now, Db};
use common::with_db;
use sha2::{Digest, Sha256};

use crate::extract::FetchedPage;
use crate::transform::{ParsedCompany, PARSER_VERSION};

/// Where a page was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPage {
    /// `source_data.id`.
    pub id: i64,
    /// How many fetches returned exactly this body (1: the page is new).
    pub fetch_count: i64,
}

/// The SHA-256 of `body`, in lower-case hex.
pub fn content_hash(body: &str) -> String {
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stores `page` for company `idno`, or counts a re-fetch of an identical body.
pub async fn store_page(
    db: &Db,
    idno: &str,
    page: &FetchedPage,
) -> Result<StoredPage, sqlx::Error> {
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
               RETURNING CAST(id AS BIGINT), CAST(fetch_count AS BIGINT)";
    let ts = now();
    let (id, fetch_count): (i64, i64) = with_db!(db, pool => sqlx::query_as(sql)
        .bind(idno)
        .bind(&page.url)
        .bind(&html)
        .bind(i32::from(page.status))
        .bind(ts)
        .bind(&hash)
        .fetch_one(pool)
        .await)?;
    Ok(StoredPage { id, fetch_count })
}

/// Writes (or, for a page transformed before, replaces) the record parsed from page
/// `source_id`. Returns `transformed_data.id`.
pub async fn store_record(
    db: &Db,
    source_id: i64,
    idno: &str,
    c: &ParsedCompany,
) -> Result<i64, sqlx::Error> {
    let sql = "INSERT INTO transformed_data \
               (idno, company_name, address, created_at, legal_form, registration_date, status, directors, \
                activities, source_id, parser_version, transformed_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $4) \
               ON CONFLICT (source_id) WHERE source_id IS NOT NULL DO UPDATE SET \
               idno = excluded.idno, company_name = excluded.company_name, address = excluded.address, \
               legal_form = excluded.legal_form, registration_date = excluded.registration_date, \
               status = excluded.status, directors = excluded.directors, activities = excluded.activities, \
               parser_version = excluded.parser_version, transformed_at = excluded.transformed_at \
               RETURNING CAST(id AS BIGINT)";
    let directors = serde_json::to_string(&c.directors).unwrap_or_else(|_| "[]".into());
    let activities = serde_json::to_string(&c.activities).unwrap_or_else(|_| "[]".into());
    let ts = now();
    with_db!(db, pool => sqlx::query_scalar(sql)
        .bind(idno)
        .bind(&c.company_name)
        .bind(&c.address)
        .bind(ts)
        .bind(&c.legal_form)
        .bind(&c.registration_date)
        .bind(&c.status)
        .bind(&directors)
        .bind(&activities)
        .bind(source_id)
        .bind(PARSER_VERSION)
        .fetch_one(pool)
        .await)
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    idno: String,
    company_name: Option<String>,
    legal_form: Option<String>,
    address: Option<String>,
    registration_date: Option<String>,
    status: Option<String>,
    directors: Option<String>,
    activities: Option<String>,
    source_id: Option<i64>,
    source_url: Option<String>,
    fetched_at: Option<NaiveDateTime>,
    transformed_at: Option<NaiveDateTime>,
    parser_version: Option<String>,
}

impl From<RecordRow> for CompanyRecord {
    fn from(r: RecordRow) -> Self {
        let list = |json: Option<String>| -> Vec<String> {
            json.and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default()
        };
        CompanyRecord {
            idno: r.idno,
            company_name: r.company_name,
            legal_form: r.legal_form,
            address: r.address,
            registration_date: r.registration_date,
            status: r.status,
            directors: list(r.directors),
            activities: list(r.activities),
            source_id: r.source_id,
            source_url: r.source_url,
            fetched_at: r.fetched_at,
            transformed_at: r.transformed_at,
            parser_version: r.parser_version,
        }
    }
}

const RECORD_SELECT: &str =
    "SELECT t.idno, t.company_name, t.legal_form, t.address, t.registration_date, t.status, \
     t.directors, t.activities, CAST(t.source_id AS BIGINT) AS source_id, s.url AS source_url, \
     s.last_fetched_at AS fetched_at, t.transformed_at, t.parser_version \
     FROM transformed_data t LEFT JOIN source_data s ON s.id = t.source_id";

/// The latest record of `idno`: the one parsed from the most recently fetched page.
pub async fn latest_record(db: &Db, idno: &str) -> Result<Option<CompanyRecord>, sqlx::Error> {
    let sql = format!(
        "{RECORD_SELECT} WHERE t.idno = $1 \
         ORDER BY COALESCE(s.last_fetched_at, t.transformed_at) DESC, t.id DESC LIMIT 1"
    );
    let row: Option<RecordRow> =
        with_db!(db, pool => sqlx::query_as(&sql).bind(idno).fetch_optional(pool).await)?;
    Ok(row.map(CompanyRecord::from))
}

/// The record with this `transformed_data.id`.
pub async fn record_by_id(db: &Db, id: i64) -> Result<Option<CompanyRecord>, sqlx::Error> {
    let sql = format!("{RECORD_SELECT} WHERE t.id = $1");
    let row: Option<RecordRow> =
        with_db!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
    Ok(row.map(CompanyRecord::from))
}

/// A stored page, as re-transform reads it.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredHtml {
    pub id: i64,
    pub idno: Option<String>,
    pub raw_html: Option<String>,
}

/// Up to `limit` stored pages after id `after_id` (of `idno` only, when given) that a parser
/// can use: successful answers, and rows of the original app whose status is unknown.
pub async fn pages_after(
    db: &Db,
    after_id: i64,
    idno: Option<&str>,
    limit: i64,
) -> Result<Vec<StoredHtml>, sqlx::Error> {
    let sql = "SELECT CAST(id AS BIGINT) AS id, idno, raw_html FROM source_data \
               WHERE id > $1 AND ($2 IS NULL OR idno = $2) \
               AND (status_code IS NULL OR (status_code >= 200 AND status_code < 300)) \
               ORDER BY id LIMIT $3";
    with_db!(db, pool => sqlx::query_as(sql).bind(after_id).bind(idno).bind(limit).fetch_all(pool).await)
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
