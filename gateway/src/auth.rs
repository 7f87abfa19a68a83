//! The bearer-token check the gateway makes before anything is forwarded to a protected route.
//!
//! The same checks as [`common::auth::Authenticator`] — signature, algorithm allow-list,
//! expiry, issuer, audience, then the live session — made for the edge: the keys may arrive
//! later (EdDSA keys come from the issuer's JWKS), and live sessions are remembered in a
//! [`SessionCache`] kept fresh by the store's announcements of ended sessions. A refusal is a
//! [`common::auth::AuthError`], answered the way every service answers it. The signature is
//! checked before anything else, so a forged or expired token never costs a Redis round trip.
//!
//! Nothing is derived from the token for the upstream: every service verifies the token
//! itself, and the gateway forwards no identity headers (it removes any a client sends).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::auth::{token_of, AuthError, Claims, Sessions, TokenVerifier};

use crate::session_cache::SessionCache;

/// Verifies bearer tokens and their sessions; shared by every request of a gateway.
pub struct TokenCheck {
    verifier: OnceLock<Arc<TokenVerifier>>,
    sessions: Sessions,
    /// Live sessions by id, with the user id they belong to (compared with `sub`).
    cache: SessionCache<i64>,
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
    /// every time, its session in the cache or else in the store. Returns the verified claims.
    pub async fn check(&self, authorization: Option<&[u8]>) -> Result<Claims, AuthError> {
        self.check_token(token_of(authorization)?).await
    }

    /// Checks a token taken from elsewhere than the `Authorization` header (the browser
    /// session's cookie, see [`crate::cookie`]) exactly as [`Self::check`] does.
    pub async fn check_token(&self, token: &str) -> Result<Claims, AuthError> {
        let verifier = self.verifier.get().ok_or(AuthError::KeysUnavailable)?;
        let claims = verifier.verify(token)?;
        if let Some(user_id) = self.cache.get(&claims.sid) {
            if claims.sub.parse() == Ok(user_id) {
                return Ok(claims);
            }
        }
        let ticket = self.cache.ticket(&claims.sid);
        let session = self.sessions.live_for(&claims).await.inspect_err(|e| {
            if let AuthError::Unavailable(cause) = e {
                tracing::warn!(error = %cause, "session store unavailable; refusing protected request");
            }
        })?;
        if let Some(ticket) = ticket {
            self.cache.insert(&claims.sid, session.user_id, ticket);
        }
        Ok(claims)
    }

    /// The session ended (its logout went through this gateway, or its end was announced):
    /// forget it.
    pub fn session_ended(&self, sid: &str) {
        self.cache.evict(sid);
    }

    /// The cache of live sessions (its feed is run by [`crate::background`]).
    pub fn cache(&self) -> &SessionCache<i64> {
        &self.cache
    }

    /// The session store.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use common::auth::{Role, SessionData, VerifyKey};
    use common::kv::Kv;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

    const SECRET: &[u8] = b"gateway-unit-test-secret-0123456789abcdef";

    fn verifier() -> Arc<TokenVerifier> {
        let key = VerifyKey::Hmac {
            algorithm: Algorithm::HS256,
            secrets: vec![SECRET.to_vec()],
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
            role: Role::Admin,
        };
        Sessions::new(kv.clone())
            .create(sid, &data, Duration::from_secs(60))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn accepts_a_live_session_and_returns_its_claims() {
        let kv = Kv::memory("gw-auth:");
        with_session(&kv, "s1").await;
        let check = TokenCheck::ready(verifier(), Sessions::new(kv));
        let verified = check
            .check(Some(&bearer(&sign(&claims("s1", 60)))))
            .await
            .unwrap();
        assert_eq!((verified.sub.as_str(), verified.sid.as_str()), ("7", "s1"));
    }

    #[tokio::test]
    async fn a_cached_session_is_used_only_by_its_own_user() {
        let kv = Kv::memory("gw-auth:");
        with_session(&kv, "s1").await;
        let check = TokenCheck::ready(verifier(), Sessions::new(kv.clone()))
            .with_cache(Duration::from_secs(60), 100);
        check.cache().start_listening();
        let token = bearer(&sign(&claims("s1", 60)));
        assert!(check.check(Some(&token)).await.is_ok());
        assert_eq!(check.cache().get("s1"), Some(7));
        // Served from the cache: the store no longer has it.
        kv.del("session:s1").await.unwrap();
        assert!(check.check(Some(&token)).await.is_ok());
        // A token of another user naming that session id is checked against the store.
        let mut other = claims("s1", 60);
        other.sub = "8".into();
        assert!(matches!(
            check.check(Some(&bearer(&sign(&other)))).await,
            Err(AuthError::SessionEnded)
        ));
    }

    #[tokio::test]
    async fn refuses_missing_malformed_expired_and_ended() {
        let kv = Kv::memory("gw-auth:");
        with_session(&kv, "s1").await;
        let check = TokenCheck::ready(verifier(), Sessions::new(kv.clone()));
        let refusal = |header: Option<Vec<u8>>| {
            let check = &check;
            async move { check.check(header.as_deref()).await.unwrap_err() }
        };
        assert!(matches!(refusal(None).await, AuthError::Missing));
        assert!(matches!(
            refusal(Some(b"Basic abc".to_vec())).await,
            AuthError::Missing
        ));
        assert!(matches!(
            refusal(Some(b"Bearer ".to_vec())).await,
            AuthError::Missing
        ));
        assert!(matches!(
            refusal(Some(b"Bearer \xff".to_vec())).await,
            AuthError::Missing
        ));
        assert!(matches!(
            refusal(Some(bearer("not.a.jwt"))).await,
            AuthError::Invalid
        ));
        assert!(matches!(
            refusal(Some(bearer(&sign(&claims("s1", -60))))).await,
            AuthError::Expired
        ));
        assert!(matches!(
            refusal(Some(bearer(&sign(&claims("gone", 60))))).await,
            AuthError::SessionEnded
        ));
        Sessions::new(kv).revoke("s1").await.unwrap();
        assert!(matches!(
            refusal(Some(bearer(&sign(&claims("s1", 60))))).await,
            AuthError::SessionEnded
        ));
    }

    #[tokio::test]
    async fn without_keys_it_fails_closed() {
        let check = TokenCheck::pending(Sessions::new(Kv::memory("gw-auth:")));
        let token = bearer(&sign(&claims("s1", 60)));
        assert!(matches!(
            check.check(Some(&token)).await,
            Err(AuthError::KeysUnavailable)
        ));
        assert!(check.install(verifier()));
        assert!(!check.install(verifier()));
        assert!(matches!(
            check.check(Some(&token)).await,
            Err(AuthError::SessionEnded)
        ));
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
        let refused = check
            .check(Some(&bearer(&sign(&claims("s1", 60)))))
            .await
            .unwrap_err();
        assert!(matches!(refused, AuthError::Unavailable(_)));
        assert_eq!((refused.status(), refused.challenge()), (503, None));
        // A forged token is refused without asking the store at all.
        assert!(matches!(
            check.check(Some(&bearer("a.b.c"))).await,
            Err(AuthError::Invalid)
        ));
    }
}
