//! `GET /.well-known/jwks.json`: the public keys that verify our tokens.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::state::AppState;

/// The public keys verifying our tokens (none with HMAC); cacheable for five minutes, the
/// verifiers' refresh interval.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = Json(state.tokens.jwks().clone()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}
