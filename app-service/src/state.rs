//! [`AppState`]: what the handlers share.

use axum::extract::FromRef;
use common::auth::Authenticator;

use crate::circulation::Circulation;
use crate::upstream::Upstream;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// user-service: `/auth/*`, `/users/`, `/admin/users/*`, `/notifications/*`.
    pub users: Upstream,
    /// user-service again, through the client without a whole-call timeout:
    /// `/notifications/stream` only.
    pub user_events: Upstream,
    /// scraper-service: `/scrape/*`, `/companies/*`, `/admin/retransform`.
    pub scraper: Upstream,
    /// book-service: the reads `GET /loans/` and `GET /holds/`.
    pub books: Upstream,
    /// The circulation bus: borrowing, returning, renewing, holds.
    pub circulation: Circulation,
    /// Verifies bearer tokens against the live sessions: the `service_kit::Caller` of the
    /// circulation handlers, which act on the identity themselves, and `/readyz`'s check of
    /// the session store. The relays do not use it (the services check their callers).
    pub auth: Authenticator,
}

/// What the `service_kit::Caller` extractor verifies tokens with.
impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}
