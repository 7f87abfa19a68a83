//! The user-service binary: serves the API, or runs an administrative command (see
//! `user_service::commands`).

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    common::bin::run("user-service", common::bin::Runtime::FromEnv, |rt| {
        rt.block_on(user_service::commands::run(&args))
    })
}
