//! The one auth decision: why a request is refused, and how that refusal is answered.

use crate::kv::KvError;

/// Why a request is not authenticated: the one auth decision of the platform.
///
/// The gateway, every service's extractor and the serverless function all turn a refusal into
/// an answer through the methods below, so the status, the JSON `detail` and the
/// `WWW-Authenticate` challenge are the same wherever a token is refused:
///
/// | refusal | status | challenge |
/// |---|---|---|
/// | no bearer token | 401 | `Bearer` |
/// | expired, invalid, session ended | 401 | `Bearer error="invalid_token"` |
/// | session store or token keys unavailable | 503 | none (the platform fails closed) |
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Not authenticated")]
    Missing,
    #[error("Token has expired")]
    Expired,
    #[error("Invalid token")]
    Invalid,
    #[error("Session has ended")]
    SessionEnded,
    #[error("Session store unavailable")]
    Unavailable(#[from] KvError),
    /// The verification keys are not loaded yet (EdDSA before the issuer's JWKS answered).
    #[error("Authentication unavailable")]
    KeysUnavailable,
}

/// `(detail, JSON body)` pairs built at compile time, so a refusal costs no allocation.
macro_rules! detail {
    ($text:literal) => {
        ($text, concat!("{\"detail\":\"", $text, "\"}").as_bytes())
    };
}

impl AuthError {
    /// 401, or 503 when the check itself could not be made.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Unavailable(_) | AuthError::KeysUnavailable => 503,
            _ => 401,
        }
    }

    fn texts(&self) -> (&'static str, &'static [u8]) {
        match self {
            AuthError::Missing => detail!("Not authenticated"),
            AuthError::Expired => detail!("Token has expired"),
            AuthError::Invalid => detail!("Invalid token"),
            AuthError::SessionEnded => detail!("Session has ended"),
            AuthError::Unavailable(_) => detail!("Session store unavailable"),
            AuthError::KeysUnavailable => detail!("Authentication unavailable"),
        }
    }

    /// The `detail` of the JSON body.
    pub fn detail(&self) -> &'static str {
        self.texts().0
    }

    /// The whole JSON body, `{"detail":"..."}`.
    pub fn body(&self) -> &'static [u8] {
        self.texts().1
    }

    /// The `WWW-Authenticate` challenge of a 401 (RFC 6750 §3): `invalid_token` once a token
    /// was sent.
    pub fn challenge(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => Some("Bearer"),
            AuthError::Unavailable(_) | AuthError::KeysUnavailable => None,
            _ => Some("Bearer error=\"invalid_token\""),
        }
    }
}
