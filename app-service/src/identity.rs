//! Who is calling: the `Identity` extractor for the routes app-service guards itself.
//!
//! The gateway has already checked the token, but app-service does not trust that blindly:
//! it verifies the token and the live session again (one key-value read), so a request that
//! reaches it by another path is held to the same rule.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use common::auth::{bearer_token, AuthError};

use crate::error::AppError;
use crate::AppState;

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Identity {
    pub user_id: i64,
    pub username: String,
    pub role: String,
}

impl Identity {
    pub fn require_admin(&self) -> Result<(), AppError> {
        if self.role == "admin" {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

impl FromRequestParts<AppState> for Identity {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or(AuthError::Missing)?;
        let (_, session) = state.auth.authenticate(token).await?;
        Ok(Identity {
            user_id: session.user_id,
            username: session.username,
            role: session.role,
        })
    }
}
