//! The app-service binary: configuration → telemetry → build → serve until SIGTERM.

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::server::shutdown_channel;

fn main() {
    common::config::load_dotenv();
    let result = common::server::runtime()
        .map_err(Into::into)
        .and_then(|runtime| {
            runtime.block_on(async {
                let _telemetry = common::telemetry::init("app-service");
                run().await
            })
        });
    if let Err(e) = result {
        eprintln!("app-service: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = app_service::Config::from_env()?;
    let kv = common::kv::from_env().await?;
    let app = app_service::Application::build(config, kv).await?;
    let (trigger, shutdown) = shutdown_channel();
    trigger.on_os_signal();
    app.run_until_stopped(shutdown).await?;
    Ok(())
}
