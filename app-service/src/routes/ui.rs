//! `/ui/*` on app-service: the web UI's account area (`web/account`: loans, holds,
//! notifications, the librarian's desk), served from this binary; and the files of the areas
//! whose services the gateway does not reach directly — `/ui/auth/*` from user-service,
//! `/ui/companies/*` from scraper-service — relayed with their caching headers (`ETag` and
//! `If-None-Match` both ways, so a revalidated manifest is a bodiless 304) and the security
//! headers the owning service answers them with. The files are public: no caller check.

use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::{Extra, Incoming};

/// The embedded account area (see `build.rs`).
static ACCOUNT: ui_assets::Area = ui_assets::area!("account");

/// What crosses besides the usual headers when an area's files are relayed.
const FILES: Extra = Extra {
    request: &[header::IF_NONE_MATCH],
    response: &[
        header::ETAG,
        header::CONTENT_SECURITY_POLICY,
        header::X_CONTENT_TYPE_OPTIONS,
        header::REFERRER_POLICY,
    ],
};

/// The areas' routes (GET and HEAD only; any other method is a JSON 405).
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(ui_assets::axum::router(&ACCOUNT))
        .route("/ui/auth/{*rest}", get(auth_files))
        .route("/ui/companies/{*rest}", get(companies_files))
}

async fn auth_files(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.users.relay_with(request, FILES).await
}

async fn companies_files(
    State(s): State<AppState>,
    request: Incoming,
) -> Result<Response, ApiError> {
    s.scraper.relay_with(request, FILES).await
}
