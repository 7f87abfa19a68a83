//! Password login: the throttle, the password check (re-hashing a legacy hash), and a new
//! session with its token.
//!
//! Sessions: a login creates a random session id (128 bits), records the user's id, name,
//! email and role under `session:<sid>` in the key-value store for as long as the token lives,
//! and signs a JWT naming that session. Every request is then checked against the live
//! session (`common::auth`), so deleting it revokes the token everywhere at once while the
//! user's other sessions keep working.

use std::net::IpAddr;
use std::time::Duration;

use common::auth::SessionData;

use crate::error::ApiError;
use crate::password::{StoredPassword, Verdict};
use crate::revocations;
use crate::state::AppState;
use crate::store;
use crate::store::users::User;

/// How often a login replaces its session because the user's role changed meanwhile before
/// it gives up (only a storm of role changes for one user gets there).
const MAX_ROLE_RACES: usize = 3;

/// A session opened by a successful login.
#[derive(Debug)]
pub struct LoggedIn {
    /// The signed access token.
    pub token: String,
    /// How long the token (and its session) lives.
    pub lifetime: Duration,
    /// Whose session it is, with the role it was opened with.
    pub session: SessionData,
}

/// Counts the attempt (refusing it over the limits, before any hashing), checks the password,
/// then opens a session and signs its token. `name` is a username or an email address, in
/// any case.
pub async fn login(
    state: &AppState,
    name: &str,
    password: String,
    ip: Option<IpAddr>,
) -> Result<LoggedIn, ApiError> {
    let throttled = |t: crate::throttle::Throttled| ApiError::LoginThrottled(t.retry_after);
    let address = state
        .login_throttle
        .count_address(ip)
        .await?
        .map_err(throttled)?;
    let user = store::users::find_for_login(&state.db, name).await?;
    // Attempts count against the account's canonical name, however it was typed (username
    // or email, any case); an unknown name is counted as typed, so throttling behaves the
    // same whether or not the account exists.
    let account = user
        .as_ref()
        .map_or_else(|| name.to_lowercase(), |u| u.username.to_lowercase());
    let attempt = state
        .login_throttle
        .count_account(address, &account)
        .await?
        .map_err(throttled)?;
    // Checked against a dummy hash when there is no such user, to take the same time.
    let stored = user.as_ref().map(|u| StoredPassword {
        hash: u.hashed_password.clone(),
        scheme: u.password_scheme.clone(),
    });
    let verdict = state.hasher.verify(password.clone(), stored).await?;
    let user = match user {
        Some(user) if verdict.matched() => user,
        _ => {
            tracing::info!(client = ?ip, "failed login");
            return Err(ApiError::BadCredentials);
        }
    };
    state.login_throttle.succeeded(attempt).await?;
    if verdict == Verdict::LegacyMatch {
        rehash(state, &user, password).await;
    }
    // A role change still waiting to end the user's sessions is carried out now, or it would
    // end the session about to be opened (which already has the new role).
    revocations::settle_user(&state.db, &state.sessions, user.id).await?;
    open_session(state, user).await
}

/// Re-hashes a password that matched under the legacy rules, recording its scheme. A failure
/// (hashing saturated, database away) does not fail the login: the next one tries again.
async fn rehash(state: &AppState, user: &User, password: String) {
    let result = async {
        let new = state.hasher.hash(password).await?;
        let replaced = store::users::replace_password(
            &state.db,
            user.id,
            &user.hashed_password,
            &new.hash,
            new.scheme.as_str(),
        )
        .await?;
        Ok::<_, ApiError>((replaced, new.scheme))
    }
    .await;
    match result {
        Ok((true, scheme)) => {
            tracing::info!(
                user_id = user.id,
                scheme = scheme.as_str(),
                "legacy password hash replaced"
            )
        }
        Ok((false, _)) => {
            tracing::info!(
                user_id = user.id,
                "password changed meanwhile; legacy hash left to it"
            )
        }
        Err(e) => {
            tracing::warn!(user_id = user.id, error = %e, "cannot re-hash a legacy password now; the next login tries again")
        }
    }
}

/// Opens a session with the user's role and signs its token.
///
/// A role change that commits while this login runs ends the sessions that exist at that
/// moment; one created just after would keep the old role. So the role is read again once
/// the session exists, and a session whose role went stale is replaced.
async fn open_session(state: &AppState, user: User) -> Result<LoggedIn, ApiError> {
    let lifetime = state.tokens.lifetime();
    let mut role = user.role;
    for _ in 0..MAX_ROLE_RACES {
        let session = SessionData {
            user_id: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            role,
        };
        let sid = uuid::Uuid::new_v4().simple().to_string();
        state.sessions.create(&sid, &session, lifetime).await?;
        match store::users::role_of(&state.db, user.id).await? {
            Some(current) if current == role => {
                let token = state
                    .tokens
                    .issue(&session, &sid)
                    .map_err(|e| ApiError::Internal(format!("signing a token: {e}")))?;
                tracing::info!(user_id = user.id, "logged in");
                return Ok(LoggedIn {
                    token,
                    lifetime,
                    session,
                });
            }
            Some(current) => {
                state.sessions.revoke(&sid).await?;
                role = current;
            }
            None => {
                // The account was deleted meanwhile.
                state.sessions.revoke(&sid).await?;
                return Err(ApiError::BadCredentials);
            }
        }
    }
    Err(ApiError::Internal(
        "the user's role kept changing during login".into(),
    ))
}
