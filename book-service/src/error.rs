//! [`ApiError`]: the one error type of book-service's HTTP handlers, and how each case is
//! answered.
//!
//! Client mistakes are 4xx with a `detail` saying what was wrong (422 in FastAPI's shape for
//! invalid input); a role the caller lacks is 403; a database that cannot be reached is 503;
//! anything else is 500 with a fixed phrase while the cause goes to the log. Token refusals
//! are answered by the `Caller` extractor itself (the shared auth decision).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use service_kit::error::{json_error, unavailable, validation_error, FieldError, Forbidden};

use crate::store::StoreError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Invalid input (422).
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The caller's role does not allow it (403).
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The caller asked for another reader's data (403).
    #[error("not allowed to see another reader's {0}")]
    OthersData(&'static str),
    /// No such object (404), e.g. `Book not found`.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The ISBN is catalogued already (409).
    #[error("duplicate ISBN")]
    DuplicateIsbn,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Invalid(errors) => validation_error(errors),
            ApiError::Forbidden(forbidden) => forbidden.into_response(),
            ApiError::OthersData(what) => json_error(
                StatusCode::FORBIDDEN,
                format!("Only librarians may see another reader's {what}"),
            ),
            ApiError::NotFound(what) => {
                json_error(StatusCode::NOT_FOUND, format!("{what} not found"))
            }
            ApiError::DuplicateIsbn | ApiError::Store(StoreError::Duplicate(_)) => json_error(
                StatusCode::CONFLICT,
                "A title with this ISBN is already catalogued",
            ),
            ApiError::Store(StoreError::Unavailable(e)) => {
                tracing::error!(error = %e, "database unavailable");
                unavailable("Database unavailable")
            }
            ApiError::Store(e) => {
                tracing::error!(error = %e, "database error");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}
