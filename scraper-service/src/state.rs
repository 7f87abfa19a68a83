//! [`AppState`]: what request handlers, scrape workers and re-transform runs share.

use std::sync::Arc;

use axum::extract::FromRef;
use common::auth::Authenticator;
use common::kv::Kv;
use service_kit::db::Db;
use tokio::sync::Notify;

use crate::cache::CompanyCache;
use crate::config::Config;
use crate::extract::Fetcher;
use crate::quota::Quotas;
use crate::retransform::tasks::Retransforms;

/// The service's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    /// The key-value store (sessions, the cache, per-user counters).
    pub kv: Kv,
    pub cache: CompanyCache,
    /// Per-user caps on scrape jobs and forced refreshes.
    pub quotas: Quotas,
    /// Verifies callers' tokens and sessions.
    pub auth: Authenticator,
    pub fetcher: Arc<dyn Fetcher>,
    /// Wakes an idle worker of this instance when a job is queued here.
    pub job_queued: Arc<Notify>,
    /// This instance's name as the holder of job and re-transform run leases.
    pub lease_holder: Arc<str>,
    /// The re-transform runs this instance holds in the background.
    pub retransforms: Retransforms,
}

impl AppState {
    /// The state of one instance, with a fresh lease-holder name.
    pub fn new(
        config: Config,
        db: Db,
        kv: Kv,
        auth: Authenticator,
        fetcher: Arc<dyn Fetcher>,
    ) -> Self {
        Self {
            cache: CompanyCache::new(kv.clone(), config.cache_ttl),
            quotas: Quotas::new(kv.clone(), config.quotas),
            config: Arc::new(config),
            db,
            kv,
            auth,
            fetcher,
            job_queued: Arc::new(Notify::new()),
            lease_holder: format!("scraper-{}", uuid::Uuid::new_v4().simple()).into(),
            retransforms: Retransforms::default(),
        }
    }
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}
