//! Re-running Transform over stored pages, without fetching anything: after a parser change
//! (`PARSER_VERSION`), every stored page (or one company's) is parsed again and its record in
//! `transformed_data` replaced, and each company's latest record goes to the cache.
//!
//! A run is a row of `retransform_runs` ([`store::runs`]): its scope (all pages, or one
//! IDNO), counts and checkpoint. Pages are streamed in id order from the checkpoint on,
//! parsed on every core and committed in batches ([`pipeline`]); a batch's records and the
//! checkpoint move together, so a run stopped anywhere — crash, shutdown, database error —
//! loses at most the batches in flight and resumes after the last committed one. Starting a
//! run of a scope resumes the scope's unfinished run when there is one ([`begin`]): at most
//! one run per scope, held by one process at a time (a lease), whichever instance or command
//! starts it.

mod pipeline;
pub mod pool;
pub mod tasks;

use std::future::Future;
use std::time::{Duration, Instant};

use api::scrape::Idno;
use service_kit::db::Db;

use crate::cache::CompanyCache;
use crate::config::RetransformSettings;
use crate::store;
use crate::store::runs::Run;
use crate::transform::PARSER_VERSION;

use pipeline::Flow;

/// How a request to run a scope was met.
#[derive(Debug)]
pub enum Begun {
    /// A new run, from the first page.
    Started(Run),
    /// The scope's unfinished run, taken over at its checkpoint.
    Resumed(Run),
    /// The scope's run is held by a live process (maybe this one); nothing was started.
    Busy(Run),
}

/// Takes the run of `idno`'s scope (or of all pages) for `holder`: resumes the scope's
/// unfinished run of this parser version, abandons one of another version, or starts a new
/// one. Race-free: of several processes asking at once, one gets the run.
pub async fn begin(
    db: &Db,
    idno: Option<&Idno>,
    holder: &str,
    lease: Duration,
) -> Result<Begun, sqlx::Error> {
    let scope = store::runs::scope_of(idno);
    // Each turn either returns or saw the scope's run change under it (another process took
    // it, finished it or abandoned it); a few turns settle it.
    for _ in 0..5 {
        match store::runs::unfinished(db, scope).await? {
            None => {
                let total = store::pages::count_usable_after(db, 0, idno).await?;
                if let Some(run) = store::runs::create(db, scope, holder, lease, total).await? {
                    tracing::info!(run_id = %run.public_id, scope, total, "re-transform run started");
                    return Ok(Begun::Started(run));
                }
            }
            Some(run) if run.holds_lease() => return Ok(Begun::Busy(run)),
            Some(run) if run.parser_version != PARSER_VERSION => {
                // Resuming would leave the pages before its checkpoint parsed by the old rules.
                if store::runs::abandon(db, run.id).await? {
                    tracing::info!(run_id = %run.public_id, version = %run.parser_version,
                        "abandoned the unfinished run of an older parser");
                }
            }
            Some(run) => {
                let remaining = store::pages::count_usable_after(db, run.checkpoint, idno).await?;
                if let Some(run) = store::runs::resume(db, run.id, holder, lease, remaining).await?
                {
                    tracing::info!(run_id = %run.public_id, checkpoint = run.checkpoint,
                        processed = run.processed, remaining, "re-transform run resumed");
                    return Ok(Begun::Resumed(run));
                }
            }
        }
    }
    Err(sqlx::Error::Protocol(
        "could not take the re-transform run: it kept changing".into(),
    ))
}

/// Runs `run` (held by `holder`) to its end, renewing its lease, until every page after its
/// checkpoint is processed or `stop` resolves. `progress` sees the run after each committed
/// batch. Returns the run as it ended: succeeded; interrupted (by `stop`, or by the error in
/// its `error`), to be resumed; or, when its lease was lost, as its new holder has it.
pub async fn execute(
    db: &Db,
    cache: &CompanyCache,
    mut run: Run,
    holder: &str,
    settings: RetransformSettings,
    stop: impl Future<Output = ()>,
    progress: &mut (dyn FnMut(&Run) + Send),
) -> Result<Run, sqlx::Error> {
    let started = Instant::now();
    let (id, processed_before) = (run.id, run.processed);
    let heartbeat = async {
        let every = (settings.lease / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            match store::runs::heartbeat(db, id, holder, settings.lease).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(run_id = id, error = %e, "cannot renew a run's lease"),
            }
        }
    };
    let outcome = tokio::select! {
        flow = pipeline::run(db, cache, &mut run, holder, settings, progress) => Some(flow),
        () = heartbeat => Some(Ok(Flow::LeaseLost)),
        () = stop => None,
    };
    let ended = match outcome {
        Some(Ok(Flow::Done)) => store::runs::finish(db, id, holder).await?,
        Some(Ok(Flow::LeaseLost)) => {
            tracing::warn!(run_id = %run.public_id, "lost the run's lease; another process holds it");
            None
        }
        Some(Err(e)) => {
            tracing::error!(run_id = %run.public_id, error = %e, "re-transform run failed; it can be resumed");
            match store::runs::interrupt(db, id, holder, Some(&e.to_string())).await {
                Ok(ended) => ended,
                // Its lease will run out, and the run be resumable then.
                Err(_) => return Err(e),
            }
        }
        None => {
            tracing::info!(run_id = %run.public_id, "re-transform run stopped; it can be resumed");
            store::runs::interrupt(db, id, holder, None).await?
        }
    };
    let ended = match ended {
        Some(run) => run,
        None => store::runs::by_id(db, id).await?.unwrap_or(run),
    };
    let secs = started.elapsed().as_secs_f64();
    let pages = ended.processed - processed_before;
    tracing::info!(
        run_id = %ended.public_id,
        state = ended.state().as_str(),
        processed = ended.processed,
        succeeded = ended.succeeded,
        failed = ended.failed,
        pages_per_second = (pages as f64 / secs.max(1e-9)).round(),
        "re-transform run ended"
    );
    Ok(ended)
}
