//! Bearer tokens and sessions, verified the same way by the gateway and the services.
//!
//! A token is a JWT whose `sid` claim names a session kept in the key-value store under
//! `session:<sid>` for as long as the token lives. A token is accepted only when its signature
//! verifies with an allowed algorithm, it has not expired, its issuer and audience match, and
//! its session still exists — so deleting the session (logout) revokes the token everywhere
//! at once. When the store cannot be reached the answer is "unavailable", never "accepted".

mod error;
mod role;
mod sessions;
mod tokens;

use std::sync::Arc;

pub use error::AuthError;
pub use role::Role;
pub use sessions::{SessionData, Sessions, SESSIONS_ENDED_CHANNEL};
pub use tokens::{
    hmac_algorithm, Claims, TokenSettings, TokenVerifier, VerifyKey, MIN_SECRET_BYTES,
};

/// Headers with a meaning on this platform.
pub mod headers {
    pub const REQUEST_ID: &str = "x-request-id";
    /// The client's address as the gateway saw it (used for throttling).
    pub const CLIENT_IP: &str = "x-forwarded-for";

    /// Identity headers some proxies set. No service of the platform reads them (each
    /// verifies the bearer token itself); the gateway still removes any a client sends, so no
    /// future reader can be fooled by one.
    pub const IDENTITY: [&str; 4] = ["x-user-id", "x-username", "x-user-role", "x-session-id"];
}

/// Token verification plus the session check: what "authenticated" means on this platform.
#[derive(Clone)]
pub struct Authenticator {
    pub verifier: Arc<TokenVerifier>,
    pub sessions: Sessions,
}

impl Authenticator {
    pub fn new(verifier: Arc<TokenVerifier>, sessions: Sessions) -> Self {
        Self { verifier, sessions }
    }

    /// The claims and session of a valid token whose session is live.
    pub async fn authenticate(&self, token: &str) -> Result<(Claims, SessionData), AuthError> {
        let claims = self.verifier.verify(token)?;
        let session = self.sessions.live_for(&claims).await?;
        Ok((claims, session))
    }

    /// [`Authenticator::authenticate`] for the raw value of an `Authorization` header (or
    /// none): `Missing` unless it is `Bearer <token>`.
    pub async fn authenticate_header(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<(Claims, SessionData), AuthError> {
        let token = token_of(authorization)?;
        self.authenticate(token).await
    }
}

/// The token of a raw `Authorization` header value: `Missing` unless it is `Bearer <token>`
/// in UTF-8.
pub fn token_of(authorization: Option<&[u8]>) -> Result<&str, AuthError> {
    authorization
        .and_then(|raw| std::str::from_utf8(raw).ok())
        .and_then(bearer_token)
        .ok_or(AuthError::Missing)
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::kv::{Kv, KvError};
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

    fn verifier() -> TokenVerifier {
        let key = VerifyKey::Hmac {
            algorithm: Algorithm::HS256,
            secrets: vec![SECRET.to_vec()],
        };
        TokenVerifier::new(key, "iss", "aud", Duration::ZERO).unwrap()
    }

    fn claims(exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "1".into(),
            sid: "s".into(),
            username: "alice".into(),
            role: "user".into(),
            iat: now,
            exp: now + exp_offset,
            iss: "iss".into(),
            aud: "aud".into(),
        }
    }

    fn sign(c: &Claims) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            c,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    #[test]
    fn accepts_a_genuine_token() {
        let c = claims(60);
        assert_eq!(verifier().verify(&sign(&c)).unwrap(), c);
    }

