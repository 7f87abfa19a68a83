//! Workers: take due jobs from the queue, run an attempt of each ([`crate::pipeline`]) and
//! record its outcome.
//!
//! `SCRAPE_WORKERS` tasks poll the queue every `SCRAPE_POLL_INTERVAL_MS` and are woken at once
//! when a job is queued in this process. While a job runs its lease is renewed. A transient
//! failure is retried with exponential backoff up to the job's `max_attempts`; a permanent one
//! fails the job at once.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::pipeline::{self, Outcome};
use crate::state::AppState;
use crate::store;
use crate::store::jobs::Job;

/// The running workers of one instance.
pub struct WorkerPool {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    state: AppState,
}

impl WorkerPool {
    /// Starts `state.config.workers` workers.
    pub fn start(state: AppState) -> WorkerPool {
        let (stop, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for n in 0..state.config.workers {
            let s = state.clone();
            let rx = stop.subscribe();
            tasks.spawn(async move { worker_loop(s, rx, n).await });
        }
        WorkerPool { stop, tasks, state }
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
        match store::jobs::release_held(&self.state.db, &self.state.lease_holder).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "released running jobs back to the queue"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release running jobs; their leases will expire")
            }
        }
    }
}

async fn worker_loop(s: AppState, mut stop: watch::Receiver<bool>, n: usize) {
    tracing::debug!(worker = n, "worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        match store::jobs::claim(&s.db, &s.lease_holder, s.config.lease).await {
            Ok(Some(job)) => {
                run_job(&s, job).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot claim jobs"),
        }
        tokio::select! {
            _ = s.job_queued.notified() => {}
            _ = tokio::time::sleep(s.config.poll_interval) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::debug!(worker = n, "worker stopped");
}

/// Runs one claimed job to its next state, renewing the lease meanwhile.
async fn run_job(s: &AppState, job: Job) {
    if job.attempts > job.max_attempts {
        // Its holders kept dying (lease expired each time): do not try forever.
        let error = job
            .error
            .clone()
            .unwrap_or_else(|| "worker lost the job repeatedly".into());
        let outcome = Outcome::Fail {
            error,
            source_id: None,
        };
        finish(s, &job, outcome).await;
        return;
    }
    let heartbeat = async {
        let every = (s.config.lease / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            match store::jobs::heartbeat(&s.db, job.id, &s.lease_holder, s.config.lease).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(job_id = job.id, "lost the lease of a running job"),
                Err(e) => tracing::warn!(job_id = job.id, error = %e, "cannot renew a job lease"),
            }
        }
    };
    let started = std::time::Instant::now();
    let span = tracing::info_span!("scrape_job", job_id = job.id, idno = %job.idno, attempt = job.attempts);
    let outcome = tokio::select! {
        outcome = pipeline::attempt(s, &job).instrument(span) => outcome,
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
    finish(s, &job, outcome).await;
}

/// Records the outcome of an attempt.
async fn finish(s: &AppState, job: &Job, outcome: Outcome) {
    let (db, holder) = (&s.db, &*s.lease_holder);
    let result = match outcome {
        Outcome::Succeeded {
            source_id,
            transformed_id,
        } => store::jobs::complete(db, job.id, holder, source_id, transformed_id).await,
        Outcome::Retry { error, source_id } if job.attempts < job.max_attempts => {
            let delay = backoff(s.config.retry_base, s.config.retry_max, job.attempts);
            store::jobs::retry_later(db, job.id, holder, delay, &error, source_id).await
        }
        Outcome::Retry { error, source_id } | Outcome::Fail { error, source_id } => {
            store::jobs::fail(db, job.id, holder, &error, source_id).await
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

/// The delay before retry number `attempts`: `base` (`SCRAPE_RETRY_BASE_MS`) doubled per
/// earlier attempt, at most `max` (`SCRAPE_RETRY_MAX_MS`).
pub fn backoff(base: Duration, max: Duration, attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    base.saturating_mul(1u32 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let (base, max) = (Duration::from_millis(1000), Duration::from_millis(5000));
        let got: Vec<u128> = (1..=5).map(|a| backoff(base, max, a).as_millis()).collect();
        assert_eq!(got, [1000, 2000, 4000, 5000, 5000]);
        assert_eq!(backoff(base, max, i32::MAX), Duration::from_millis(5000));
    }
}
