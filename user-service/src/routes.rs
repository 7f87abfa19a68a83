//! The HTTP endpoints: `/auth/*`, `/.well-known/jwks.json` and `/readyz`.
//!
//! Sessions: a login creates a random session id (128 bits), records the user's id, name,
//! email and role under `session:<sid>` in the key-value store for as long as the token lives,
//! and signs a JWT naming that session. `GET /auth/me` answers from the session alone (no
//! database query); `POST /auth/logout` deletes that one session, which revokes its token
//! everywhere at once while the user's other sessions keep working.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::api::auth::{
    LoginRequest, MessageResponse, RegisterRequest, TokenForm, TokenResponse, UserResponse,
};
use common::auth::{bearer_token, AuthError, Authenticator, Claims, SessionData, Sessions};
use common::db::Db;
use common::extract::{ValidForm, ValidJson};
use common::kv::Kv;

use crate::error::ApiError;
use crate::password::PasswordHasher;
use crate::store;
use crate::throttle::Throttle;
use crate::tokens::TokenIssuer;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub kv: Kv,
    pub hasher: PasswordHasher,
    pub tokens: Arc<TokenIssuer>,
    pub sessions: Sessions,
    pub auth: Authenticator,
    pub throttle: Throttle,
}

/// The service's routes (without the shared layers; see [`crate::router`]). Every path is
/// also served with a trailing slash, as the original app's clients use both.
pub fn routes(state: AppState) -> Router {
    let mut router = Router::new();
    for (path, method) in [
        ("/auth/register", post(register)),
        ("/auth/login", post(login)),
        ("/auth/token", post(token)),
        ("/auth/me", get(me)),
        ("/auth/logout", post(logout)),
    ] {
        router = router
            .route(path, method.clone())
            .route(&format!("{path}/"), method);
    }
    router
        .route("/.well-known/jwks.json", get(jwks))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// `POST /auth/register`: 201 with the new account; 409 when the name or email is taken.
async fn register(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<RegisterRequest>,
) -> Result<(StatusCode, Json<UserResponse>), ApiError> {
    // Checked first so a taken name costs no bcrypt; the unique indexes still decide races.
    if let Some(taken) = store::taken(&state.db, &body.username, &body.email).await? {
        return Err(ApiError::Conflict(taken));
    }
    let hash = state.hasher.hash(body.password).await?;
    let user = store::insert_user(&state.db, &body.username, &body.email, &hash).await?;
    tracing::info!(user_id = user.id, "user registered");
    Ok((
        StatusCode::CREATED,
        Json(UserResponse {
            id: user.id,
            username: user.username,
            email: user.email,
        }),
    ))
}

/// `POST /auth/login`: JSON credentials.
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidJson(body): ValidJson<LoginRequest>,
) -> Result<Response, ApiError> {
    authenticate_password(&state, body.username, body.password, ip).await
}

/// `POST /auth/token`: the OAuth2 password grant, form-encoded.
async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidForm(form): ValidForm<TokenForm>,
) -> Result<Response, ApiError> {
    authenticate_password(&state, form.username, form.password, ip).await
}

/// Checks the throttle, then the password, then opens a session and signs its token.
async fn authenticate_password(
    state: &AppState,
    name: String,
    password: String,
    ip: Option<IpAddr>,
) -> Result<Response, ApiError> {
    if let Err(t) = state.throttle.check_ip(ip).await? {
        return Err(ApiError::Throttled(t.retry_after));
    }
    let user = store::find_for_login(&state.db, &name).await?;
    // Failures count against the account's canonical name, however it was typed (username
    // or email, any case); an unknown name is counted as typed, so throttling behaves the
    // same whether or not the account exists.
    let account = user
        .as_ref()
        .map_or_else(|| name.to_lowercase(), |u| u.username.to_lowercase());
    if let Err(t) = state.throttle.check_account(&account).await? {
        return Err(ApiError::Throttled(t.retry_after));
    }
    // Verified against a dummy hash when there is no such user, to take the same time.
    let matched = state
        .hasher
        .verify(password, user.as_ref().map(|u| u.hashed_password.clone()))
        .await?;
    let user = match user {
        Some(user) if matched => user,
        _ => {
            state.throttle.record_failure(&account, ip).await?;
            tracing::info!(client = ?ip, "failed login");
            return Err(ApiError::BadCredentials);
        }
    };
    state.throttle.clear_account(&account).await?;

    let session = SessionData {
        user_id: user.id,
        username: user.username,
        email: user.email,
        role: user.role,
    };
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let issued = state
        .tokens
        .issue(&session, &sid)
        .map_err(|e| ApiError::Internal(format!("signing a token: {e}")))?;
    let lifetime = state.tokens.lifetime();
    state.sessions.create(&sid, &session, lifetime).await?;
    tracing::info!(user_id = session.user_id, "logged in");

    let body = TokenResponse::bearer(issued.token, lifetime.as_secs());
    let mut resp = Json(body).into_response();
    no_store(resp.headers_mut());
    Ok(resp)
}

/// `GET /auth/me`: the account of the session, from the key-value store only.
async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (_, session) = authenticated(&state.auth, &headers).await?;
    let mut resp = Json(UserResponse {
        id: session.user_id,
        username: session.username,
        email: session.email,
    })
    .into_response();
    no_store(resp.headers_mut());
    Ok(resp)
}

/// `POST /auth/logout`: ends this token's session (only this one).
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<MessageResponse>, ApiError> {
    let (claims, _) = authenticated(&state.auth, &headers).await?;
    state.sessions.revoke(&claims.sid).await?;
    tracing::info!(user_id = %claims.sub, "logged out");
    Ok(Json(MessageResponse::new("Logged out")))
}

/// `GET /.well-known/jwks.json`: the public keys verifying our tokens (none with HMAC).
async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = Json(state.tokens.jwks().clone()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// `GET /readyz`: the database and the key-value store both answer.
async fn readyz(State(state): State<AppState>) -> Response {
    let (db, kv) = tokio::join!(state.db.ping(), state.kv.ping());
    common::server::readiness(&[
        ("database", db.map_err(|e| e.to_string())),
        ("kv", kv.map_err(|e| e.to_string())),
    ])
}

async fn authenticated(
    auth: &Authenticator,
    headers: &HeaderMap,
) -> Result<(Claims, SessionData), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .ok_or(AuthError::Missing)?;
    Ok(auth.authenticate(token).await?)
}

/// Tokens and personal data must not be kept by caches (RFC 6749 §5.1).
fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The client's address: the first `X-Forwarded-For` entry (the gateway overwrites that
/// header with the peer it saw), else the TCP peer. `None` only when neither is known.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let forwarded = parts
            .headers
            .get(common::auth::headers::CLIENT_IP)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(parse_addr);
        let peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip())
        };
        Ok(ClientIp(forwarded.or_else(peer)))
    }
}

/// An address as proxies write it: `203.0.113.7`, `2001:db8::1`, or either with a port.
fn parse_addr(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| match ip {
            // One client, one key, whichever way its IPv4 address is written.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forwarded_addresses() {
        assert_eq!(
            parse_addr(" 203.0.113.7 "),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            parse_addr("203.0.113.7:4711"),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            parse_addr("[2001:db8::1]:443"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            parse_addr("::ffff:192.0.2.1"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(parse_addr("unknown"), None);
    }
}
