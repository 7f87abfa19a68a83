//! The `platform` binary's commands: `serve` (the default), `set-role` and `retransform`.
//!
//! The administrative commands act on the data the running one-process platform uses: the
//! same database (the SQLite files under `DATA_DIR`, or the per-service schema a shared
//! `DATABASE_URL` gets) — see [`crate::stack::one_process_db`]. They need no token settings.

use api::scrape::Idno;
use common::bin::BoxError;

use crate::stack::{one_process_db, Stack, StackConfig};

const USAGE: &str =
    "usage: platform [serve | set-role <username> <user|librarian|admin> | retransform [IDNO]]";

/// Runs what `args` (the arguments after the program name) ask for.
pub async fn run(args: &[String]) -> Result<(), BoxError> {
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => serve().await,
        ["set-role", username, role] => set_role(username, role).await,
        ["retransform"] => retransform(None).await,
        ["retransform", raw] => {
            let idno = Idno::parse(raw).map_err(|e| format!("IDNO {raw:?}: {e}"))?;
            retransform(Some(&idno)).await
        }
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

async fn serve() -> Result<(), BoxError> {
    let config = StackConfig::from_env()?;
    let storage = match &config.user.db.url {
        Some(_) => "PostgreSQL".to_owned(),
        None => format!(
            "SQLite under {}",
            config
                .user
                .db
                .sqlite_path
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
    };
    let kv = common::kv::from_env().await?;
    let cache = if kv.backend_name() == "redis" {
        "Redis"
    } else {
        "in process"
    };
    let commands = match config.bus.transport {
        circulation::Transport::Amqp(_) => "RabbitMQ",
        circulation::Transport::Local { .. } => "in process (durable in DATA_DIR/bus.sqlite)",
    };
    let stack = Stack::start(config, kv).await?;
    let gw = stack.gateway_addr;
    let host = if gw.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        gw.ip().to_string()
    };
    println!(
        "platform ready: API http://{host}:{} · Swagger UI http://{host}:{}/docs",
        gw.port(),
        gw.port()
    );
    println!("  data: {storage} · sessions and cache: {cache} · circulation commands: {commands}");
    println!(
        "  services: app-service :{} · user-service :{} · scraper-service :{} · book-service :{}",
        stack.app_port, stack.user_port, stack.scraper_port, stack.book_port
    );
    common::shutdown::terminate_signal().await;
    println!("stopping: draining in-flight requests and jobs");
    stack.stop().await;
    Ok(())
}

async fn set_role(username: &str, role: &str) -> Result<(), BoxError> {
    let db = one_process_db(
        user_service::config::db_from_env()?,
        "USER_SERVICE",
        "user_service",
    );
    // With Redis the sessions can be ended from here; in memory they live in the running
    // platform, which ends them itself from the request the change leaves in the database.
    let kv = match common::config::var("REDIS_URL") {
        Some(_) => Some(common::kv::from_env().await?),
        None => None,
    };
    let outcome = user_service::commands::set_role(&db, kv.as_ref(), username, role).await?;
    println!("{username} now has role {role}; {outcome}");
    Ok(())
}

async fn retransform(idno: Option<&Idno>) -> Result<(), BoxError> {
    let db = one_process_db(
        scraper_service::config::db_from_env()?,
        "SCRAPER_SERVICE",
        "scraper_service",
    );
    let cache_ttl = scraper_service::config::cache_ttl_from_env()?;
    let kv = common::kv::from_env().await?;
    let report = scraper_service::commands::retransform(&db, cache_ttl, &kv, idno).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
