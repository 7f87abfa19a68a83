//! `/readyz`: app-service can serve only when both services answer and the session store is
//! reachable. (`/healthz`, "the process is alive", comes with the shared layers.)

use axum::extract::State;
use axum::response::Response;
use service_kit::health::readiness;

use crate::state::AppState;

/// 200 when user-service and scraper-service answer their `/healthz` and the session store
/// answers a ping; otherwise 503 naming what did not.
pub async fn readyz(State(s): State<AppState>) -> Response {
    let (users, scraper, sessions) = tokio::join!(
        s.users.healthy(),
        s.scraper.healthy(),
        s.auth.sessions.ping()
    );
    readiness(&[
        (s.users.name(), users),
        (s.scraper.name(), scraper),
        ("session-store", sessions.map_err(|e| e.to_string())),
    ])
}
