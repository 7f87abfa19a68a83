//! The bearer-token check the gateway makes before anything is forwarded to a protected route.
//!
//! The same checks as [`common::auth::Authenticator`] — signature, algorithm allow-list,
//! expiry, issuer, audience, then the live session — made for the edge: the keys may arrive
//! later (EdDSA keys come from the issuer's JWKS), live sessions are remembered in a
//! [`SessionCache`] kept fresh by the store's announcements of ended sessions, the result is
//! turned into the header values forwarded upstream, and every refusal maps to one fixed
//! response. The signature is checked before anything else, so a forged or expired token
//! never costs a Redis round trip.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::auth::{bearer_token, AuthError, Sessions, TokenVerifier};
use http::HeaderValue;

use crate::session_cache::SessionCache;

/// The verified caller, as the header values set on the upstream request.
#[derive(Clone, Debug)]
pub struct Identity {
    /// `x-user-id`
    pub user_id: HeaderValue,
    /// `x-username`
    pub username: HeaderValue,
    /// `x-user-role`
    pub role: HeaderValue,
    /// `x-session-id`
    pub session_id: HeaderValue,
}

/// Why a request to a protected route is answered by the gateway instead of forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// No bearer token was sent: 401 with `WWW-Authenticate: Bearer`.
    Missing,
    /// The token's `exp` has passed: 401, `invalid_token`.
    Expired,
    /// Bad signature, algorithm, issuer, audience or shape: 401, `invalid_token`.
    Invalid,
    /// The session was ended (logout) or never existed: 401, `invalid_token`.
    SessionEnded,
    /// The session store did not answer: 503. The gateway fails closed.
    StoreUnavailable,
    /// The verification keys are not loaded yet (EdDSA, JWKS not fetched): 503.
    KeysUnavailable,
}

/// `(detail, JSON body)` pairs built at compile time, so a refusal costs no allocation.
macro_rules! detail {
    ($text:literal) => {
        ($text, concat!("{\"detail\":\"", $text, "\"}").as_bytes())
    };
}

impl Rejection {
    pub fn status(self) -> u16 {
        match self {
            Rejection::StoreUnavailable | Rejection::KeysUnavailable => 503,
            _ => 401,
        }
    }

    fn texts(self) -> (&'static str, &'static [u8]) {
        match self {
            Rejection::Missing => detail!("Not authenticated"),
            Rejection::Expired => detail!("Token has expired"),
            Rejection::Invalid => detail!("Invalid token"),
            Rejection::SessionEnded => detail!("Session has ended"),
            Rejection::StoreUnavailable => detail!("Session store unavailable"),
            Rejection::KeysUnavailable => detail!("Authentication unavailable"),
        }
    }

    /// The `detail` of the JSON body.
    pub fn detail(self) -> &'static str {
        self.texts().0
    }

    /// The whole JSON body, `{"detail":"..."}`.
    pub fn body(self) -> &'static [u8] {
        self.texts().1
    }

    /// The `WWW-Authenticate` challenge of a 401.
    pub fn challenge(self) -> Option<&'static str> {
        match self {
            Rejection::Missing => Some("Bearer"),
            Rejection::StoreUnavailable | Rejection::KeysUnavailable => None,
            _ => Some("Bearer error=\"invalid_token\""),
        }
    }
}

/// Verifies bearer tokens and their sessions; shared by every request of a gateway.
pub struct TokenCheck {
    verifier: OnceLock<Arc<TokenVerifier>>,
    sessions: Sessions,
    cache: SessionCache<Identity>,
}

impl TokenCheck {
    /// A check whose keys are not known yet (EdDSA before the JWKS answered): until
    /// [`TokenCheck::install`] is called, protected routes answer 503.
    pub fn pending(sessions: Sessions) -> Self {
        Self {
            verifier: OnceLock::new(),
            sessions,
            cache: SessionCache::new(Duration::ZERO, 0),
        }
    }

    /// Remembers live sessions for `ttl` (at most `max_entries`) once the cache's feed is
    /// subscribed; see [`crate::session_cache`].
    pub fn with_cache(mut self, ttl: Duration, max_entries: usize) -> Self {
        self.cache = SessionCache::new(ttl, max_entries);
        self
    }

