//! What every component of the platform shares, the gateway included: configuration from the
//! environment, the key-value store (Redis or in process), bearer tokens, sessions and the one
//! auth decision, the issuer's public keys, telemetry, metrics, shutdown signals and the shape
//! of every binary's `main`.
//!
//! Nothing here serves HTTP, touches a relational database or describes the API: those live
//! in `service-kit` and `api`, which the gateway does not link.

pub mod auth;
pub mod bin;
pub mod config;
pub mod jwks;
pub mod kv;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
