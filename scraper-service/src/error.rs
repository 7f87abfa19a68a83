//! [`ApiError`]: everything a request can fail with, and how each case is answered (FastAPI's
//! JSON shape; causes of server-side failures are logged, never sent).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::kv::KvError;
use service_kit::error::{
    json_error, too_many_requests, unavailable, validation_error, FieldError, Forbidden,
};
use service_kit::extract::BodyRejection;

use crate::quota::OverQuota;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404 with this detail.
    #[error("{0}")]
    NotFound(&'static str),
    /// 422 listing the invalid fields.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// A body that could not be read or parsed (413, 400 or 422).
    #[error("request body refused")]
    Body(BodyRejection),
    /// The caller's role does not allow this (403).
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The caller went over a per-user cap (429 with `Retry-After`).
    #[error("{}", .0.spend.refusal())]
    OverQuota(OverQuota),
    /// The database failed; 503 when unreachable, else 500.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The key-value store failed (503).
    #[error(transparent)]
    Kv(#[from] KvError),
}

impl From<BodyRejection> for ApiError {
    fn from(rejection: BodyRejection) -> Self {
        match rejection {
            BodyRejection::Invalid(errors) => ApiError::Invalid(errors),
            other => ApiError::Body(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound(detail) => json_error(StatusCode::NOT_FOUND, detail),
            ApiError::Invalid(errors) => validation_error(errors),
            ApiError::Body(rejection) => rejection.into_response(),
            ApiError::Forbidden(forbidden) => forbidden.into_response(),
            ApiError::OverQuota(over) => {
                // Whole seconds, rounded up: retrying at the stated time must succeed.
                let secs =
                    over.retry_after.as_secs() + u64::from(over.retry_after.subsec_nanos() > 0);
                too_many_requests(over.spend.refusal(), secs)
            }
            ApiError::Db(e) if service_kit::db::is_unavailable(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                unavailable("Database unavailable")
            }
            ApiError::Db(e) => {
                tracing::error!(error = %e, "database error");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            ApiError::Kv(e) => {
                tracing::warn!(error = %e, "key-value store unavailable");
                unavailable("Key-value store unavailable")
            }
        }
    }
}
