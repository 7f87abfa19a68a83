//! The platform's edge: a Pingora reverse proxy that routes by path to its upstream groups
//! (app-service; book-service with a backup group; the borrowings function), load-balances
//! and health-checks their instances, and checks bearer tokens (signature, expiry, live
//! session) — or the web UI's session cookie, with its CSRF proof — before anything reaches a
//! protected route. It serves the web UI's shell itself ([`shell`]).
//!
//! The decisions are plain, unit-tested functions ([`routing::route_for`],
//! [`cookie::credentials`], [`auth::TokenCheck::check`], [`shell::page`],
//! [`error::failure_response`]); [`proxy`] wires them into
//! Pingora's request phases, [`connection`] and [`client_stream`] guard each client
//! connection (per-address limit, request-head deadline and size, lingering close), and
//! [`server`] assembles and runs it all. Plain HTTP only: Pingora is built without TLS;
//! terminate TLS in front of the gateway.

pub mod auth;
pub mod background;
pub mod client_stream;
pub mod config;
pub mod connection;
pub mod cookie;
pub mod drain;
pub mod error;
pub mod listeners;
pub mod metrics;
pub mod proxy;
pub mod routing;
pub mod server;
pub mod session_cache;
pub mod shell;
pub mod upstreams;

pub use config::Config;
pub use error::StartupError;
pub use server::{serve_from_env, serve_until_signal, start, GatewayHandle};
