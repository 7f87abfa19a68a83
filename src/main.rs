//! `cargo run --release`: the whole platform in one process.
//!
//! `platform` (or `platform serve`) starts everything; `platform set-role USER ROLE` and
//! `platform retransform [IDNO]` run the services' admin commands against the same data.

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use platform::{Stack, StackConfig};

fn usage() -> ! {
    eprintln!("usage: platform [serve | set-role <username> <user|admin> | retransform [IDNO]]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    common::config::load_dotenv();
    let _telemetry = common::telemetry::init("platform");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => serve().await,
        ["set-role", username, role] => set_role(username, role).await,
        ["retransform"] => retransform(None).await,
        ["retransform", idno] => retransform(Some(idno)).await,
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("platform: {e}");
        std::process::exit(1);
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
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
    println!("  data: {storage} · sessions and cache: {cache}");
    println!(
        "  services: app-service :{} · user-service :{} · scraper-service :{}",
        stack.app_port, stack.user_port, stack.scraper_port
    );
    common::server::terminate_signal().await;
    println!("stopping: draining in-flight requests and jobs");
    stack.stop().await;
    Ok(())
}

async fn set_role(username: &str, role: &str) -> Result<(), Box<dyn std::error::Error>> {
    let config = user_service::Config::from_env()?;
    user_service::set_role(&config.db, username, role).await?;
    println!("{username} is now {role}");
    Ok(())
}

async fn retransform(idno: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let config = scraper_service::Config::from_env()?;
    let kv = common::kv::from_env().await?;
    let report = scraper_service::retransform(&config, &kv, idno).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
