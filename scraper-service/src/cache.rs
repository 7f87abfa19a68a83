//! The company cache: `company:<idno>` → the record as JSON, for `COMPANY_CACHE_TTL_SECONDS`.
//!
//! The cache only saves work: when the store cannot be reached a read counts as a miss and a
//! write is skipped (both logged), so scraping keeps working without it.

use std::time::Duration;

use common::api::scrape::CompanyRecord;
use common::kv::Kv;

/// The cache key of a company.
pub fn key(idno: &str) -> String {
    format!("company:{idno}")
}

/// The cached record of `idno`, if any (and readable).
pub async fn get(kv: &Kv, idno: &str) -> Option<CompanyRecord> {
    match kv.get(&key(idno)).await {
        Ok(Some(json)) => match serde_json::from_str(&json) {
            Ok(record) => Some(record),
            Err(e) => {
                tracing::warn!(idno, error = %e, "unreadable cache entry; ignoring it");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(idno, error = %e, "cache read failed; treating as a miss");
            None
        }
    }
}

/// Caches `record` for `ttl`.
pub async fn put(kv: &Kv, record: &CompanyRecord, ttl: Duration) {
    let json = match serde_json::to_string(record) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a company record");
            return;
        }
    };
    if let Err(e) = kv.set_ex(&key(&record.idno), &json, ttl).await {
        tracing::warn!(idno = %record.idno, error = %e, "cache write failed");
    }
}
