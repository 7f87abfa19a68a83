//! Every route of the service, each registered with and without its trailing slash.

mod auth;
mod health;
mod jwks;
mod notifications;
mod session;
mod users;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde::de::DeserializeOwned;
use service_kit::error::FieldError;
use service_kit::extract::{parse_form, BodyRejection, Validate};
use service_kit::RouteBoth;

use crate::error::ApiError;
use crate::state::AppState;

/// The service's routes, without the shared layers (see [`crate::startup::router`]).
pub fn routes(state: AppState) -> Router {
    Router::new()
        .route_both("/auth/register", post(auth::register))
        .route_both("/auth/login", post(auth::login))
        .route_both("/auth/token", post(auth::token))
        .route_both("/auth/me", get(auth::me))
        .route_both("/auth/logout", post(auth::logout))
        .route_both("/auth/logout-all", post(auth::logout_all))
        .route_both("/auth/session", post(session::open).delete(session::close))
        .route_both("/users", get(users::list))
        .route_both("/admin/users/{id}/role", put(users::change_role))
        .route_both("/admin/users/{id}/sessions", delete(users::end_sessions))
        .route_both("/notifications", get(notifications::list))
        .route_both("/notifications/stream", get(notifications::stream))
        .route_both("/notifications/{id}/read", post(notifications::mark_read))
        .route_both("/.well-known/jwks.json", get(jwks::jwks))
        .route_both("/readyz", get(health::readyz))
        .with_state(state)
        .merge(ui_assets::axum::router(&UI))
}

/// The web UI's auth area (`web/auth`: log in, register, profile, members), served at
/// `/ui/auth/*` (see `build.rs`).
static UI: ui_assets::Area = ui_assets::area!("auth");

/// Tokens and personal data must not be kept by caches (RFC 6749 §5.1).
fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The `{id}` of a path, answered like FastAPI when it is not an integer.
fn path_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::Invalid(vec![FieldError::path(
            "id",
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        )])
    })
}

/// Parses and checks the query string; errors are located in `query`, not `body`.
fn parse_query<T: DeserializeOwned + Validate>(raw: &str) -> Result<T::Valid, ApiError> {
    let query = parse_form::<T>(raw.as_bytes()).map_err(|rejection| match rejection {
        BodyRejection::Invalid(mut errors) => {
            for e in &mut errors {
                if let Some(first) = e.loc.first_mut() {
                    *first = "query".into();
                }
            }
            ApiError::Invalid(errors)
        }
        BodyRejection::Read(_, detail) => ApiError::Internal(detail),
    })?;
    query.validate().map_err(ApiError::Invalid)
}
