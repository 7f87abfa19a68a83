//! The platform's edge: a Pingora reverse proxy that routes by path, load-balances and
//! health-checks the app-service instances, and checks bearer tokens (signature, expiry,
//! live session) before anything reaches a protected route.
//!
//! The decisions are plain, unit-tested functions ([`routing::route`],
//! [`auth::TokenCheck::check`]); [`proxy`] wires them into Pingora's request phases and
//! [`server`] runs it all (see there for how listening, draining and shutdown work).
//! Plain HTTP only: Pingora is built without TLS; terminate TLS in front of the gateway.

pub mod auth;
pub mod config;
pub mod metrics;
pub mod proxy;
pub mod routing;
pub mod server;
pub mod session_cache;

pub use config::Config;
pub use server::{run_forever, serve_until_signal, start, GatewayHandle, StartupError};
