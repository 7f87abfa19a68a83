//! Workers: take due jobs from the queue and run Extract → Load → Transform for each.
//!
//! `SCRAPE_WORKERS` tasks poll the queue every `SCRAPE_POLL_INTERVAL_MS` and are woken at once
//! when a job is queued in this process. While a job runs its lease is renewed. Transient
//! failures (network, timeout, 5xx, a page that never rendered) are retried with exponential
//! backoff up to the job's `max_attempts`; permanent ones (company not found, 404, a page
//! without company data) fail the job at once.

use std::sync::Arc;
use std::time::Duration;

use common::db::Db;
use common::kv::Kv;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::config::Config;
use crate::extract::{FetchError, Fetcher};
use crate::jobs::{self, Job};
use crate::transform::{self, TransformError};
use crate::{cache, load};

/// The failure reason of a job whose company does not exist.
pub const NOT_FOUND_REASON: &str = "company not found";

/// What workers and request handlers share.
pub struct Pipeline {
    pub config: Arc<Config>,
    pub db: Db,
    pub kv: Kv,
    pub fetcher: Arc<dyn Fetcher>,
    /// Wakes an idle worker when a job is queued.
    pub notify: Notify,
    /// This instance's lease-owner id.
    pub owner: String,
}

/// How one attempt ended.
#[derive(Debug)]
enum Outcome {
    Succeeded {
        source_id: i64,
        transformed_id: i64,
    },
    Retry {
        error: String,
        source_id: Option<i64>,
    },
    Fail {
        error: String,
        source_id: Option<i64>,
    },
}

/// The running workers of one instance.
pub struct WorkerPool {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    pipeline: Arc<Pipeline>,
}

impl WorkerPool {
    /// Starts `pipeline.config.workers` workers.
    pub fn start(pipeline: Arc<Pipeline>) -> WorkerPool {
        let (stop, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for n in 0..pipeline.config.workers {
            let p = pipeline.clone();
            let rx = stop.subscribe();
            tasks.spawn(async move { worker_loop(p, rx, n).await });
        }
        WorkerPool {
            stop,
            tasks,
            pipeline,
        }
    }

    /// Stops claiming jobs, lets running ones finish for at most `grace`, then abandons the
    /// rest and puts every job this instance still holds back in the queue.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "jobs still running after the grace period; releasing them"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        match jobs::release_owned(&self.pipeline.db, &self.pipeline.owner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "released running jobs back to the queue"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release running jobs; their leases will expire")
            }
        }
    }
}

