//! [`AppState`]: what every handler shares.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use common::auth::{Authenticator, Sessions};
use service_kit::db::Db;

use crate::hasher::PasswordHasher;
use crate::live::LiveHub;
use crate::throttle::login::LoginThrottle;
use crate::throttle::registration::RegistrationThrottle;
use crate::tokens::TokenIssuer;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// The bcrypt pool (off the async runtime).
    pub hasher: PasswordHasher,
    /// Signs access tokens; holds the matching verifier and JWKS.
    pub tokens: Arc<TokenIssuer>,
    /// Sessions in the key-value store (the same store as `auth`'s).
    pub sessions: Sessions,
    /// Verifies bearer tokens and their live session, for the `Caller` extractor.
    pub auth: Authenticator,
    pub login_throttle: LoginThrottle,
    pub registration_throttle: RegistrationThrottle,
    /// Wakes this instance's notification streams.
    pub live: LiveHub,
    /// `SSE_KEEP_ALIVE_MS` and `SSE_SESSION_CHECK_MS`.
    pub keep_alive: Duration,
    pub session_check: Duration,
    /// `SESSION_COOKIE_SECURE`: the web UI's session cookies are `Secure`.
    pub secure_cookies: bool,
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}
