//! The company cache and its whole policy: `company:<idno>` → the latest record as JSON.
//!
//! A record is *fresh* while its page was fetched less than `COMPANY_CACHE_TTL_SECONDS` ago;
//! only fresh records are served without a new scrape. The cache holds a record exactly as
//! long as it stays fresh, so the cache and the database always agree on what is fresh:
//!
//! - [`CompanyCache::fresh`] answers from the cache, or else from the latest stored record
//!   when that one is fresh — and caches it again (e.g. after a Redis restart);
//! - [`CompanyCache::remember`] is called with each record just written (by a worker or a
//!   re-transform), built from what was written rather than read back; a record that is no
//!   longer fresh evicts the entry instead.
//!
//! The cache only saves work: when the store cannot be reached a read counts as a miss and a
//! write is skipped (both logged), so scraping keeps working without it.

use std::time::Duration;

use api::scrape::{CompanyRecord, Idno};
use common::kv::Kv;
use service_kit::db::Db;

use crate::store;

/// The company cache.
#[derive(Clone, Debug)]
pub struct CompanyCache {
    kv: Kv,
    ttl: Duration,
}

/// The cache key of a company.
pub fn key(idno: &str) -> String {
    format!("company:{idno}")
}

impl CompanyCache {
    /// Records stay fresh for `ttl` after their page was fetched.
    pub fn new(kv: Kv, ttl: Duration) -> Self {
        Self { kv, ttl }
    }

    /// The fresh record of `idno`, if there is one: cached, or else the latest stored one
    /// (then cached again for the rest of its freshness).
    pub async fn fresh(&self, db: &Db, idno: &Idno) -> Result<Option<CompanyRecord>, sqlx::Error> {
        if let Some(record) = self.get(idno).await {
            return Ok(Some(record));
        }
        let Some(stored) = store::records::latest(db, idno).await? else {
            return Ok(None);
        };
        if self.fresh_for(&stored.record).is_none() {
            return Ok(None);
        }
        self.remember(&stored.record).await;
        Ok(Some(stored.record))
    }

    /// Makes `record`, the company's latest, the cached one for as long as it stays fresh;
    /// evicts the company's entry when it is not fresh.
    pub async fn remember(&self, record: &CompanyRecord) {
        let key = key(&record.idno);
        let Some(ttl) = self.fresh_for(record) else {
            if let Err(e) = self.kv.del(&key).await {
                tracing::warn!(idno = %record.idno, error = %e, "cache eviction failed");
            }
            return;
        };
        let json = match serde_json::to_string(record) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise a company record");
                return;
            }
        };
        if let Err(e) = self.kv.set_ex(&key, &json, ttl).await {
            tracing::warn!(idno = %record.idno, error = %e, "cache write failed");
        }
    }

    /// How much longer `record` stays fresh; `None` when it is not fresh (or was never dated).
    fn fresh_for(&self, record: &CompanyRecord) -> Option<Duration> {
        let age = chrono::Utc::now().signed_duration_since(record.fetched_at?);
        let left = self.ttl.checked_sub(age.to_std().unwrap_or_default())?;
        // Shorter than a store's expiry can express: as good as stale.
        (left >= Duration::from_millis(1)).then_some(left)
    }

    /// The cached record of `idno`, if any (and readable).
    async fn get(&self, idno: &Idno) -> Option<CompanyRecord> {
        match self.kv.get(&key(idno.as_str())).await {
            Ok(Some(json)) => match serde_json::from_str(&json) {
                Ok(record) => Some(record),
                Err(e) => {
                    tracing::warn!(idno = %idno, error = %e, "unreadable cache entry; ignoring it");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(idno = %idno, error = %e, "cache read failed; treating as a miss");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fetched_ago: Option<chrono::Duration>) -> CompanyRecord {
        CompanyRecord {
            idno: "1008600038413".into(),
            company_name: Some("Exemplu SRL".into()),
            legal_form: None,
            address: None,
            registration_date: None,
            status: None,
            directors: vec![],
            activities: vec![],
            source_id: Some(1),
            source_url: None,
            fetched_at: fetched_ago.map(|ago| chrono::Utc::now() - ago),
            transformed_at: None,
            parser_version: None,
        }
    }

    #[tokio::test]
    async fn a_record_is_cached_only_while_fresh() {
        let kv = Kv::memory("cache-test:");
        let cache = CompanyCache::new(kv.clone(), Duration::from_secs(60));
        let idno = Idno::parse("1008600038413").unwrap();

        let recent = record(Some(chrono::Duration::seconds(50)));
        cache.remember(&recent).await;
        assert_eq!(cache.get(&idno).await, Some(recent.clone()));
        let left = cache.fresh_for(&recent).unwrap();
        assert!(left <= Duration::from_secs(10), "{left:?}");

        // A stale record (or one never dated) evicts the entry rather than being cached.
        cache
            .remember(&record(Some(chrono::Duration::seconds(61))))
            .await;
        assert_eq!(cache.get(&idno).await, None);
        cache.remember(&recent).await;
        cache.remember(&record(None)).await;
        assert_eq!(cache.get(&idno).await, None);
    }
}
