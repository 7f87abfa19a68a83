//! Every route of app-service, each served with and without its trailing slash.
//!
//! One file per resource: [`auth`] (relayed to user-service), [`scrape`], [`companies`] and
//! [`admin`] (relayed to scraper-service) and [`health`] (`/readyz`).
//!
//! # Who checks the caller
//!
//! Every service verifies the bearer token itself (signature, expiry, issuer, audience, live
//! session; the role from the session). app-service checks the caller only where it acts on
//! the identity itself. A route that only relays to the service owning the resource does not
//! check it again: that service does (user-service for `/auth/me` and `/auth/logout`,
//! scraper-service for every endpoint, `/admin/retransform` with the admin role), and a second
//! check here would cost one more session-store round trip per request and decide nothing.
//! So every route below is a plain relay: the `Authorization` header goes through untouched
//! and the service's 401/403 comes back unchanged. A future handler that acts on the identity
//! takes a `service_kit::Caller` (`AppState` provides the `Authenticator` it needs).

pub mod admin;
pub mod auth;
pub mod companies;
pub mod health;
pub mod scrape;

use axum::routing::{get, post};
use axum::Router;
use service_kit::RouteBoth;

use crate::state::AppState;

/// Every route of app-service, without the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route_both("/auth/register", post(auth::register))
        .route_both("/auth/login", post(auth::login))
        .route_both("/auth/token", post(auth::token))
        .route_both("/auth/me", get(auth::me))
        .route_both("/auth/logout", post(auth::logout))
        .route_both("/scrape", post(scrape::scrape))
        .route_both("/scrape/jobs/{id}", get(scrape::job))
        .route_both("/companies/{idno}", get(companies::company))
        .route_both("/admin/retransform", post(admin::retransform))
        .route_both("/readyz", get(health::readyz))
}
