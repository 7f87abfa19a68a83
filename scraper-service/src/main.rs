//! `scraper-service`: serve the API and run scrape workers; `scraper-service retransform
//! [IDNO]` re-parses stored pages without fetching and prints the counts as JSON.

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use scraper_service::{Application, Config};

const USAGE: &str = "usage: scraper-service [serve | retransform [IDNO]]";

#[tokio::main]
async fn main() -> ExitCode {
    common::config::load_dotenv();
    let telemetry = common::telemetry::init("scraper-service");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => serve().await,
        ["retransform"] => retransform(None).await,
        ["retransform", idno] => retransform(Some(idno)).await,
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scraper-service: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let kv = common::kv::from_env().await.map_err(|e| e.to_string())?;
    let app = Application::build(config, kv)
        .await
        .map_err(|e| e.to_string())?;
    let (trigger, shutdown) = common::server::shutdown_channel();
    trigger.on_os_signal();
    app.run_until_stopped(shutdown)
        .await
        .map_err(|e| e.to_string())
}

async fn retransform(idno: Option<&str>) -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let kv = common::kv::from_env().await.map_err(|e| e.to_string())?;
    let report = scraper_service::retransform(&config, &kv, idno)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}
