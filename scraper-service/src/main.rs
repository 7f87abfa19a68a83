//! `scraper-service [serve]` serves the API and runs scrape workers;
//! `scraper-service retransform [IDNO]` re-parses stored pages (see [`scraper_service::commands`]).

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    common::bin::run("scraper-service", common::bin::Runtime::FromEnv, |rt| {
        let args: Vec<String> = std::env::args().skip(1).collect();
        rt.block_on(scraper_service::commands::run(&args))
    })
}
