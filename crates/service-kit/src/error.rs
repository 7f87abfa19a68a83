//! Turning errors into responses, the same way in every service.
//!
//! Policy: a client mistake is a 4xx whose `detail` says what was wrong; a server-side failure
//! is a 5xx whose `detail` is a fixed phrase, while the cause goes to the log, never to the
//! client. Each service keeps its own `ApiError` enum (in its `error.rs`) and turns every case
//! into a response with these helpers, so the body is the same everywhere: FastAPI's
//! `{"detail": "..."}`, or 422 with a list of [`FieldError`]s.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use common::auth::{AuthError, Role};

pub use api::{ErrorBody, FieldError, ValidationBody};

/// A response with `{"detail": detail}` and the given status.
pub fn json_error(status: StatusCode, detail: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            detail: detail.into(),
        }),
    )
        .into_response()
}

/// The 422 response listing every invalid field.
pub fn validation_error(errors: Vec<FieldError>) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(ValidationBody { detail: errors }),
    )
        .into_response()
}

/// 401 with `WWW-Authenticate: Bearer`, for credentials that were not a token (a wrong
/// password). Token refusals go through [`auth_error`].
pub fn unauthorized(detail: impl Into<String>) -> Response {
    let mut resp = json_error(StatusCode::UNAUTHORIZED, detail);
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// 429 with `Retry-After` in whole seconds (at least 1).
pub fn too_many_requests(detail: impl Into<String>, retry_after_secs: u64) -> Response {
    let mut resp = json_error(StatusCode::TOO_MANY_REQUESTS, detail);
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs.max(1)),
    );
    resp
}

/// 503 naming the dependency that could not be reached, with `Retry-After: 1`.
pub fn unavailable(detail: impl Into<String>) -> Response {
    let mut resp = json_error(StatusCode::SERVICE_UNAVAILABLE, detail);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The answer to a refused or uncheckable token: [`AuthError`]'s status, body and challenge
/// (the decision itself lives in `common::auth`).
pub fn auth_error(e: &AuthError) -> Response {
    if let AuthError::Unavailable(cause) = e {
        tracing::warn!(error = %cause, "session store unavailable; refusing the request");
    }
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        e.body(),
    )
        .into_response();
    if let Some(challenge) = e.challenge() {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    resp
}

/// The rejection of the [`crate::caller::Caller`] extractor.
#[derive(Debug)]
pub struct AuthRejection(pub AuthError);

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        auth_error(&self.0)
    }
}

/// The caller is authenticated but their role does not include this one: 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} role required", capitalised(self.0))]
pub struct Forbidden(pub Role);

fn capitalised(role: Role) -> &'static str {
    match role {
        Role::User => "User",
        Role::Librarian => "Librarian",
        Role::Admin => "Admin",
    }
}

impl IntoResponse for Forbidden {
    fn into_response(self) -> Response {
        json_error(StatusCode::FORBIDDEN, self.to_string())
    }
}

/// The fallback for unknown paths: 404 `{"detail": "Not Found"}` as FastAPI answers.
pub async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "Not Found")
}

/// 405 in the same shape, for a known path with a wrong method.
pub async fn method_not_allowed() -> Response {
    json_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn token_refusals_carry_the_shared_status_body_and_challenge() {
        let resp = auth_error(&AuthError::Expired);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"detail":"Token has expired"}"#);
        let resp = auth_error(&AuthError::KeysUnavailable);
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(Forbidden(Role::Admin).to_string(), "Admin role required");
    }
}
