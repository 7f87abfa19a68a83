//! The one error type of app-service and how each case reaches the client.
//!
//! Errors from user-service and scraper-service are not errors here: their status and body
//! are passed through unchanged. What app-service itself reports: a dependency that cannot be
//! reached (503) or does not answer in time (504), a missing or invalid token (401), a
//! non-admin on an admin route (403), and an unexpected failure (500, cause logged only).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::auth::AuthError;
use common::error::{json_error, unauthorized};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0} unavailable")]
    DependencyDown(&'static str),
    #[error("{0} timed out")]
    DependencyTimeout(&'static str),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("admin role required")]
    Forbidden,
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::DependencyDown(name) => {
                tracing::warn!(dependency = name, "dependency unreachable");
                json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{name} unavailable"),
                )
            }
            AppError::DependencyTimeout(name) => {
                tracing::warn!(dependency = name, "dependency timed out");
                json_error(StatusCode::GATEWAY_TIMEOUT, format!("{name} timed out"))
            }
            AppError::Auth(AuthError::Unavailable(e)) => {
                tracing::warn!(error = %e, "session store unreachable");
                json_error(StatusCode::SERVICE_UNAVAILABLE, "Session store unavailable")
            }
            AppError::Auth(e @ AuthError::Missing) => unauthorized(e.to_string(), false),
            AppError::Auth(e) => unauthorized(e.to_string(), true),
            AppError::Forbidden => json_error(StatusCode::FORBIDDEN, "Admin role required"),
            AppError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}
