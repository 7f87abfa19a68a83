//! `cargo run --release`: the whole platform in one process.
//!
//! `platform` (or `platform serve`) starts everything; `platform set-role USER ROLE` and
//! `platform retransform [IDNO]` run the services' admin commands against the same data.

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    common::bin::run("platform", common::bin::Runtime::FromEnv, |rt| {
        rt.block_on(platform::commands::run(&args))
    })
}
