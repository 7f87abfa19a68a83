//! [`AppState`]: what the handlers share.

use axum::extract::FromRef;
use common::auth::Authenticator;

use crate::upstream::Upstream;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// user-service: `/auth/*`.
    pub users: Upstream,
    /// scraper-service: `/scrape/*`, `/companies/*`, `/admin/*`.
    pub scraper: Upstream,
    /// Verifies bearer tokens against the live sessions. The relays do not use it (the
    /// services check their callers); it lets a handler that acts on the identity itself take
    /// a `service_kit::Caller`, and `/readyz` checks the session store through it.
    pub auth: Authenticator,
}

/// What the `service_kit::Caller` extractor verifies tokens with.
impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}
