//! `/auth/*`: registration, login (JSON and the OAuth2 form), the caller's account, logout
//! (of one session or of all).

use api::auth::{
    LoginRequest, MessageResponse, RegisterRequest, TokenForm, TokenResponse, UserResponse,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use service_kit::extract::{ValidForm, ValidJson};
use service_kit::{Caller, ClientIp};

use super::no_store;
use crate::error::ApiError;
use crate::login::{self, LoggedIn};
use crate::state::AppState;
use crate::store;

/// `POST /auth/register`: 201 with the new account (always role `user`: a `role` sent along
/// is ignored); 409 when the name or email is taken; 429 over the registration limits.
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidJson(body): ValidJson<RegisterRequest>,
) -> Result<(StatusCode, Json<UserResponse>), ApiError> {
    // Counted before the taken-check, so probing for existing names is throttled too.
    if let Err(t) = state.registration_throttle.admit(ip).await? {
        return Err(ApiError::RegistrationThrottled(t.retry_after));
    }
    // Checked before hashing so a taken name costs no bcrypt; the unique indexes still
    // decide races.
    if let Some(taken) = store::users::taken(&state.db, &body.username, &body.email).await? {
        return Err(ApiError::Conflict(taken));
    }
    let new = state.hasher.hash(body.password).await?;
    let user = store::users::insert_user(
        &state.db,
        &body.username,
        &body.email,
        &new.hash,
        new.scheme.as_str(),
    )
    .await?;
    tracing::info!(user_id = user.id, "user registered");
    Ok((
        StatusCode::CREATED,
        Json(UserResponse {
            id: user.id,
            username: user.username,
            email: user.email,
            role: user.role.as_str().to_owned(),
        }),
    ))
}

/// `POST /auth/login`: JSON credentials.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidJson(body): ValidJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let session = login::login(&state, &body.username, body.password, ip).await?;
    Ok(token_response(session))
}

/// `POST /auth/token`: the OAuth2 password grant, form-encoded.
pub async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidForm(form): ValidForm<TokenForm>,
) -> Result<Response, ApiError> {
    let session = login::login(&state, &form.username, form.password, ip).await?;
    Ok(token_response(session))
}

/// `GET /auth/me`: the account of the session (with its role), from the key-value store only.
pub async fn me(caller: Caller) -> Response {
    let mut resp = Json(UserResponse {
        id: caller.user_id,
        username: caller.username,
        email: caller.email,
        role: caller.role.as_str().to_owned(),
    })
    .into_response();
    no_store(resp.headers_mut());
    resp
}

/// `POST /auth/logout`: ends this token's session (only this one).
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<MessageResponse>, ApiError> {
    state.sessions.revoke(&caller.session_id).await?;
    state.live.sessions_changed(caller.user_id);
    tracing::info!(user_id = caller.user_id, "logged out");
    Ok(Json(MessageResponse::new("Logged out")))
}

/// `POST /auth/logout-all`: ends every session of the caller, this one included (a password
/// shared by mistake, a lost device).
pub async fn logout_all(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<MessageResponse>, ApiError> {
    let ended = state.sessions.end_all_for_user(caller.user_id).await?;
    state.live.sessions_changed(caller.user_id);
    tracing::info!(user_id = caller.user_id, ended, "logged out everywhere");
    Ok(Json(MessageResponse::new(format!(
        "Logged out of {ended} session{}",
        if ended == 1 { "" } else { "s" }
    ))))
}

fn token_response(session: LoggedIn) -> Response {
    let body = TokenResponse::bearer(session.token, session.lifetime.as_secs());
    let mut resp = Json(body).into_response();
    no_store(resp.headers_mut());
    resp
}
