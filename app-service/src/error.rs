//! [`ApiError`]: the one error type of app-service, and how each case reaches the client.
//!
//! An error answer of user-service, scraper-service or book-service is not an error here: its
//! status, body and headers are relayed unchanged, and so is a circulation refusal (book-service
//! decided it; see [`crate::circulation`]). What app-service reports itself is only what
//! happened on the way: invalid input it checks before sending a command (422 in FastAPI's
//! shape), a service or the circulation bus that cannot be reached (503, with `Retry-After`)
//! or does not answer in time (504), and a failure of app-service's own (500, the cause in the
//! log only). Bodies over the size limit are refused by the body extractor (413) before any of
//! this, and tokens by the `Caller` extractor (the shared auth decision).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use circulation::BusError;
use service_kit::error::{json_error, unavailable, validation_error, FieldError};

/// What went wrong while relaying a request or sending a command.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Invalid input: the path, a header or the body (422, every field named).
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The service refused the connection, dropped it, or answered something that is not HTTP.
    #[error("{0} unavailable")]
    DependencyDown(&'static str),
    /// The service did not answer within `UPSTREAM_TIMEOUT_MS`.
    #[error("{0} timed out")]
    DependencyTimeout(&'static str),
    /// The command was not accepted by the bus: nothing was or will be done (503).
    #[error("circulation unavailable: {0}")]
    CirculationDown(String),
    /// No reply before the command's deadline: it may have been applied before it, never
    /// after (504; a retry with the same `Idempotency-Key` gets the first result).
    #[error("no circulation reply before the deadline")]
    CirculationTimeout,
    /// A failure of app-service itself; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<BusError> for ApiError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Unavailable(cause) => ApiError::CirculationDown(cause),
            BusError::Timeout => ApiError::CirculationTimeout,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Invalid(errors) => validation_error(errors),
            ApiError::DependencyDown(name) => {
                tracing::warn!(dependency = name, "dependency unreachable");
                unavailable(format!("{name} unavailable"))
            }
            ApiError::DependencyTimeout(name) => {
                tracing::warn!(dependency = name, "dependency timed out");
                json_error(StatusCode::GATEWAY_TIMEOUT, format!("{name} timed out"))
            }
            ApiError::CirculationDown(cause) => {
                tracing::warn!(%cause, "circulation command not accepted");
                unavailable("Circulation is unavailable; nothing was done, try again")
            }
            ApiError::CirculationTimeout => json_error(
                StatusCode::GATEWAY_TIMEOUT,
                "Circulation did not answer in time; retry with the same Idempotency-Key \
                 to get the first result",
            ),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}