async fn worker_loop(p: Arc<Pipeline>, mut stop: watch::Receiver<bool>, n: usize) {
    tracing::debug!(worker = n, "worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        match jobs::claim(&p.db, &p.owner, p.config.lease).await {
            Ok(Some(job)) => {
                run_job(&p, job).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot claim jobs"),
        }
        tokio::select! {
            _ = p.notify.notified() => {}
            _ = tokio::time::sleep(p.config.poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::debug!(worker = n, "worker stopped");
}

/// Runs one claimed job to its next state, renewing the lease meanwhile.
async fn run_job(p: &Pipeline, job: Job) {
    if job.attempts > job.max_attempts {
        // Its holders kept dying (lease expired each time): do not try forever.
        let error = job
            .error
            .clone()
            .unwrap_or_else(|| "worker lost the job repeatedly".into());
        finish(
            p,
            &job,
            Outcome::Fail {
                error,
                source_id: None,
            },
        )
        .await;
        return;
    }
    let heartbeat = async {
        let every = (p.config.lease / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            match jobs::heartbeat(&p.db, job.id, &p.owner, p.config.lease).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(job_id = job.id, "lost the lease of a running job"),
                Err(e) => tracing::warn!(job_id = job.id, error = %e, "cannot renew a job lease"),
            }
        }
    };
    let started = std::time::Instant::now();
    let span = tracing::info_span!("scrape_job", job_id = job.id, idno = %job.idno, attempt = job.attempts);
    let outcome = tokio::select! {
        outcome = attempt(p, &job).instrument(span) => outcome,
        // The heartbeat loop never ends; this arm only satisfies the type checker.
        _ = heartbeat => Outcome::Retry { error: "lease heartbeat stopped".into(), source_id: None },
    };
    tracing::info!(
        job_id = job.id,
        idno = %job.idno,
        attempt = job.attempts,
        elapsed_ms = started.elapsed().as_millis() as u64,
        outcome = ?outcome,
        "scrape attempt finished"
    );
    finish(p, &job, outcome).await;
}

/// Records the outcome of an attempt.
async fn finish(p: &Pipeline, job: &Job, outcome: Outcome) {
    let result = match outcome {
        Outcome::Succeeded {
            source_id,
            transformed_id,
        } => jobs::complete(&p.db, job.id, &p.owner, source_id, transformed_id).await,
        Outcome::Retry { error, source_id } if job.attempts < job.max_attempts => {
            let delay = backoff(&p.config, job.attempts);
            jobs::retry_later(&p.db, job.id, &p.owner, delay, &error, source_id).await
        }
        Outcome::Retry { error, source_id } | Outcome::Fail { error, source_id } => {
            jobs::fail(&p.db, job.id, &p.owner, &error, source_id).await
        }
    };
    match result {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            job_id = job.id,
            "job was taken over by another worker; result dropped"
        ),
        // The lease will expire and the job will run again.
        Err(e) => tracing::error!(job_id = job.id, error = %e, "cannot record the job's outcome"),
    }
}

/// The delay before retry number `attempts`: `SCRAPE_RETRY_BASE_MS` doubled per earlier
/// attempt, at most `SCRAPE_RETRY_MAX_MS`.
pub fn backoff(config: &Config, attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    config
        .retry_base
        .saturating_mul(1u32 << doublings)
        .min(config.retry_max)
}

/// One Extract → Load → Transform pass.
async fn attempt(p: &Pipeline, job: &Job) -> Outcome {
    let url = p.config.company_url(&job.idno);
    let page = match p.fetcher.fetch(&url).await {
        Ok(page) => page,
        Err(FetchError::Transient(m)) => {
            return Outcome::Retry {
                error: format!("source unreachable: {m}"),
                source_id: None,
            }
        }
        Err(FetchError::Permanent(m)) => {
            return Outcome::Fail {
                error: format!("fetch refused: {m}"),
                source_id: None,
            }
        }
    };

    // Load before any parsing: the page is kept whatever Transform makes of it.
    let stored = match load::store_page(&p.db, &job.idno, &page).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a fetched page");
            return Outcome::Retry {
                error: "database unavailable while storing the page".into(),
                source_id: None,
            };
        }
    };
    let source_id = Some(stored.id);
    match page.status {
        404 | 410 => {
            return Outcome::Fail {
                error: NOT_FOUND_REASON.into(),
                source_id,
            }
        }
        408 | 425 | 429 | 500..=599 => {
            return Outcome::Retry {
                error: format!("source unreachable: HTTP {}", page.status),
                source_id,
            }
        }
        200..=299 => {}
        other => {
            return Outcome::Fail {
                error: format!("source answered HTTP {other}"),
                source_id,
            }
        }
    }

    let idno = job.idno.clone();
    let rendered = page.rendered;
    let html = page.html;
    let parsed = match tokio::task::spawn_blocking(move || transform::transform(&html, &idno)).await
    {
        Ok(result) => result,
        Err(e) => {
            return Outcome::Fail {
                error: format!("transform crashed: {e}"),
                source_id,
            }
        }
    };
    let company = match parsed {
        Ok(c) => c,
        Err(TransformError::NotFound) => {
            return Outcome::Fail {
                error: NOT_FOUND_REASON.into(),
                source_id,
            }
        }
        Err(TransformError::NoData) if !rendered => {
            let error = format!(
                "source unreachable: the page did not render within {} ms",
                p.config.page_timeout.as_millis()
            );
            return Outcome::Retry { error, source_id };
        }
        Err(e) => {
            return Outcome::Fail {
                error: e.to_string(),
                source_id,
            }
        }
    };

    let transformed_id = match load::store_record(&p.db, stored.id, &job.idno, &company).await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a company record");
            return Outcome::Retry {
                error: "database unavailable while storing the record".into(),
                source_id,
            };
        }
    };
    refresh_cache(p, &job.idno).await;
    Outcome::Succeeded {
        source_id: stored.id,
        transformed_id,
    }
}

/// Puts the latest record of `idno` in the cache.
pub async fn refresh_cache(p: &Pipeline, idno: &str) {
    match load::latest_record(&p.db, idno).await {
        Ok(Some(record)) => cache::put(&p.kv, &record, p.config.cache_ttl).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(idno, error = %e, "cannot read the record to cache"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut c = Config::defaults(common::db::DbConfig::sqlite(
            std::path::Path::new("/tmp"),
            "x",
        ));
        c.retry_base = Duration::from_millis(1000);
        c.retry_max = Duration::from_millis(5000);
        let got: Vec<u128> = (1..=5).map(|a| backoff(&c, a).as_millis()).collect();
        assert_eq!(got, [1000, 2000, 4000, 5000, 5000]);
        assert_eq!(backoff(&c, i32::MAX), Duration::from_millis(5000));
    }
}
