//! Every route of the service, each registered with and without its trailing slash. Every
//! API route takes the verified `Caller`; `/readyz` (like `/healthz` and `/metrics` from the
//! common layers) is for probes and carries no data of anyone's.

mod admin;
mod companies;
mod health;
mod jobs;
mod scrape;

use axum::routing::{get, post};
use axum::Router;
use service_kit::RouteBoth;

use crate::state::AppState;

/// The service's routes (without the common layers).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route_both("/scrape", post(scrape::scrape))
        .route_both("/scrape/jobs/{id}", get(jobs::job))
        .route_both("/companies/{idno}", get(companies::company))
        .route_both("/admin/retransform", post(admin::retransform))
        .route_both("/admin/retransform/{id}", get(admin::retransform_run))
        .route_both("/readyz", get(health::readyz))
        .merge(ui_assets::axum::router(&UI))
}

/// The web UI's companies area (`web/companies`: look up an IDNO, follow the job, the
/// record), served at `/ui/companies/*` (see `build.rs`).
static UI: ui_assets::Area = ui_assets::area!("companies");
