//! `/auth/*`: relayed to user-service, which owns users, passwords, tokens and sessions and
//! checks the token of `/auth/me` and `/auth/logout` itself.

use api::auth::{
    LoginRequest, MessageResponse, RegisterRequest, TokenForm, TokenResponse, UserResponse,
};
use api::{ErrorBody, ValidationBody};
use axum::extract::State;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::Incoming;

/// Create an account.
#[utoipa::path(post, path = "/auth/register/", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new user", body = UserResponse),
        (status = 409, description = "Username or email already registered", body = ErrorBody),
        (status = 422, description = "Invalid fields, each named", body = ValidationBody),
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
