//! The gateway driven over HTTP the way clients would, in front of real upstreams (small axum
//! apps that echo what they received, count hits, stream events; a raw one that drops
//! connections) and real session stores (in-memory always, Redis when `TEST_REDIS_URL` is
//! set).
//!
//! - [`proxying`]: routing, tokens and sessions, limits, failures, metrics, shutdown;
//! - [`abuse`]: slow, greedy and malformed clients;
//! - [`library`]: the library's routes, book-service's primary and backup groups, retries,
//!   server-sent events;
//! - [`edge`]: what held against an outside probe — smuggling framings, absolute-form targets
//!   and internal hosts, requests racing a logout;
//! - [`ui`]: the web UI — the shell served by the gateway, the areas from their services, the
//!   browser session's cookie and CSRF check.

mod abuse;
mod edge;
mod library;
mod proxying;
mod support;
mod ui;
