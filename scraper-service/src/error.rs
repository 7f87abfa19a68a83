//! The service's errors: what a request can fail with (turned into FastAPI-shaped JSON) and
//! what start-up can fail with (one line naming the variable at fault).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::config::ConfigError;
use common::db::DbStartError;
use common::error::{json_error, validation_error, FieldError};
use common::kv::KvError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404 with this detail.
    #[error("{0}")]
    NotFound(&'static str),
    /// 422 listing the invalid fields.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The database failed; 503 when unreachable, else 500.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The key-value store failed (503).
    #[error(transparent)]
    Kv(#[from] KvError),
    /// Anything else (500); the cause is logged, never sent.
    #[error("internal: {0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound(detail) => json_error(StatusCode::NOT_FOUND, detail),
            ApiError::Invalid(errors) => validation_error(errors),
            ApiError::Db(e) if common::db::is_unavailable(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                json_error(StatusCode::SERVICE_UNAVAILABLE, "Database unavailable")
            }
            ApiError::Db(e) => {
                tracing::error!(error = %e, "database error");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            ApiError::Kv(e) => {
                tracing::warn!(error = %e, "key-value store unavailable");
                json_error(StatusCode::SERVICE_UNAVAILABLE, "Cache unavailable")
            }
            ApiError::Internal(cause) => {
                tracing::error!(cause, "internal error");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] DbStartError),
}

/// Why a re-transform run failed as a whole (single pages that fail are only counted).
#[derive(Debug, thiserror::Error)]
pub enum RetransformError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("IDNO: {0}")]
    InvalidIdno(common::api::scrape::IdnoError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("transform task failed: {0}")]
    Task(String),
}

impl From<RetransformError> for ApiError {
    fn from(e: RetransformError) -> Self {
        match e {
            RetransformError::Db(e) => ApiError::Db(e),
            RetransformError::InvalidIdno(err) => {
                ApiError::Invalid(vec![common::api::scrape::idno_field_error(
                    vec!["body".into(), "idno".into()],
                    err,
                )])
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
