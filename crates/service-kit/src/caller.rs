//! [`Caller`]: the verified identity of a request, as handlers receive it.
//!
//! Every service checks the bearer token itself (signature, expiry, issuer, audience, live
//! session) with the same [`Authenticator`], whether or not the gateway already did: a
//! service never trusts the network path a request took (see `docs/architecture.md#trust`).
//! The role comes from the live session, so a role change takes effect on the next request.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use common::auth::{AuthError, Authenticator, Role};

use crate::error::{AuthRejection, Forbidden};

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
    pub email: String,
    pub role: Role,
    /// The session the token belongs to.
    pub session_id: String,
}

impl Caller {
    /// `Ok` when the caller's role includes `role`; otherwise 403.
    pub fn require(&self, role: Role) -> Result<(), Forbidden> {
        if self.role.permits(role) {
            Ok(())
        } else {
            Err(Forbidden(role))
        }
    }

    /// Whether the caller's role includes `role`.
    pub fn is(&self, role: Role) -> bool {
        self.role.permits(role)
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Authenticator: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Authenticator::from_ref(state);
        let authorization = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let (claims, session) = auth
            .authenticate_header(authorization)
            .await
            .map_err(AuthRejection)?;
        Ok(Caller {
            user_id: session.user_id,
            username: session.username,
            email: session.email,
            role: session.role,
            session_id: claims.sid,
        })
    }
}

impl From<AuthRejection> for AuthError {
    fn from(r: AuthRejection) -> Self {
        r.0
    }
}
