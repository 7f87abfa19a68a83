//! app-service: the platform's one public API.
//!
//! It relays `/auth/*` to user-service and `/scrape/*`, `/companies/*` and `/admin/*` to
//! scraper-service, answers 503 when one of them cannot be reached and 504 when it does not
//! answer in time, and serves the OpenAPI document with Swagger UI. It keeps no data of its
//! own; the services it relays to check the caller themselves (see [`routes`]).

pub mod config;
pub mod error;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;
pub mod upstream;
