//! The public API's routes; each path is served with and without its trailing slash.

pub mod auth;
pub mod scrape;

use axum::routing::{get, MethodRouter};
use axum::Router;

use crate::AppState;

/// Adds `path` and `path/` with the same handlers.
fn both(router: Router<AppState>, path: &str, handler: MethodRouter<AppState>) -> Router<AppState> {
    router
        .route(path, handler.clone())
        .route(&format!("{path}/"), handler)
}

/// Every public route of app-service, without the shared layers.
pub fn router() -> Router<AppState> {
    use axum::routing::post;
    let mut r = Router::new();
    r = both(r, "/auth/register", post(auth::register));
    r = both(r, "/auth/login", post(auth::login));
    r = both(r, "/auth/token", post(auth::token));
    r = both(r, "/auth/me", get(auth::me));
    r = both(r, "/auth/logout", post(auth::logout));
    r = both(r, "/scrape", post(scrape::scrape));
    r = both(r, "/scrape/jobs/{id}", get(scrape::job));
    r = both(r, "/companies/{idno}", get(scrape::company));
    r = both(r, "/admin/retransform", post(scrape::retransform));
    r.route("/readyz", get(crate::readyz))
}