    #[test]
    fn a_previous_secret_is_accepted_until_its_tokens_expire_and_an_unknown_one_never() {
        const NEW: &[u8] = b"the-next-secret-the-next-secret-0123";
        let rotated = TokenVerifier::new(
            VerifyKey::Hmac {
                algorithm: Algorithm::HS256,
                secrets: vec![NEW.to_vec(), SECRET.to_vec()],
            },
            "iss",
            "aud",
            Duration::ZERO,
        )
        .unwrap();
        let c = claims(60);
        // Signed before the rotation (the previous secret) and after it (the new one).
        assert_eq!(rotated.verify(&sign(&c)).unwrap(), c);
        let new = encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(NEW),
        );
        assert_eq!(rotated.verify(&new.unwrap()).unwrap(), c);
        // The previous secret's expired tokens are expired, not "invalid".
        assert!(matches!(
            rotated.verify(&sign(&claims(-60))),
            Err(AuthError::Expired)
        ));
        let foreign = encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(b"someone-else-someone-else-0123456789"),
        );
        assert!(matches!(
            rotated.verify(&foreign.unwrap()),
            Err(AuthError::Invalid)
        ));
        // Without the previous secret, the old token is refused.
        let new_only = TokenVerifier::new(
            VerifyKey::Hmac {
                algorithm: Algorithm::HS256,
                secrets: vec![NEW.to_vec()],
            },
            "iss",
            "aud",
            Duration::ZERO,
        )
        .unwrap();
        assert!(matches!(
            new_only.verify(&sign(&c)),
            Err(AuthError::Invalid)
        ));
    }

    #[test]
    fn refuses_expired_and_foreign_tokens() {
        assert!(matches!(
            verifier().verify(&sign(&claims(-60))),
            Err(AuthError::Expired)
        ));
        let mut c = claims(60);
        c.aud = "elsewhere".into();
        assert!(matches!(
            verifier().verify(&sign(&c)),
            Err(AuthError::Invalid)
        ));
    }

    #[test]
    fn refuses_alg_none_and_altered_claims() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = b64.encode(serde_json::to_vec(&claims(60)).unwrap());
        let none = format!(
            "{}.{payload}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#)
        );
        assert!(matches!(verifier().verify(&none), Err(AuthError::Invalid)));

        let genuine = sign(&claims(60));
        let parts: Vec<&str> = genuine.split('.').collect();
        let mut admin = claims(60);
        admin.role = "admin".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(serde_json::to_vec(&admin).unwrap()),
            parts[2]
        );
        assert!(matches!(
            verifier().verify(&forged),
            Err(AuthError::Invalid)
        ));
    }

    #[test]
    fn refusals_map_to_status_challenge_and_body() {
        assert_eq!(AuthError::Missing.status(), 401);
        assert_eq!(AuthError::Missing.challenge(), Some("Bearer"));
        assert_eq!(
            AuthError::Expired.challenge(),
            Some("Bearer error=\"invalid_token\"")
        );
        assert_eq!(AuthError::KeysUnavailable.status(), 503);
        assert_eq!(AuthError::KeysUnavailable.challenge(), None);
        let down = AuthError::Unavailable(KvError::from(redis::RedisError::from((
            redis::ErrorKind::Io,
            "down",
        ))));
        assert_eq!((down.status(), down.challenge()), (503, None));
        for e in [
            AuthError::Missing,
            AuthError::Expired,
            AuthError::Invalid,
            AuthError::SessionEnded,
            AuthError::KeysUnavailable,
            down,
        ] {
            let v: serde_json::Value = serde_json::from_slice(e.body()).unwrap();
            assert_eq!(v["detail"], e.detail());
            assert_eq!(e.detail(), e.to_string());
        }
    }

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Admin.permits(Role::Librarian));
        assert!(Role::Librarian.permits(Role::User));
        assert!(!Role::User.permits(Role::Librarian));
        assert!(!Role::Librarian.permits(Role::Admin));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(token_of(Some(b"Bearer abc")).unwrap(), "abc");
        assert!(matches!(
            token_of(Some(b"Bearer \xff")),
            Err(AuthError::Missing)
        ));
        assert!(matches!(token_of(None), Err(AuthError::Missing)));
    }

    #[test]
    fn parses_bearer_header() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[tokio::test]
    async fn logout_revokes_the_session() {
        let kv = Kv::memory("t:");
        let sessions = Sessions::new(kv);
        let auth = Authenticator::new(Arc::new(verifier()), sessions.clone());
        let c = claims(60);
        let data = SessionData {
            user_id: 1,
            username: "alice".into(),
            email: "a@x.io".into(),
            role: Role::User,
        };
        sessions
            .create("s", &data, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(auth.authenticate(&sign(&c)).await.is_ok());
        sessions.revoke("s").await.unwrap();
        assert!(matches!(
            auth.authenticate(&sign(&c)).await,
            Err(AuthError::SessionEnded)
        ));
    }

    #[tokio::test]
    async fn every_session_of_a_user_can_be_ended_at_once() {
        let sessions = Sessions::new(Kv::memory("t:"));
        let data = |user_id| SessionData {
            user_id,
            username: "u".into(),
            email: "u@x.io".into(),
            role: Role::User,
        };
        let ttl = Duration::from_secs(60);
        sessions.create("a1", &data(1), ttl).await.unwrap();
        sessions.create("a2", &data(1), ttl).await.unwrap();
        sessions.create("b1", &data(2), ttl).await.unwrap();
        sessions.revoke("a2").await.unwrap();
        assert_eq!(sessions.end_all_for_user(1).await.unwrap(), 1);
        assert!(sessions.get("a1").await.unwrap().is_none());
        assert!(sessions.get("b1").await.unwrap().is_some());
        assert_eq!(sessions.end_all_for_user(1).await.unwrap(), 0);
    }
}
