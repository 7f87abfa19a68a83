//! [`AppState`]: what the HTTP handlers share.

use std::sync::Arc;

use axum::extract::FromRef;
use circulation::BusHealth;
use common::auth::Authenticator;
use common::kv::Kv;
use service_kit::db::Db;

use crate::clock::SharedClock;
use crate::outbox::Bell;
use crate::rules::Rules;
use crate::store::terms::Vocabulary;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub kv: Kv,
    /// Verifies callers' tokens and sessions (the `Caller` extractor).
    pub auth: Authenticator,
    pub clock: SharedClock,
    pub rules: Rules,
    /// Whether the command consumer is attached (readiness).
    pub bus: BusHealth,
    /// Rung after a change that wrote events (the relay publishes them at once).
    pub bell: Bell,
    /// Search's vocabulary lookups, kept while the terms do not change.
    pub vocabulary: Arc<Vocabulary>,
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}
