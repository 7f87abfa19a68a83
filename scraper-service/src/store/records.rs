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

/// The columns a record is written with, in the order [`upsert_sql`] binds them.
const INSERT: &str = "INSERT INTO transformed_data \
     (idno, company_name, address, created_at, legal_form, registration_date, status, directors, \
      activities, source_id, parser_version, transformed_at) VALUES ";
/// A page transformed before has its record replaced.
const ON_CONFLICT: &str = " ON CONFLICT (source_id) WHERE source_id IS NOT NULL DO UPDATE SET \
     idno = excluded.idno, company_name = excluded.company_name, address = excluded.address, \
     legal_form = excluded.legal_form, registration_date = excluded.registration_date, \
     status = excluded.status, directors = excluded.directors, activities = excluded.activities, \
     parser_version = excluded.parser_version, transformed_at = excluded.transformed_at \
     RETURNING CAST(id AS BIGINT) AS id, CAST(source_id AS BIGINT) AS source_id";
/// Parameters bound per record.
pub(super) const PARAMS_PER_RECORD: usize = 11;

/// The upsert of `rows` records: per row, parameters `$k+1 … $k+11` bound as
/// [`bind_record!`] does, the write time (`$k+4`) used for both `created_at` and
/// `transformed_at`. Returns `(id, source_id)` of each row written.
pub(super) fn upsert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(INSERT.len() + ON_CONFLICT.len() + rows * 64);
    sql.push_str(INSERT);
    for row in 0..rows {
        let k = row * PARAMS_PER_RECORD;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (i, p) in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 4].iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(k + p).to_string());
        }
        sql.push(')');
    }
    sql.push_str(ON_CONFLICT);
    sql
}

/// Binds the parameters of one record of [`upsert_sql`] to query `$q`: company `$c` of
/// `$idno`, parsed from page `$page`, written at `$ts` (a macro: one body for both backends).
macro_rules! bind_record {
    ($q:expr, $page:expr, $idno:expr, $c:expr, $ts:expr) => {
        $q.bind($idno.as_str())
            .bind(&$c.company_name)
            .bind(&$c.address)
            .bind($ts)
            .bind(&$c.legal_form)
            .bind(&$c.registration_date)
            .bind(&$c.status)
            .bind($crate::store::records::json_list(&$c.directors))
            .bind($crate::store::records::json_list(&$c.activities))
            .bind($page.id)
            .bind($crate::transform::PARSER_VERSION)
    };
}
pub(super) use bind_record;

/// A list column as stored: a JSON array.
pub(super) fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
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
    let sql = upsert_sql(1);
    let ts = now();
    let (id, _source_id): (i64, i64) = with_db!(db, pool => bind_record!(sqlx::query_as(&sql), page, idno, c, ts)
        .fetch_one(pool)
        .await)?;
    Ok(StoredRecord {
        id,
        record: record_of(page, idno, c, ts),
    })
}

/// The record of company `c` (`idno`) parsed from `page`, as written at `ts`.
pub(super) fn record_of(
    page: &StoredPage,
    idno: &Idno,
    c: &ParsedCompany,
    ts: NaiveDateTime,
) -> CompanyRecord {
    CompanyRecord {
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
    }
}

/// Of the records parsed from pages `$1 … $n`, those that are their company's latest record
/// (the one [`latest`] returns, by the same order): the records worth caching. One indexed
/// look-up per record, whatever the size of the tables.
pub(super) fn latest_among_sql(n: usize) -> String {
    let ids: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT CAST(t.source_id AS BIGINT) FROM transformed_data t \
         WHERE t.source_id IN ({}) AND t.id = (\
             SELECT o.id FROM transformed_data o LEFT JOIN source_data os ON os.id = o.source_id \
             WHERE o.idno = t.idno \
             ORDER BY COALESCE(os.last_fetched_at, o.transformed_at) DESC, o.id DESC LIMIT 1)",
        ids.join(", ")
    )
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
