//! The service's one error type, [`ApiError`], and how each case is answered.
//!
//! Client mistakes are 4xx with a `detail` that says what was wrong. Token refusals, and the
//! session store being unreachable, are answered by the platform's one auth decision
//! ([`service_kit::error::auth_error`]), so user-service refuses a token exactly as every
//! other service does. Saturated hashing and an unreachable database are 503 with
//! `Retry-After`; anything else is 500 with a fixed phrase while the cause goes to the log.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use common::auth::AuthError;
use common::kv::KvError;
use service_kit::error::{
    auth_error, json_error, too_many_requests, unauthorized, unavailable, validation_error,
    FieldError, Forbidden,
};

use crate::hasher::HashError;
use crate::revocations::RevokeError;
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
    LoginThrottled(Duration),
    #[error("too many registrations")]
    RegistrationThrottled(Duration),
    /// A token refused, or the session store unreachable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The caller's role does not allow this.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("no such user")]
    UserNotFound,
    /// The caller has no such notification (someone else's is not theirs to see).
    #[error("no such notification")]
    NotificationNotFound,
    /// An admin's role changes only with the `set-role` command.
    #[error("the admin role changes only with set-role")]
    AdminRole,
    /// Input outside the body (path, query) that breaks a rule: 422.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// Password hashing is saturated: retry after the given time.
    #[error("password hashing is saturated")]
    Busy(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<KvError> for ApiError {
    fn from(e: KvError) -> Self {
        ApiError::Auth(AuthError::Unavailable(e))
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy { retry_after } => ApiError::Busy(retry_after),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<RevokeError> for ApiError {
    fn from(e: RevokeError) -> Self {
        match e {
            RevokeError::Store(e) => e.into(),
            RevokeError::Kv(e) => e.into(),
        }
    }
}

fn whole_seconds(d: Duration) -> u64 {
    d.as_secs_f64().ceil() as u64
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
            ApiError::BadCredentials => unauthorized(BAD_CREDENTIALS),
            ApiError::LoginThrottled(retry_after) => too_many_requests(
                "Too many failed login attempts; try again later",
                whole_seconds(retry_after),
            ),
            ApiError::RegistrationThrottled(retry_after) => too_many_requests(
                "Too many registrations; try again later",
                whole_seconds(retry_after),
            ),
            ApiError::Auth(e) => auth_error(&e),
            ApiError::Forbidden(e) => e.into_response(),
            ApiError::UserNotFound => json_error(StatusCode::NOT_FOUND, "User not found"),
            ApiError::NotificationNotFound => {
                json_error(StatusCode::NOT_FOUND, "Notification not found")
            }
            ApiError::AdminRole => json_error(
                StatusCode::FORBIDDEN,
                "An admin's role changes only with the set-role command",
            ),
            ApiError::Invalid(errors) => validation_error(errors),
            ApiError::Busy(retry_after) => {
                let mut resp = json_error(StatusCode::SERVICE_UNAVAILABLE, "Server busy; retry");
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(whole_seconds(retry_after).max(1)),
                );
                resp
            }
            ApiError::Store(StoreError::Unavailable(e)) => {
                tracing::error!(error = %e, "database unavailable");
                unavailable("Database unavailable")
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
