//! `/readyz`: ready when the database, the session store and the command queue answer.
//! (`/healthz` comes with the shared layers.)

use axum::extract::State;
use axum::response::Response;
use service_kit::health::readiness;

use crate::state::AppState;

/// `GET /readyz`: 200 when every dependency answered, else 503 naming those that did not.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (db, kv, bus) = tokio::join!(state.db.ping(), state.kv.ping(), state.bus.check());
    readiness(&[
        ("database", db.map_err(|e| e.to_string())),
        ("kv", kv.map_err(|e| e.to_string())),
        ("bus", bus),
    ])
}
