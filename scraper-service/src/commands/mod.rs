//! The binary's commands: `scraper-service [serve]` runs the service;
//! `scraper-service retransform [IDNO]` re-parses stored pages without fetching — resuming
//! the scope's interrupted run if there is one — with a progress bar on stderr, and prints
//! the counts as JSON.

mod progress;

use api::scrape::{Idno, RetransformResponse, RetransformState};
use common::bin::BoxError;
use common::kv::Kv;
use service_kit::db::Db;

use std::time::Duration;

use service_kit::db::DbConfig;

use crate::cache::CompanyCache;
use crate::config::RetransformSettings;
use crate::retransform::{self, Begun};
use crate::store;

use progress::ProgressBar;

/// How the binary is called.
pub const USAGE: &str = "usage: scraper-service [serve | retransform [IDNO]]";

/// Runs the command `args` (the arguments after the program name) names.
pub async fn run(args: &[String]) -> Result<(), BoxError> {
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => crate::startup::serve_from_env().await,
        ["retransform"] => print_retransform(None).await,
        ["retransform", raw] => {
            let idno = Idno::parse(raw).map_err(|e| format!("IDNO {raw:?}: {e}"))?;
            print_retransform(Some(&idno)).await
        }
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

async fn print_retransform(idno: Option<&Idno>) -> Result<(), BoxError> {
    let db = crate::config::db_from_env()?;
    let cache_ttl = crate::config::cache_ttl_from_env()?;
    let kv = common::kv::from_env().await?;
    let report = retransform(&db, cache_ttl, &kv, idno).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Re-runs Transform over the stored pages of `idno` (or all) in the database `db` names,
/// without any network fetch, and refreshes the cache in `kv` (records stay fresh for
/// `cache_ttl` from their fetch); the `RETRANSFORM_*` variables size the run. Resumes the
/// scope's interrupted run; fails when another process holds it, and when the run stops
/// before the end (SIGTERM, Ctrl-C, an error) — it is resumable then. Shows its progress on
/// stderr. Needs no token settings.
pub async fn retransform(
    db: &DbConfig,
    cache_ttl: Duration,
    kv: &Kv,
    idno: Option<&Idno>,
) -> Result<RetransformResponse, BoxError> {
    let settings = RetransformSettings::from_env()?;
    let db = Db::open(db, &store::POSTGRES_MIGRATIONS, &store::SQLITE_MIGRATIONS).await?;
    let cache = CompanyCache::new(kv.clone(), cache_ttl);
    let result = run_to_end(&db, &cache, settings, idno).await;
    db.close().await;
    result
}

async fn run_to_end(
    db: &Db,
    cache: &CompanyCache,
    settings: RetransformSettings,
    idno: Option<&Idno>,
) -> Result<RetransformResponse, BoxError> {
    let holder = format!("command-{}", uuid::Uuid::new_v4().simple());
    let run = match retransform::begin(db, idno, &holder, settings.lease).await? {
        Begun::Busy(run) => {
            return Err(format!(
                "run {} over {} is already running elsewhere ({} of {} pages done); \
                 run the command again once it has ended, or once its lease has run out",
                run.public_id, run.scope, run.processed, run.total
            )
            .into())
        }
        Begun::Started(run) => {
            eprintln!(
                "re-transform run {} over {}: {} pages, {} threads, batches of {}",
                run.public_id, run.scope, run.total, settings.threads, settings.batch
            );
            run
        }
        Begun::Resumed(run) => {
            eprintln!(
                "resuming re-transform run {} over {} after page {}: {} of {} pages done",
                run.public_id, run.scope, run.checkpoint, run.processed, run.total
            );
            run
        }
    };
    let mut bar = ProgressBar::new(&run);
    let stop = common::shutdown::terminate_signal();
    let ended = retransform::execute(db, cache, run, &holder, settings, stop, &mut |run| {
        bar.update(run)
    })
    .await?;
    bar.finish(&ended);
    if ended.state() != RetransformState::Succeeded {
        let why = ended.error.as_deref().unwrap_or("stopped");
        return Err(format!(
            "run {} {} ({why}) after {} of {} pages; run the command again to resume it",
            ended.public_id,
            ended.state().as_str(),
            ended.processed,
            ended.total
        )
        .into());
    }
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(RetransformResponse {
        processed: count(ended.processed),
        succeeded: count(ended.succeeded),
        failed: count(ended.failed),
    })
}