    /// A check with its keys (HMAC, or a verifier built from a JWKS).
    pub fn ready(verifier: Arc<TokenVerifier>, sessions: Sessions) -> Self {
        let check = Self::pending(sessions);
        check.install(verifier);
        check
    }

    /// Installs the verifier; false when one was already installed (replace the keys of
    /// that one with [`TokenVerifier::replace_jwks`] instead).
    pub fn install(&self, verifier: Arc<TokenVerifier>) -> bool {
        self.verifier.set(verifier).is_ok()
    }

    /// The verifier in force, once there is one.
    pub fn verifier(&self) -> Option<&Arc<TokenVerifier>> {
        self.verifier.get()
    }

    /// Whether protected routes can be served: the keys are known and the session store
    /// answers. `Err` names what is missing.
    pub async fn readiness(&self) -> Result<(), &'static str> {
        if self.verifier.get().is_none() {
            return Err("token keys not loaded (JWKS)");
        }
        self.sessions
            .ping()
            .await
            .map_err(|_| "session store unreachable")
    }

    /// Checks the `Authorization` header value (raw bytes, as received): the token itself
    /// every time, its session in the cache or else in the store.
    pub async fn check(&self, authorization: Option<&[u8]>) -> Result<Identity, Rejection> {
        let token = authorization
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .and_then(bearer_token)
            .ok_or(Rejection::Missing)?;
        let verifier = self.verifier.get().ok_or(Rejection::KeysUnavailable)?;
        let claims = verifier.verify(token).map_err(rejection)?;
        if let Some(identity) = self.cache.get(&claims.sid) {
            if identity.user_id.as_bytes() == claims.sub.as_bytes() {
                return Ok(identity);
            }
        }
        let ticket = self.cache.ticket(&claims.sid);
        let session = self.sessions.live_for(&claims).await.map_err(rejection)?;
        let identity = Identity {
            user_id: HeaderValue::from(session.user_id),
            username: header_value(&session.username)?,
            role: header_value(&session.role)?,
            session_id: header_value(&claims.sid)?,
        };
        if let Some(ticket) = ticket {
            self.cache.insert(&claims.sid, identity.clone(), ticket);
        }
        Ok(identity)
    }

    /// The session ended (its logout went through this gateway, or its end was announced):
    /// forget it.
    pub fn session_ended(&self, sid: &str) {
        self.cache.evict(sid);
    }

    /// The cache of live sessions (its feed is run by the server).
    pub fn cache(&self) -> &SessionCache<Identity> {
        &self.cache
    }

    /// The session store.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }
}

fn rejection(e: AuthError) -> Rejection {
    match e {
        AuthError::Missing => Rejection::Missing,
        AuthError::Expired => Rejection::Expired,
        AuthError::Invalid => Rejection::Invalid,
        AuthError::SessionEnded => Rejection::SessionEnded,
        AuthError::Unavailable(e) => {
            tracing::warn!(error = %e, "session store unavailable; refusing protected request");
            Rejection::StoreUnavailable
        }
    }
}

