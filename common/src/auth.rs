//! Bearer tokens and sessions, verified the same way by the gateway and the services.
//!
//! A token is a JWT whose `sid` claim names a session kept in the key-value store under
//! `session:<sid>` for as long as the token lives. A token is accepted only when its signature
//! verifies with an allowed algorithm, it has not expired, its issuer and audience match, and
//! its session still exists — so deleting the session (logout) revokes the token everywhere
//! at once. When the store cannot be reached the answer is "unavailable", never "accepted".

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::kv::{Kv, KvError, Subscription};

/// Headers that carry the verified identity from the gateway to the services. The gateway
/// removes any a client sends and sets them only after verifying the token.
pub mod headers {
    pub const USER_ID: &str = "x-user-id";
    pub const USERNAME: &str = "x-username";
    pub const USER_ROLE: &str = "x-user-role";
    pub const SESSION_ID: &str = "x-session-id";
    pub const REQUEST_ID: &str = "x-request-id";
    /// The client's address as the gateway saw it (used for login throttling).
    pub const CLIENT_IP: &str = "x-forwarded-for";

    /// Every identity header a client must never be able to set.
    pub const IDENTITY: [&str; 4] = [USER_ID, USERNAME, USER_ROLE, SESSION_ID];
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The session this token belongs to.
    pub sid: String,
    pub username: String,
    /// `user` or `admin`.
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// What a live session records; served by `GET /auth/me/` without touching the database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionData {
    pub user_id: i64,
    pub username: String,
    pub email: String,
    pub role: String,
}

/// Why a token was refused, or could not be checked.
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
}

/// Which key verifies tokens.
#[derive(Clone)]
pub enum VerifyKey {
    /// A shared secret (HS256, HS384 or HS512), as in the original app.
    Hmac {
        algorithm: Algorithm,
        secret: Vec<u8>,
    },
    /// Public keys (EdDSA) by key id, from the issuer's JWKS.
    Jwks(JwkSet),
}

/// Checks signatures, algorithm, expiry, issuer and audience.
pub struct TokenVerifier {
    validation: Validation,
    keys: RwLock<Arc<KeyRing>>,
}

/// The decoding keys in force, by key id (`None` for a single unnamed key).
struct KeyRing {
    by_kid: HashMap<Option<String>, DecodingKey>,
}

impl TokenVerifier {
    /// A verifier for tokens from `issuer` to `audience`, allowing only the key's algorithm.
    pub fn new(
        key: VerifyKey,
        issuer: &str,
        audience: &str,
        leeway: Duration,
    ) -> Result<Self, String> {
        let algorithm = match &key {
            VerifyKey::Hmac { algorithm, .. } => *algorithm,
            VerifyKey::Jwks(_) => Algorithm::EdDSA,
        };
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = leeway.as_secs();
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        let ring = KeyRing::from_key(&key)?;
        Ok(Self {
            validation,
            keys: RwLock::new(Arc::new(ring)),
        })
    }

    /// Replaces the public keys (after fetching the issuer's JWKS again).
    pub fn replace_jwks(&self, jwks: &JwkSet) -> Result<(), String> {
        let ring = KeyRing::from_key(&VerifyKey::Jwks(jwks.clone()))?;
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        Ok(())
    }

    /// The token's claims when it is genuine and current.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid);
        }
        let ring = Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()));
        let key = ring
            .by_kid
            .get(&header.kid)
            .or_else(|| {
                if ring.by_kid.len() == 1 {
                    ring.by_kid.values().next()
                } else {
                    None
                }
            })
            .ok_or(AuthError::Invalid)?;
        match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(AuthError::Expired)
            }
            Err(_) => Err(AuthError::Invalid),
        }
    }
}

impl KeyRing {
    fn from_key(key: &VerifyKey) -> Result<Self, String> {
        let mut by_kid = HashMap::new();
        match key {
            VerifyKey::Hmac { secret, .. } => {
                by_kid.insert(None, DecodingKey::from_secret(secret));
            }
            VerifyKey::Jwks(set) => {
                for jwk in &set.keys {
                    let decoding =
                        DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWK: {e}"))?;
                    by_kid.insert(jwk.common.key_id.clone(), decoding);
                }
                if by_kid.is_empty() {
                    return Err("the JWKS holds no keys".into());
                }
            }
        }
        Ok(Self { by_kid })
    }
}

/// Parses the `ALGORITHM` setting of an HMAC key.
pub fn hmac_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "HS256" => Some(Algorithm::HS256),
        "HS384" => Some(Algorithm::HS384),
        "HS512" => Some(Algorithm::HS512),
        _ => None,
    }
}

/// The channel on which ended session ids are published (prefixed like keys).
pub const SESSIONS_ENDED_CHANNEL: &str = "sessions:ended";

/// Sessions in the key-value store.
#[derive(Clone, Debug)]
pub struct Sessions {
    kv: Kv,
}

impl Sessions {
    pub fn new(kv: Kv) -> Self {
        Self { kv }
    }

    fn key(sid: &str) -> String {
        format!("session:{sid}")
    }

    /// Records a session that lives for `ttl`.
    pub async fn create(
        &self,
        sid: &str,
        data: &SessionData,
        ttl: Duration,
    ) -> Result<(), KvError> {
        let value = serde_json::to_string(data).expect("session data serialises");
        self.kv.set_ex(&Self::key(sid), &value, ttl).await
    }

