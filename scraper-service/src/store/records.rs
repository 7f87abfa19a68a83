//! Company records in `transformed_data`: one per stored page, replaced when the page is
//! transformed again.

use api::scrape::{CompanyRecord, Idno};
use chrono::NaiveDateTime;
use service_kit::db::Db;
use service_kit::with_db;

use super::now;
use super::pages::StoredPage;
use crate::transform::{ParsedCompany, PARSER_VERSION};

/// A record and its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// `transformed_data.id`.
    pub id: i64,
    pub record: CompanyRecord,
}

/// Writes (or, for a page transformed before, replaces) the record parsed from `page`, and
/// returns it as written — the same value a read would give, without reading it back.
#[tracing::instrument(skip_all, fields(idno = %idno, source_id = page.id))]
pub async fn write(
    db: &Db,
    page: &StoredPage,
    idno: &Idno,
    c: &ParsedCompany,
) -> Result<StoredRecord, sqlx::Error> {
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
    let id: i64 = with_db!(db, pool => sqlx::query_scalar(sql)
        .bind(idno.as_str())
        .bind(&c.company_name)
        .bind(&c.address)
        .bind(ts)
        .bind(&c.legal_form)
        .bind(&c.registration_date)
        .bind(&c.status)
        .bind(&directors)
        .bind(&activities)
        .bind(page.id)
        .bind(PARSER_VERSION)
        .fetch_one(pool)
        .await)?;
    let record = CompanyRecord {
        idno: idno.to_string(),
        company_name: c.company_name.clone(),
        legal_form: c.legal_form.clone(),
        address: c.address.clone(),
        registration_date: c.registration_date.clone(),
        status: c.status.clone(),
        directors: c.directors.clone(),
        activities: c.activities.clone(),
        source_id: Some(page.id),
        source_url: page.url.clone(),
        fetched_at: page.fetched_at.map(|t| t.and_utc()),
        transformed_at: Some(ts.and_utc()),
        parser_version: Some(PARSER_VERSION.to_owned()),
    };
    Ok(StoredRecord { id, record })
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    id: i64,
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

impl From<RecordRow> for StoredRecord {
    fn from(r: RecordRow) -> Self {
        let list = |json: Option<String>| -> Vec<String> {
            json.and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default()
        };
        let record = CompanyRecord {
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
            fetched_at: r.fetched_at.map(|t| t.and_utc()),
            transformed_at: r.transformed_at.map(|t| t.and_utc()),
            parser_version: r.parser_version,
        };
        StoredRecord { id: r.id, record }
    }
}

const RECORD_SELECT: &str =
    "SELECT CAST(t.id AS BIGINT) AS id, t.idno, t.company_name, t.legal_form, t.address, \
     t.registration_date, t.status, t.directors, t.activities, \
     CAST(t.source_id AS BIGINT) AS source_id, s.url AS source_url, \
     s.last_fetched_at AS fetched_at, t.transformed_at, t.parser_version \
     FROM transformed_data t LEFT JOIN source_data s ON s.id = t.source_id";

/// The latest record of `idno`: the one parsed from the most recently fetched page.
#[tracing::instrument(skip_all, fields(idno = %idno))]
pub async fn latest(db: &Db, idno: &Idno) -> Result<Option<StoredRecord>, sqlx::Error> {
    let sql = format!(
        "{RECORD_SELECT} WHERE t.idno = $1 \
         ORDER BY COALESCE(s.last_fetched_at, t.transformed_at) DESC, t.id DESC LIMIT 1"
    );
    let row: Option<RecordRow> = with_db!(db, pool => sqlx::query_as(&sql)
        .bind(idno.as_str())
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(StoredRecord::from))
}

/// The record with this `transformed_data.id`.
#[tracing::instrument(skip_all, fields(transformed_id = id))]
pub async fn by_id(db: &Db, id: i64) -> Result<Option<CompanyRecord>, sqlx::Error> {
    let sql = format!("{RECORD_SELECT} WHERE t.id = $1");
    let row: Option<RecordRow> =
        with_db!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
    Ok(row.map(|r| StoredRecord::from(r).record))
}
