//! The skeleton every axum service of the platform is built on (see
//! `docs/adding-a-service.md`): configuration of the server part, binding and serving with the
//! shared layers (request ids, tracing, metrics, limits, JSON 404/405/500), graceful
//! shutdown, the JSON error responses, body extractors that answer 422 in FastAPI's shape,
//! the verified [`caller::Caller`], routes with and without a trailing slash, health and
//! readiness, and the relational backend (PostgreSQL, or SQLite when embedded).

pub mod caller;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod health;
pub mod routing;
pub mod server;

pub use caller::Caller;
pub use client_ip::ClientIp;
pub use config::{HttpLimits, ServerConfig};
pub use routing::RouteBoth;
