//! The request and response bodies of the public API, shared by the service that implements
//! an endpoint and app-service, which exposes and documents it. Each type derives
//! `utoipa::ToSchema`, and request types implement [`crate::extract::Validate`].

pub mod auth;
pub mod scrape;
