//! The service's own metric: `scrape_jobs{state}`, the number of jobs in each state (`queued`
//! is the queue depth), read from the database each time `/metrics` is scraped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use api::scrape::JobState;
use common::metrics::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use service_kit::db::Db;
use service_kit::server::BeforeScrape;

use crate::store;

/// The label of one series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

/// Every job state, in the order they are reported.
const STATES: [JobState; 4] = [
    JobState::Queued,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
];

/// Registers `scrape_jobs` in `metrics` and returns the hook that refreshes it from `db`
/// before each scrape (a failed count keeps the previous values, and is logged).
pub fn queue_depth(metrics: &Metrics, db: Db) -> BeforeScrape {
    let jobs = Family::<StateLabel, Gauge>::default();
    metrics.register(
        "scrape_jobs",
        "Scrape jobs by state (queued = queue depth)",
        jobs.clone(),
    );
    Arc::new(move || -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let (jobs, db) = (jobs.clone(), db.clone());
        Box::pin(async move {
            match store::jobs::count_by_state(&db).await {
                Ok(counts) => {
                    for state in STATES {
                        let n = counts
                            .iter()
                            .find(|(s, _)| s == state.as_str())
                            .map_or(0, |(_, n)| *n);
                        jobs.get_or_create(&StateLabel {
                            state: state.as_str(),
                        })
                        .set(n);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot count jobs for /metrics"),
            }
        })
    })
}
