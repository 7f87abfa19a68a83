//! The one shape of every binary's `main`: read `.env`, start telemetry, build the async
//! runtime, run the body, and on failure print one line naming the problem — after the
//! telemetry has been flushed, so the spans of a failing start reach the collector.
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     common::bin::run("my-service", common::bin::Runtime::FromEnv, |rt| {
//!         rt.block_on(async { Ok(()) })
//!     })
//! }
//! ```

use std::process::ExitCode;

use crate::config::{parse_or, ConfigError};

/// The error a binary's body may fail with; printed as one line.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which runtime the body gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// Sized by `WORKER_THREADS` (default: the number of CPUs). With 1, everything runs on
    /// the main thread (a current-thread runtime): no hand-offs between threads at all, the
    /// cheapest per request when several services share a host's cores (see
    /// `docs/operations.md#performance`). The body must `block_on` it for as long as it runs.
    FromEnv,
    /// One background worker thread, for a synchronous `main` whose real work runs on
    /// threads of its own (the gateway: Pingora owns its runtimes; this one drives the Redis
    /// connection).
    Background,
}

/// Runs a binary: see the module documentation. Returns the process's exit code.
pub fn run<F>(service: &'static str, runtime: Runtime, body: F) -> ExitCode
where
    F: FnOnce(&tokio::runtime::Runtime) -> Result<(), BoxError>,
{
    crate::config::load_dotenv();
    // Before any runtime exists: the trace exporter runs a blocking HTTP client.
    let telemetry = crate::telemetry::init(service);
    let result = build(runtime)
        .map_err(BoxError::from)
        .and_then(|rt| body(&rt));
    match result {
        Ok(()) => {
            telemetry.shutdown();
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "{service} failed");
            telemetry.shutdown();
            eprintln!("{service}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the runtime `kind` asks for.
pub fn build(kind: Runtime) -> Result<tokio::runtime::Runtime, ConfigError> {
    let mut builder = match kind {
        Runtime::Background => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(1);
            b
        }
        Runtime::FromEnv => {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            match parse_or("WORKER_THREADS", cpus)? {
                0 => return Err(ConfigError::new("WORKER_THREADS", "must be at least 1")),
                1 => tokio::runtime::Builder::new_current_thread(),
                n => {
                    let mut b = tokio::runtime::Builder::new_multi_thread();
                    b.worker_threads(n);
                    b
                }
            }
        }
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| ConfigError::new("WORKER_THREADS", format!("cannot start the runtime: {e}")))
}
