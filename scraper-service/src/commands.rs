//! The binary's commands: `scraper-service [serve]` runs the service;
//! `scraper-service retransform [IDNO]` re-parses stored pages without fetching and prints
//! the counts as JSON.

use api::scrape::{Idno, RetransformResponse};
use common::bin::BoxError;
use common::kv::Kv;
use service_kit::db::Db;

use std::time::Duration;

use service_kit::db::DbConfig;

use crate::cache::CompanyCache;
use crate::store;

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
/// `cache_ttl` from their fetch). Needs no token settings.
pub async fn retransform(
    db: &DbConfig,
    cache_ttl: Duration,
    kv: &Kv,
    idno: Option<&Idno>,
) -> Result<RetransformResponse, BoxError> {
    let db = Db::open(db, &store::POSTGRES_MIGRATIONS, &store::SQLITE_MIGRATIONS).await?;
    let cache = CompanyCache::new(kv.clone(), cache_ttl);
    let result = crate::retransform::run(&db, &cache, idno).await;
    db.close().await;
    Ok(result?)
}
