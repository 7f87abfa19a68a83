//! The standalone gateway: configuration from the environment, Redis sessions, Pingora until
//! SIGTERM or SIGINT (then drained gracefully). Pingora runs its own runtimes, so the runtime
//! given here (one background thread) only drives the Redis connection.

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    common::bin::run("gateway", common::bin::Runtime::Background, |rt| {
        gateway::serve_from_env(rt)
    })
}
