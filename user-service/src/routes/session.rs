//! `/auth/session`: the web UI's login and logout. The same login as `POST /auth/login`
//! (throttle, password check, a revocable session), but the token is set in the `HttpOnly`
//! cookie `platform_session` — out of reach of any script — beside the script-readable CSRF
//! cookie `platform_csrf` (see `ui_assets::session`); the gateway turns the cookie back into
//! the bearer check. The body answers who signed in.

use api::auth::{LoginRequest, MessageResponse, SessionResponse, UserResponse};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use service_kit::extract::ValidJson;
use service_kit::{Caller, ClientIp};

use super::no_store;
use crate::error::ApiError;
use crate::login;
use crate::state::AppState;

/// `POST /auth/session`: 200 `{user, expires_in}` with both cookies set; the errors of
/// `POST /auth/login` (401, 422, 429 with `Retry-After`, 503) otherwise, with no cookie.
pub async fn open(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidJson(body): ValidJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let session = login::login(&state, &body.username, body.password, ip).await?;
    let lifetime = session.lifetime.as_secs();
    let csrf = csrf_token();
    let data = session.session;
    let mut resp = Json(SessionResponse {
        user: UserResponse {
            id: data.user_id,
            username: data.username,
            email: data.email,
            role: data.role.as_str().to_owned(),
        },
        expires_in: lifetime,
    })
    .into_response();
    let cookies = ui_assets::session::open(&session.token, &csrf, lifetime, state.secure_cookies);
    set_cookies(resp.headers_mut(), &cookies)?;
    no_store(resp.headers_mut());
    Ok(resp)
}

/// `DELETE /auth/session`: ends the caller's session on the server (like `POST
/// /auth/logout`: its token is refused everywhere from now on) and clears both cookies.
pub async fn close(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    state.sessions.revoke(&caller.session_id).await?;
    state.live.sessions_changed(caller.user_id);
    tracing::info!(user_id = caller.user_id, "logged out (web session)");
    let mut resp = Json(MessageResponse::new("Logged out")).into_response();
    set_cookies(
        resp.headers_mut(),
        &ui_assets::session::clear(state.secure_cookies),
    )?;
    no_store(resp.headers_mut());
    Ok(resp)
}

/// Two v4 UUIDs (244 random bits from the operating system's generator), as 64 hex digits.
fn csrf_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn set_cookies(headers: &mut HeaderMap, cookies: &[String]) -> Result<(), ApiError> {
    for cookie in cookies {
        let value = HeaderValue::from_str(cookie)
            .map_err(|e| ApiError::Internal(format!("a Set-Cookie value: {e}")))?;
        headers.append(header::SET_COOKIE, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn csrf_tokens_are_long_and_never_repeat() {
        let a = super::csrf_token();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, super::csrf_token());
    }
}
