//! [`ApiError`]: the one error type of the function, and how each case is answered.
//!
//! The function's answers are `lambda_http` responses, not axum ones (the Lambda build links
//! no web framework for its answers), so they are rendered here — in exactly the shapes the
//! services' `service_kit::error` helpers produce: `{"detail": "..."}`, 422 in FastAPI's
//! shape, token refusals from the shared decision ([`AuthError`]'s status, body and
//! `WWW-Authenticate` challenge), and a dependency that cannot be reached is 503 with
//! `Retry-After: 1`. Causes go to the log, never to the caller: there is no 500 at all.

use api::{ErrorBody, FieldError, ValidationBody};
use common::auth::AuthError;
use http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};

use crate::books::BooksError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The token was refused or could not be checked (401 with a challenge, or 503).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Invalid query parameters (422).
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// A reader asked for another reader's borrowings (403).
    #[error("not allowed to see another reader's borrowings")]
    OthersBorrowings,
    /// book-service could not be read (503), refused the caller (401/403) or answered
    /// something unusable (502).
    #[error(transparent)]
    Books(#[from] BooksError),
}

impl ApiError {
    /// The response for this error.
    pub fn into_response(self) -> Response<Body> {
        match self {
            ApiError::Auth(e) => auth_error(&e),
            ApiError::Invalid(errors) => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &ValidationBody { detail: errors },
            ),
            ApiError::OthersBorrowings => detail(
                StatusCode::FORBIDDEN,
                "Only librarians may see another reader's borrowings",
            ),
            ApiError::Books(e) => books_error(e),
        }
    }
}

/// book-service's failures, as the caller sees them.
fn books_error(e: BooksError) -> Response<Body> {
    match e {
        BooksError::Unavailable(cause) => {
            tracing::warn!(error = %cause, "book-service unavailable");
            unavailable("Book service unavailable")
        }
        // Both checked the same token against the same session store; book-service saying
        // no a moment later means the session ended in between (logout, role change).
        BooksError::Unauthenticated => {
            tracing::warn!("book-service refused a token this function had accepted");
            auth_error(&AuthError::SessionEnded)
        }
        BooksError::Forbidden => ApiError::OthersBorrowings.into_response(),
        BooksError::Unexpected(cause) => {
            tracing::error!(error = %cause, "unusable answer from book-service");
            detail(
                StatusCode::BAD_GATEWAY,
                "Book service gave an unexpected answer",
            )
        }
    }
}

/// A JSON response with `status` and `body`.
pub fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).expect("response bodies serialise");
    let mut resp = Response::new(Body::Text(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `{"detail": detail}` with `status`.
pub fn detail(status: StatusCode, detail: &str) -> Response<Body> {
    json(
        status,
        &ErrorBody {
            detail: detail.to_owned(),
        },
    )
}

/// 503 naming the dependency that could not be reached, with `Retry-After: 1`.
pub fn unavailable(what: &str) -> Response<Body> {
    let mut resp = detail(StatusCode::SERVICE_UNAVAILABLE, what);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The answer to a refused or uncheckable token: the shared decision's status, body and
/// challenge, as `service_kit::error::auth_error` renders them for the services.
pub fn auth_error(e: &AuthError) -> Response<Body> {
    if let AuthError::Unavailable(cause) = e {
        tracing::warn!(error = %cause, "session store unavailable; refusing the request");
    }
    let body = std::str::from_utf8(e.body()).expect("the refusal bodies are UTF-8 JSON");
    let mut resp = Response::new(Body::Text(body.to_owned()));
    *resp.status_mut() = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(challenge) = e.challenge() {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(resp: &Response<Body>) -> &str {
        match resp.body() {
            Body::Text(t) => t,
            other => panic!("expected a text body, got {other:?}"),
        }
    }

    #[test]
    fn refusals_follow_the_shared_decision() {
        let resp = ApiError::Auth(AuthError::Missing).into_response();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(text(&resp), r#"{"detail":"Not authenticated"}"#);
        let resp = ApiError::Auth(AuthError::KeysUnavailable).into_response();
        assert_eq!(resp.status(), 503);
        assert!(resp.headers().get(header::WWW_AUTHENTICATE).is_none());
        let resp = ApiError::Books(BooksError::Unauthenticated).into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
    }

    #[test]
    fn dependency_failures_never_show_their_cause() {
        let resp =
            ApiError::Books(BooksError::Unavailable("connection refused".into())).into_response();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert_eq!(text(&resp), r#"{"detail":"Book service unavailable"}"#);
        let resp = ApiError::Books(BooksError::Unexpected("invalid type: map at 1:1".into()))
            .into_response();
        assert_eq!(resp.status(), 502);
        assert_eq!(
            text(&resp),
            r#"{"detail":"Book service gave an unexpected answer"}"#
        );
        let resp = ApiError::Books(BooksError::Forbidden).into_response();
        assert_eq!(resp.status(), 403);
    }
}
