//! [`ApiError`]: the one error type of app-service, and how each case reaches the client.
//!
//! An error answer of user-service or scraper-service is not an error here: its status,
//! body and headers are relayed unchanged. What app-service reports itself is only what
//! happened on the way to them: a service that cannot be reached (503) or does not answer in
//! time (504), and a failure of app-service's own (500, the cause in the log only). Bodies
//! over the size limit are refused by the body extractor (413) before any of this.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use service_kit::error::{json_error, unavailable};

/// What went wrong while relaying a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The service refused the connection, dropped it, or answered something that is not HTTP.
    #[error("{0} unavailable")]
    DependencyDown(&'static str),
    /// The service did not answer within `UPSTREAM_TIMEOUT_MS`.
    #[error("{0} timed out")]
    DependencyTimeout(&'static str),
    /// A failure of app-service itself; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::DependencyDown(name) => {
                tracing::warn!(dependency = name, "dependency unreachable");
                unavailable(format!("{name} unavailable"))
            }
            ApiError::DependencyTimeout(name) => {
                tracing::warn!(dependency = name, "dependency timed out");
                json_error(StatusCode::GATEWAY_TIMEOUT, format!("{name} timed out"))
            }
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}
