//! Every route of the service, each registered with and without its trailing slash.

mod auth;
mod health;
mod jwks;
mod users;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::routing::{delete, get, post, put};
use axum::Router;
use service_kit::RouteBoth;

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
        .route_both("/users", get(users::list))
        .route_both("/admin/users/{id}/role", put(users::change_role))
        .route_both("/admin/users/{id}/sessions", delete(users::end_sessions))
        .route_both("/.well-known/jwks.json", get(jwks::jwks))
        .route_both("/readyz", get(health::readyz))
        .with_state(state)
}

/// Tokens and personal data must not be kept by caches (RFC 6749 §5.1).
fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
