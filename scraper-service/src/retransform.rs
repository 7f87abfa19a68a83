//! Re-running Transform over stored pages, without fetching anything.
//!
//! Used after a parser change (`PARSER_VERSION`): every stored page (or one company's) is
//! parsed again, its record in `transformed_data` replaced, and the cache refreshed.

use std::collections::HashSet;

use common::api::scrape::RetransformResponse;
use common::db::Db;
use common::kv::Kv;

use crate::config::Config;
use crate::error::RetransformError;
use crate::transform;
use crate::{cache, load};

/// Counts of a re-transform run.
pub type RetransformReport = RetransformResponse;

/// Pages read per database round trip.
const BATCH: i64 = 32;

/// Re-parses the stored pages of `idno` (or all) in `db`, refreshing cached records.
pub async fn run(
    db: &Db,
    kv: &Kv,
    config: &Config,
    idno: Option<&str>,
) -> Result<RetransformReport, RetransformError> {
    if let Some(i) = idno {
        common::api::scrape::check_idno(i).map_err(RetransformError::InvalidIdno)?;
    }
    let mut report = RetransformReport::default();
    let mut touched: HashSet<String> = HashSet::new();
    let mut after = 0i64;
    loop {
        let pages = load::pages_after(db, after, idno, BATCH).await?;
        let Some(last) = pages.last() else { break };
        after = last.id;
        for page in pages {
            let (Some(page_idno), Some(html)) = (page.idno, page.raw_html) else {
                report.processed += 1;
                report.failed += 1;
                continue;
            };
            report.processed += 1;
            let target = page_idno.clone();
            let parsed = tokio::task::spawn_blocking(move || transform::transform(&html, &target))
                .await
                .map_err(|e| RetransformError::Task(e.to_string()))?;
            match parsed {
                Ok(company) => {
                    load::store_record(db, page.id, &page_idno, &company).await?;
                    report.succeeded += 1;
                    touched.insert(page_idno);
                }
                Err(e) => {
                    tracing::info!(source_id = page.id, idno = %page_idno, reason = %e, "stored page yields no record");
                    report.failed += 1;
                }
            }
        }
    }
    for idno in &touched {
        match load::latest_record(db, idno).await {
            Ok(Some(record)) => cache::put(kv, &record, config.cache_ttl).await,
            Ok(None) => {}
            Err(e) => tracing::warn!(idno, error = %e, "cannot refresh the cache"),
        }
    }
    tracing::info!(
        processed = report.processed,
        succeeded = report.succeeded,
        failed = report.failed,
        "re-transform finished"
    );
    Ok(report)
}
