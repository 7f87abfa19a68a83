//! `GET /readyz`: whether the service can do its work (`/healthz` comes with the shared
//! layers).

use axum::extract::State;
use axum::response::Response;

use crate::state::AppState;

/// `GET /readyz`: the database and the key-value store both answer.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (db, kv) = tokio::join!(state.db.ping(), state.sessions.ping());
    service_kit::health::readiness(&[
        ("database", db.map_err(|e| e.to_string())),
        ("kv", kv.map_err(|e| e.to_string())),
    ])
}
