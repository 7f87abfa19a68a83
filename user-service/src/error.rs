//! The service's error type and how each error is answered.
//!
//! Client mistakes are 4xx with a `detail` that says what was wrong; a backend that cannot be
//! reached is 503 (the session store failing closed: never a 200 without it); anything else is
//! 500 with a fixed phrase while the cause goes to the log.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use common::auth::AuthError;
use common::error::{json_error, too_many_requests, unauthorized};
use common::kv::KvError;

use crate::password::HashError;
use crate::store::{StoreError, Taken};

/// The same answer for an unknown user and a wrong password, so neither can be told apart.
pub const BAD_CREDENTIALS: &str = "Incorrect username or password";

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0:?} already registered")]
    Conflict(Taken),
    #[error("bad credentials")]
    BadCredentials,
    #[error("too many failed logins")]
    Throttled(Duration),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("password hashing queue is full")]
    Busy,
    #[error("session store unavailable: {0}")]
    Kv(#[from] KvError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ApiError::Busy,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Conflict(Taken::Username) => {
                json_error(StatusCode::CONFLICT, "Username already registered")
            }
            ApiError::Conflict(Taken::Email) => {
                json_error(StatusCode::CONFLICT, "Email already registered")
            }
            ApiError::Store(StoreError::Duplicate(taken)) => {
                ApiError::Conflict(taken).into_response()
            }
            ApiError::BadCredentials => unauthorized(BAD_CREDENTIALS, false),
            ApiError::Throttled(retry_after) => too_many_requests(
                "Too many failed login attempts; try again later",
                retry_after.as_secs_f64().ceil() as u64,
            ),
            ApiError::Auth(AuthError::Missing) => unauthorized("Not authenticated", false),
            ApiError::Auth(AuthError::Unavailable(e)) => ApiError::Kv(e).into_response(),
            ApiError::Auth(e) => unauthorized(e.to_string(), true),
            ApiError::Busy => {
                let mut resp = json_error(StatusCode::SERVICE_UNAVAILABLE, "Server busy; retry");
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                resp
            }
            ApiError::Kv(e) => {
                tracing::error!(error = %e, "session store unavailable");
                json_error(StatusCode::SERVICE_UNAVAILABLE, "Session store unavailable")
            }
            ApiError::Store(StoreError::Unavailable(e)) => {
                tracing::error!(error = %e, "database unavailable");
                json_error(StatusCode::SERVICE_UNAVAILABLE, "Database unavailable")
            }
            ApiError::Store(StoreError::Other(e)) => {
                tracing::error!(error = %e, "database error");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}
