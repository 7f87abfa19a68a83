//! The book-service binary.

// Many small, short-lived allocations per request: mimalloc measured faster than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    common::bin::run("book-service", common::bin::Runtime::FromEnv, |rt| {
        rt.block_on(book_service::startup::serve_from_env())
    })
}
