//! Re-running Transform over stored pages, without fetching anything.
//!
//! Used after a parser change (`PARSER_VERSION`): every stored page (or one company's) is
//! parsed again and its record in `transformed_data` replaced; then each company's latest
//! record written goes to the cache (the one from its most recently fetched page, as
//! [`crate::store::records::latest`] orders them).

use std::collections::HashMap;

use api::scrape::{CompanyRecord, Idno, RetransformResponse};
use chrono::{DateTime, Utc};
use service_kit::db::Db;

use crate::cache::CompanyCache;
use crate::store;
use crate::transform;

/// Pages read per database round trip.
const BATCH: i64 = 32;

/// Re-parses the stored pages of `idno` (or all) in `db`, and caches each company's latest
/// record. A page that yields no record (or crashes the parser) is counted as failed.
pub async fn run(
    db: &Db,
    cache: &CompanyCache,
    idno: Option<&Idno>,
) -> Result<RetransformResponse, sqlx::Error> {
    let mut report = RetransformResponse::default();
    let mut latest: HashMap<Idno, Newest> = HashMap::new();
    let mut after = 0i64;
    loop {
        let pages = store::pages::usable_after(db, after, idno, BATCH).await?;
        let Some(last) = pages.last() else { break };
        after = last.page.id;
        for stored in pages {
            report.processed += 1;
            let source_id = stored.page.id;
            let (Some(page_idno), Some(html)) = (stored.idno, stored.raw_html) else {
                report.failed += 1;
                continue;
            };
            // Rows of the original app may name no valid company.
            let Ok(page_idno) = Idno::parse(&page_idno) else {
                tracing::info!(source_id, idno = %page_idno, "stored page has no valid IDNO");
                report.failed += 1;
                continue;
            };
            let target = page_idno.clone();
            let parsed =
                tokio::task::spawn_blocking(move || transform::transform(&html, &target)).await;
            match parsed {
                Ok(Ok(company)) => {
                    let written =
                        store::records::write(db, &stored.page, &page_idno, &company).await?;
                    report.succeeded += 1;
                    let candidate = Newest::of(written.id, written.record);
                    match latest.get(&page_idno) {
                        Some(known) if known.key >= candidate.key => {}
                        _ => {
                            latest.insert(page_idno, candidate);
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::info!(source_id, idno = %page_idno, reason = %e, "stored page yields no record");
                    report.failed += 1;
                }
                Err(e) => {
                    tracing::error!(source_id, idno = %page_idno, error = %e, "transform crashed");
                    report.failed += 1;
                }
            }
        }
    }
    for newest in latest.values() {
        cache.remember(&newest.record).await;
    }
    tracing::info!(
        processed = report.processed,
        succeeded = report.succeeded,
        failed = report.failed,
        "re-transform finished"
    );
    Ok(report)
}

/// A company's newest record so far, with the key [`store::records::latest`] orders by.
struct Newest {
    key: (Option<DateTime<Utc>>, i64),
    record: CompanyRecord,
}

impl Newest {
    fn of(transformed_id: i64, record: CompanyRecord) -> Self {
        let fetched = record.fetched_at.or(record.transformed_at);
        Self {
            key: (fetched, transformed_id),
            record,
        }
    }
}
