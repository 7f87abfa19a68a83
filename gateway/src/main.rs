//! The standalone gateway: configuration from the environment, Redis sessions, Pingora until
//! SIGTERM or SIGINT (then drained gracefully).

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::exit;

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("gateway: {message}");
    exit(1)
}

// Pingora runs its own runtimes, so `main` is synchronous; the small runtime below only drives
// the Redis connection, and lives until the gateway has stopped.
fn main() {
    common::config::load_dotenv();
    let telemetry = common::telemetry::init("gateway");
    let config = gateway::Config::from_env().unwrap_or_else(|e| fail(e));
    if common::config::var("REDIS_URL").is_none() {
        // In-memory sessions would be another process's: every token would look revoked.
        fail("REDIS_URL: required by the standalone gateway to check sessions");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("gateway-redis")
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("cannot start a runtime: {e}")));
    let kv = runtime
        .block_on(common::kv::from_env())
        .unwrap_or_else(|e| fail(e));
    // Connect now, on this runtime, so the connection's driver task lives here. Redis being
    // down is not fatal: protected routes answer 503 until it is back.
    if let Err(e) = runtime.block_on(kv.ping()) {
        tracing::warn!(error = %e, "Redis is not reachable yet; protected routes answer 503 until it is");
    }
    let result = gateway::serve_until_signal(config, kv);
    telemetry.shutdown();
    drop(runtime);
    if let Err(e) = result {
        fail(e);
    }
}
