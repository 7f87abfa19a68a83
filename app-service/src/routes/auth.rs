//! `/auth/*`: relayed to user-service, which owns users, passwords, tokens and sessions and
//! checks the token of `/auth/me`, `/auth/logout`, `/auth/logout-all` and `DELETE
//! /auth/session` itself. `/auth/session` (the web UI's login and logout) passes the
//! service's `Set-Cookie` back: the session lives in cookies there, not in the body.

use api::auth::{
    LoginRequest, MessageResponse, RegisterRequest, SessionResponse, TokenForm, TokenResponse,
    UserResponse,
};
use api::{ErrorBody, ValidationBody};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::{Extra, Incoming};

/// The web session's relays pass its cookies back.
const SESSION_COOKIES: Extra = Extra {
    request: &[],
    response: &[header::SET_COOKIE],
};

/// Create an account.
#[utoipa::path(post, path = "/auth/register/", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new user", body = UserResponse),
        (status = 409, description = "Username or email already registered", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ValidationBody),
        (status = 429, description = "Too many registrations from this address, or from everyone; see Retry-After", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    ))]
pub async fn register(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.users.relay(request).await
}

/// Log in with a JSON body; returns a bearer token.
#[utoipa::path(post, path = "/auth/login/", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A bearer token (sent with Cache-Control: no-store)", body = TokenResponse),
        (status = 401, description = "Incorrect username or password", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ValidationBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    ))]
pub async fn login(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.users.relay(request).await
}

/// OAuth2 password grant (form-encoded), as Swagger UI's Authorize button sends it.
#[utoipa::path(post, path = "/auth/token", tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A bearer token (sent with Cache-Control: no-store)", body = TokenResponse),
        (status = 401, description = "Incorrect username or password", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ValidationBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody),
    ))]
pub async fn token(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.users.relay(request).await
}

/// The caller's account.
#[utoipa::path(get, path = "/auth/me/", tag = "auth",
    security(("oauth2" = [])),
    responses(
        (status = 200, description = "The authenticated user", body = UserResponse),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 503, description = "Session store unavailable", body = ErrorBody),
    ))]
pub async fn me(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.users.relay(request).await
}

/// End the session of this token; other sessions of the user stay.
#[utoipa::path(post, path = "/auth/logout/", tag = "auth",
    security(("oauth2" = [])),
    responses(
        (status = 200, description = "The session has ended; the token is refused from now on", body = MessageResponse),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 503, description = "Session store unavailable", body = ErrorBody),
    ))]
pub async fn logout(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.users.relay(request).await
}

/// End every session of the caller, this one included (a lost device, a password shared by
/// mistake).
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth",
    security(("oauth2" = [])),
    responses(
        (status = 200, description = "Every session has ended; all the caller's tokens are refused from now on", body = MessageResponse),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 503, description = "Session store unavailable", body = ErrorBody),
    ))]
pub async fn logout_all(
    State(s): State<AppState>,
    request: Incoming,
) -> Result<Response, ApiError> {
    s.users.relay(request).await
}

/// Log in from the web UI: the token is set in the `HttpOnly; SameSite=Strict` cookie
/// `platform_session`, with the script-readable CSRF cookie `platform_csrf` (echo it in
/// `X-CSRF-Token` on every unsafe request the cookie authenticates). Same checks and limits as
/// `/auth/login/`.
#[utoipa::path(post, path = "/auth/session", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in: both cookies set (`Set-Cookie`), the account answered (with Cache-Control: no-store)", body = SessionResponse),
        (status = 401, description = "Incorrect username or password", body = ErrorBody),
        (status = 422, description = "Invalid fields", body = ValidationBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    ))]
pub async fn open_session(
    State(s): State<AppState>,
    request: Incoming,
) -> Result<Response, ApiError> {
    s.users.relay_with(request, SESSION_COOKIES).await
}

/// Log out of the web UI: the session ends on the server (its token is refused from now on)
/// and both cookies are cleared. Through the gateway the session cookie authenticates it,
/// with the CSRF header.
#[utoipa::path(delete, path = "/auth/session", tag = "auth",
    security(("oauth2" = [])),
    responses(
        (status = 200, description = "The session has ended; both cookies are cleared", body = MessageResponse),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 403, description = "Authenticated by the cookie without the matching X-CSRF-Token (answered by the gateway)", body = ErrorBody),
        (status = 503, description = "Session store unavailable", body = ErrorBody),
    ))]
pub async fn close_session(
    State(s): State<AppState>,
    request: Incoming,
) -> Result<Response, ApiError> {
    s.users.relay_with(request, SESSION_COOKIES).await
}
