//! `/readyz`: app-service can serve only when the services it relays to answer, commands can
//! be sent on the circulation bus and the session store is reachable. (`/healthz`, "the
//! process is alive", comes with the shared layers.)

use axum::extract::State;
use axum::response::Response;
use service_kit::health::readiness;

use crate::state::AppState;

/// 200 when user-service, scraper-service and book-service answer their `/healthz`, the
/// circulation client is connected (always, in process) and the session store answers a
/// ping; otherwise 503 naming what did not.
pub async fn readyz(State(s): State<AppState>) -> Response {
    let (users, scraper, books, sessions) = tokio::join!(
        s.users.healthy(),
        s.scraper.healthy(),
        s.books.healthy(),
        s.auth.sessions.ping()
    );
    let bus = if s.circulation.is_connected() {
        Ok(())
    } else {
        Err("not connected to the broker".to_owned())
    };
    readiness(&[
        (s.users.name(), users),
        (s.scraper.name(), scraper),
        (s.books.name(), books),
        ("circulation-bus", bus),
        ("session-store", sessions.map_err(|e| e.to_string())),
    ])
}
