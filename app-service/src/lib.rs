//! app-service: the platform's one public API.
//!
//! It relays `/auth/*`, `/users/`, `/admin/users/*` and `/notifications/*` to user-service
//! (the notification stream as a stream), `/scrape/*`, `/companies/*` and `/admin/retransform`
//! to scraper-service, and `GET /loans/`, `GET /holds/` to book-service; it turns borrowing,
//! returning, renewing and holds into [`circulation`] commands carrying the verified caller.
//! It answers 503 when a service or the bus cannot be reached and 504 when an answer does not
//! come in time, and serves the OpenAPI document with Swagger UI. It keeps no data of its own;
//! who checks the caller is said in [`routes`].

pub mod circulation;
pub mod config;
pub mod error;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;
pub mod upstream;
