//! Access tokens: their claims, the settings shared by the issuer and every verifier, and
//! verification (signature, algorithm allow-list, expiry, issuer, audience).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The session this token belongs to.
    pub sid: String,
    pub username: String,
    /// The role when the token was issued: informative only; authorisation reads the live
    /// session's role, which a role change rewrites.
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Which key verifies tokens.
#[derive(Clone)]
pub enum VerifyKey {
    /// Shared secrets (HS256, HS384 or HS512), as in the original app: the current one first,
    /// then any previous one still accepted during a rotation.
    Hmac {
        algorithm: Algorithm,
        secrets: Vec<Vec<u8>>,
    },
    /// Public keys (EdDSA) by key id, from the issuer's JWKS.
    Jwks(JwkSet),
}

/// Checks signatures, algorithm, expiry, issuer and audience.
pub struct TokenVerifier {
    validation: Validation,
    keys: RwLock<Arc<KeyRing>>,
}

/// The decoding keys in force: named ones by key id (a JWKS), unnamed ones (HMAC secrets,
/// current first) tried in order.
struct KeyRing {
    by_kid: HashMap<String, DecodingKey>,
    unnamed: Vec<DecodingKey>,
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
        let named = header.kid.as_ref().and_then(|kid| ring.by_kid.get(kid));
        let candidates: Vec<&DecodingKey> = match named {
            Some(key) => vec![key],
            // A token without a key id (or an id no longer known) from a single-key issuer:
            // that key; with HMAC, each accepted secret in turn.
            None if ring.unnamed.is_empty() && ring.by_kid.len() == 1 => {
                ring.by_kid.values().collect()
            }
            None => ring.unnamed.iter().collect(),
        };
        // A wrong signature may be another accepted key's: try the next one. Anything else
        // is the token's own fault, whichever key checks it.
        use jsonwebtoken::errors::ErrorKind;
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                    return Err(AuthError::Expired)
                }
                Err(_) => return Err(AuthError::Invalid),
            }
        }
        Err(AuthError::Invalid)
    }
}

impl KeyRing {
    fn from_key(key: &VerifyKey) -> Result<Self, String> {
        let mut ring = Self {
            by_kid: HashMap::new(),
            unnamed: Vec::new(),
        };
        match key {
            VerifyKey::Hmac { secrets, .. } => {
                ring.unnamed = secrets
                    .iter()
                    .map(|s| DecodingKey::from_secret(s))
                    .collect();
            }
            VerifyKey::Jwks(set) => {
                for jwk in &set.keys {
                    let decoding =
                        DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWK: {e}"))?;
                    match &jwk.common.key_id {
                        Some(kid) => {
                            ring.by_kid.insert(kid.clone(), decoding);
                        }
                        None => ring.unnamed.push(decoding),
                    }
                }
            }
        }
        if ring.by_kid.is_empty() && ring.unnamed.is_empty() {
            return Err("no verification key".into());
        }
        Ok(ring)
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

/// Token settings shared by the issuer (user-service) and every verifier.
///
/// `ALGORITHM` is `HS256` (default, as in the original app), `HS384`, `HS512` — all with
/// `SECRET_KEY` (and, during a rotation, `SECRET_KEY_PREVIOUS`) — or `EdDSA`, where
/// user-service signs with `JWT_PRIVATE_KEY_FILE` (PKCS#8 PEM, Ed25519) and verifiers fetch
/// its public keys from `JWKS_URL`.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub algorithm: Algorithm,
    /// The HMAC secret (HS*) — `None` with EdDSA.
    pub secret: Option<crate::config::Secret>,
    /// `SECRET_KEY_PREVIOUS`: the secret before the last rotation, still accepted (never used
    /// to sign) until the tokens it signed have expired. HS* only.
    pub previous_secret: Option<crate::config::Secret>,
    pub issuer: String,
    pub audience: String,
    pub lifetime: Duration,
    pub leeway: Duration,
}

/// The shortest HMAC secret accepted: shorter ones can be brute-forced offline from one token.
pub const MIN_SECRET_BYTES: usize = 32;

impl TokenSettings {
    /// Reads `ALGORITHM`, `SECRET_KEY`, `SECRET_KEY_PREVIOUS`, `JWT_ISSUER`, `JWT_AUDIENCE`,
    /// `ACCESS_TOKEN_EXPIRE_MINUTES` and `JWT_LEEWAY_SECONDS`.
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        use crate::config::{parse_or, var, var_or, ConfigError, Secret};
        let name = var_or("ALGORITHM", "HS256");
        let (algorithm, secret, previous_secret) = if name == "EdDSA" {
            if var("SECRET_KEY_PREVIOUS").is_some() {
                return Err(ConfigError::new(
                    "SECRET_KEY_PREVIOUS",
                    "is for HS* only; with EdDSA the previous public key stays in the JWKS (JWT_EXTRA_JWKS_FILE)",
                ));
            }
            (Algorithm::EdDSA, None, None)
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
            let strong = |variable: &'static str, value: String| {
                if value.len() < MIN_SECRET_BYTES {
                    return Err(ConfigError::new(
                        variable,
                        format!(
                            "must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                        ),
                    ));
                }
                Ok(Secret::new(value))
            };
            let previous = var("SECRET_KEY_PREVIOUS")
                .map(|v| strong("SECRET_KEY_PREVIOUS", v))
                .transpose()?;
            (algorithm, Some(strong("SECRET_KEY", secret)?), previous)
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
            previous_secret,
            issuer: var_or("JWT_ISSUER", "user-service"),
            audience: var_or("JWT_AUDIENCE", "platform"),
            lifetime: Duration::from_secs(minutes * 60),
            leeway: Duration::from_secs(parse_or("JWT_LEEWAY_SECONDS", 5)?),
        })
    }

    /// A verifier for HMAC settings; `None` for EdDSA (build it from the JWKS instead).
    pub fn hmac_verifier(&self) -> Option<TokenVerifier> {
        let secret = self.secret.as_ref()?;
        let secrets = std::iter::once(secret)
            .chain(self.previous_secret.as_ref())
            .map(|s| s.expose().as_bytes().to_vec())
            .collect();
        let key = VerifyKey::Hmac {
            algorithm: self.algorithm,
            secrets,
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
