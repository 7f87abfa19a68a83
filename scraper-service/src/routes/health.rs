//! `/readyz`: the database and the key-value store answer.

use axum::extract::State;
use axum::response::Response;

use crate::state::AppState;

/// `GET /readyz`: 200 when the database and the key-value store answer, else 503.
pub async fn readyz(State(s): State<AppState>) -> Response {
    let db = s.db.ping().await.map_err(|e| e.to_string());
    let kv = s.kv.ping().await.map_err(|e| e.to_string());
    service_kit::health::readiness(&[("database", db), ("cache", kv)])
}
