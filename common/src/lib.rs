//! What every service of the platform shares.
//!
//! Services depend on this crate for the pieces that must behave identically everywhere:
//! reading configuration, the FastAPI-shaped JSON error body, the request extractors that
//! produce it, the storage backends (PostgreSQL or embedded SQLite), the key-value backends
//! (Redis or in-process), bearer tokens and sessions, serving with graceful shutdown, and
//! telemetry.

pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod jwks;
pub mod kv;
pub mod metrics;
pub mod server;
pub mod telemetry;
pub mod testing;
