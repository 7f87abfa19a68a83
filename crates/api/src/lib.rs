//! The public API's contract: the request and response bodies of every endpoint, the error
//! bodies, and the validation rules of each request.
//!
//! The service that implements an endpoint answers with these types and app-service documents
//! them in the one OpenAPI document, so the two cannot drift apart. Each type derives
//! `utoipa::ToSchema`; request types implement [`Validate`]. Nothing here serves HTTP or
//! touches a database.

pub mod auth;
pub mod error;
pub mod library;
pub mod notifications;
pub mod scrape;
pub mod users;

pub use error::{Check, ErrorBody, FieldError, Validate, ValidationBody};
