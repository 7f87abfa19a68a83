//! End-to-end tests of the whole platform, in one test binary: the stack is started in
//! process (or, in `one_process`, the `platform` binary itself) and driven through the
//! gateway as a client would, on SQLite + the in-process store (+ the in-process circulation
//! queue) always and on PostgreSQL + Redis when `TEST_DATABASE_URL` / `TEST_REDIS_URL` are set
//! (+ RabbitMQ with `TEST_AMQP_URL`).
//!
//! `traces` installs the global tracer: nextest runs every test in a process of its own, which
//! keeps it from the others (run this binary with nextest, as the README says).

mod auth;
mod browser;
#[path = "../../scraper-service/tests/support/fixture.rs"]
#[allow(dead_code)]
mod fixture;
mod library;
mod one_process;
mod scrape;
mod support;
mod traces;