/// A header value from a signed claim or a stored session; one that cannot be a header value
/// (control characters) makes the token unusable rather than being forwarded mangled.
fn header_value(s: &str) -> Result<HeaderValue, Rejection> {
    HeaderValue::from_bytes(s.as_bytes()).map_err(|_| Rejection::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    use common::auth::{Claims, SessionData, VerifyKey};
    use common::kv::Kv;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

    const SECRET: &[u8] = b"gateway-unit-test-secret-0123456789abcdef";

    fn verifier() -> Arc<TokenVerifier> {
        let key = VerifyKey::Hmac {
            algorithm: Algorithm::HS256,
            secret: SECRET.to_vec(),
        };
        Arc::new(TokenVerifier::new(key, "iss", "aud", Duration::ZERO).unwrap())
    }

    fn claims(sid: &str, exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "7".into(),
            sid: sid.into(),
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

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    async fn with_session(kv: &Kv, sid: &str) {
        let data = SessionData {
            user_id: 7,
            username: "alice".into(),
            email: "a@x.io".into(),
            role: "admin".into(),
        };
        Sessions::new(kv.clone())
            .create(sid, &data, Duration::from_secs(60))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn accepts_a_live_session_and_exposes_its_identity() {
        let kv = Kv::memory("gw-auth:");
        with_session(&kv, "s1").await;
        let check = TokenCheck::ready(verifier(), Sessions::new(kv));
        let id = check
            .check(Some(&bearer(&sign(&claims("s1", 60)))))
            .await
            .unwrap();
        assert_eq!(id.user_id, "7");
        assert_eq!(id.username, "alice");
        // The role comes from the live session, not from the (older) claim.
        assert_eq!(id.role, "admin");
        assert_eq!(id.session_id, "s1");
    }

    #[tokio::test]
    async fn refuses_missing_malformed_expired_and_ended() {
        let kv = Kv::memory("gw-auth:");
        with_session(&kv, "s1").await;
        let check = TokenCheck::ready(verifier(), Sessions::new(kv.clone()));
        assert_eq!(check.check(None).await.unwrap_err(), Rejection::Missing);
        assert_eq!(
            check.check(Some(b"Basic abc")).await.unwrap_err(),
            Rejection::Missing
        );
        assert_eq!(
            check.check(Some(b"Bearer ")).await.unwrap_err(),
            Rejection::Missing
        );
        assert_eq!(
            check.check(Some(b"Bearer \xff")).await.unwrap_err(),
            Rejection::Missing
        );
        assert_eq!(
            check.check(Some(&bearer("not.a.jwt"))).await.unwrap_err(),
            Rejection::Invalid
        );
        assert_eq!(
            check
                .check(Some(&bearer(&sign(&claims("s1", -60)))))
                .await
                .unwrap_err(),
            Rejection::Expired
        );
        assert_eq!(
            check
                .check(Some(&bearer(&sign(&claims("gone", 60)))))
                .await
                .unwrap_err(),
            Rejection::SessionEnded
        );
        Sessions::new(kv).revoke("s1").await.unwrap();
        assert_eq!(
            check
                .check(Some(&bearer(&sign(&claims("s1", 60)))))
                .await
                .unwrap_err(),
            Rejection::SessionEnded
        );
    }

    #[tokio::test]
    async fn without_keys_it_fails_closed() {
        let check = TokenCheck::pending(Sessions::new(Kv::memory("gw-auth:")));
        let token = bearer(&sign(&claims("s1", 60)));
        assert_eq!(
            check.check(Some(&token)).await.unwrap_err(),
            Rejection::KeysUnavailable
        );
        assert!(check.install(verifier()));
        assert!(!check.install(verifier()));
        assert_eq!(
            check.check(Some(&token)).await.unwrap_err(),
            Rejection::SessionEnded
        );
    }

    #[tokio::test]
    async fn an_unreachable_session_store_is_unavailable_not_accepted() {
        // Nothing listens on port 1: every store call fails.
        let timeouts = common::kv::RedisTimeouts {
            connect: Duration::from_millis(200),
            response: Duration::from_millis(200),
        };
        let kv = Kv::redis("redis://127.0.0.1:1", "gw-auth:", timeouts)
            .await
            .unwrap();
        let check = TokenCheck::ready(verifier(), Sessions::new(kv));
        assert_eq!(
            check
                .check(Some(&bearer(&sign(&claims("s1", 60)))))
                .await
                .unwrap_err(),
            Rejection::StoreUnavailable
        );
        // A forged token is refused without asking the store at all.
        assert_eq!(
            check.check(Some(&bearer("a.b.c"))).await.unwrap_err(),
            Rejection::Invalid
        );
    }

    #[test]
    fn rejections_map_to_status_challenge_and_body() {
        assert_eq!(Rejection::Missing.status(), 401);
        assert_eq!(Rejection::Missing.challenge(), Some("Bearer"));
        assert_eq!(
            Rejection::Expired.challenge(),
            Some("Bearer error=\"invalid_token\"")
        );
        assert_eq!(Rejection::StoreUnavailable.status(), 503);
        assert_eq!(Rejection::KeysUnavailable.challenge(), None);
        for r in [
            Rejection::Missing,
            Rejection::Expired,
            Rejection::Invalid,
            Rejection::SessionEnded,
            Rejection::StoreUnavailable,
            Rejection::KeysUnavailable,
        ] {
            let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
            assert_eq!(v["detail"], r.detail());
        }
    }
}
