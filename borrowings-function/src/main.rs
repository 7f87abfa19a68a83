//! The borrowings-function binary (`bootstrap` on AWS Lambda's `provided.al2023` runtime).

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    common::bin::run("borrowings-function", common::bin::Runtime::FromEnv, |rt| {
        rt.block_on(borrowings_function::startup::serve_from_env())
    })
}
