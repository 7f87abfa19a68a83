//! The user-service binary: serves the API, or runs `set-role <username> <user|admin>`.

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use common::server::ShutdownTrigger;
use user_service::{Application, Config};

const USAGE: &str = "usage: user-service                              serve the API (configured by environment variables)
       user-service set-role <username> <user|admin>   change a user's role";

fn main() -> ExitCode {
    common::config::load_dotenv();
    let runtime = match common::server::runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("user-service: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run())
}

async fn run() -> ExitCode {
    // Kept until exit: dropping it flushes the spans still buffered for export.
    let _telemetry = common::telemetry::init("user-service");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => serve().await,
        ["set-role", username, role] => set_role(username, role).await,
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unrecognised arguments\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("user-service: {message}");
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
    let (trigger, shutdown): (ShutdownTrigger, _) = common::server::shutdown_channel();
    trigger.on_os_signal();
    app.run_until_stopped(shutdown)
        .await
        .map_err(|e| format!("server error: {e}"))
}

async fn set_role(username: &str, role: &str) -> Result<(), String> {
    let db = common::db::DbConfig::from_env("USER_SERVICE", "users.sqlite")
        .map_err(|e| e.to_string())?;
    user_service::set_role(&db, username, role)
        .await
        .map_err(|e| e.to_string())?;
    println!("{username} now has role {role}");
    Ok(())
}