    /// The session, when it is still live.
    pub async fn get(&self, sid: &str) -> Result<Option<SessionData>, KvError> {
        Ok(self
            .kv
            .get(&Self::key(sid))
            .await?
            .and_then(|raw| serde_json::from_str(&raw).ok()))
    }

    /// The live session a verified token names: `SessionEnded` when it is gone or belongs
    /// to another user.
    pub async fn live_for(&self, claims: &Claims) -> Result<SessionData, AuthError> {
        match self.get(&claims.sid).await? {
            Some(session) if session.user_id.to_string() == claims.sub => Ok(session),
            _ => Err(AuthError::SessionEnded),
        }
    }

    /// Whether the session store answers (for readiness checks).
    pub async fn ping(&self) -> Result<(), KvError> {
        self.kv.ping().await
    }

    /// Ends the session and, in the same transaction, announces its id on
    /// [`SESSIONS_ENDED_CHANNEL`] so that caches of it (the gateway's) drop it; true when it
    /// was live.
    pub async fn revoke(&self, sid: &str) -> Result<bool, KvError> {
        self.kv
            .del_and_publish(&Self::key(sid), SESSIONS_ENDED_CHANNEL, sid)
            .await
    }

    /// The ids of sessions ended from now on, as [`Sessions::revoke`] announces them; `None`
    /// when the store publishes nothing (the in-process one).
    pub async fn ended(&self) -> Result<Option<Subscription>, KvError> {
        self.kv.subscribe(SESSIONS_ENDED_CHANNEL).await
    }
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
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Token settings shared by the issuer (user-service) and every verifier.
///
/// `ALGORITHM` is `HS256` (default, as in the original app), `HS384`, `HS512` — all with
/// `SECRET_KEY` — or `EdDSA`, where user-service signs with `JWT_PRIVATE_KEY_FILE` (PKCS#8
/// PEM, Ed25519) and verifiers fetch its public keys from `JWKS_URL`.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub algorithm: Algorithm,
    /// The HMAC secret (HS*) — `None` with EdDSA.
    pub secret: Option<crate::config::Secret>,
    pub issuer: String,
    pub audience: String,
    pub lifetime: Duration,
    pub leeway: Duration,
}

/// The shortest HMAC secret accepted: shorter ones can be brute-forced offline from one token.
pub const MIN_SECRET_BYTES: usize = 32;

impl TokenSettings {
    /// Reads `ALGORITHM`, `SECRET_KEY`, `JWT_ISSUER`, `JWT_AUDIENCE`,
    /// `ACCESS_TOKEN_EXPIRE_MINUTES` and `JWT_LEEWAY_SECONDS`.
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        use crate::config::{parse_or, var, var_or, ConfigError, Secret};
        let name = var_or("ALGORITHM", "HS256");
        let (algorithm, secret) = if name == "EdDSA" {
            (Algorithm::EdDSA, None)
        } else {
            let algorithm = hmac_algorithm(&name).ok_or_else(|| {
                ConfigError::new(
                    "ALGORITHM",
                    format!("{name:?} is not one of HS256, HS384, HS512, EdDSA"),
                )
            })?;
            let secret = var("SECRET_KEY").ok_or_else(|| {
                ConfigError::new("SECRET_KEY", format!("required with ALGORITHM={name}"))
            })?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(ConfigError::new(
                    "SECRET_KEY",
                    format!(
                        "must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                    ),
                ));
            }
            (algorithm, Some(Secret::new(secret)))
        };
        let minutes: u64 = parse_or("ACCESS_TOKEN_EXPIRE_MINUTES", 30)?;
        if minutes == 0 {
            return Err(ConfigError::new(
                "ACCESS_TOKEN_EXPIRE_MINUTES",
                "must be at least 1",
            ));
        }
        Ok(Self {
            algorithm,
            secret,
            issuer: var_or("JWT_ISSUER", "user-service"),
            audience: var_or("JWT_AUDIENCE", "platform"),
            lifetime: Duration::from_secs(minutes * 60),
            leeway: Duration::from_secs(parse_or("JWT_LEEWAY_SECONDS", 5)?),
        })
    }

    /// A verifier for HMAC settings; `None` for EdDSA (build it from the JWKS instead).
    pub fn hmac_verifier(&self) -> Option<TokenVerifier> {
        let secret = self.secret.as_ref()?;
        let key = VerifyKey::Hmac {
            algorithm: self.algorithm,
            secret: secret.expose().as_bytes().to_vec(),
        };
        TokenVerifier::new(key, &self.issuer, &self.audience, self.leeway).ok()
    }

    /// A verifier from the issuer's published keys (EdDSA).
    pub fn jwks_verifier(&self, jwks: JwkSet) -> Result<TokenVerifier, String> {
        TokenVerifier::new(
            VerifyKey::Jwks(jwks),
            &self.issuer,
            &self.audience,
            self.leeway,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

    fn verifier() -> TokenVerifier {
        let key = VerifyKey::Hmac {
            algorithm: Algorithm::HS256,
            secret: SECRET.to_vec(),
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
            role: "user".into(),
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
}
