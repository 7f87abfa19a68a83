//! The JSON error body every service answers with, in FastAPI's shape.
//!
//! Policy: a client mistake is a 4xx whose `detail` says what was wrong; a server-side failure
//! is a 5xx whose `detail` is a fixed phrase, while the cause goes to the log, never to the
//! client. Each service keeps its own error enum and turns it into a response with these
//! helpers, so the body is the same everywhere.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// `{"detail": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    pub detail: String,
}

/// One invalid field of a 422 answer: `{"loc": ["body", "email"], "msg": "...", "type": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    #[schema(value_type = Vec<Object>)]
    pub loc: Vec<serde_json::Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    /// An error about a field of the request body.
    pub fn body(field: &str, kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["body".into(), field.into()],
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }

    /// An error about a path parameter.
    pub fn path(field: &str, kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["path".into(), field.into()],
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }
}

/// `{"detail": [FieldError, ...]}` — the 422 body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ValidationBody {
    pub detail: Vec<FieldError>,
}

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

/// 401 with `WWW-Authenticate: Bearer` (and `error="invalid_token"` when a token was sent).
pub fn unauthorized(detail: impl Into<String>, token_was_sent: bool) -> Response {
    let mut resp = json_error(StatusCode::UNAUTHORIZED, detail);
    let challenge = if token_was_sent {
        HeaderValue::from_static("Bearer error=\"invalid_token\"")
    } else {
        HeaderValue::from_static("Bearer")
    };
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
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

/// The fallback for unknown paths: 404 `{"detail": "Not Found"}` as FastAPI answers.
pub async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "Not Found")
}

/// 405 in the same shape, for a known path with a wrong method.
pub async fn method_not_allowed() -> Response {
    json_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}
