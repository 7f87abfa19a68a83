//! Signing access tokens (HMAC with `SECRET_KEY`, or Ed25519) and publishing the public key
//! as a JWKS, so that verifiers such as the gateway can check tokens without being able to
//! mint them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::auth::{Claims, SessionData, TokenSettings, TokenVerifier};
use common::config::ConfigError;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

/// An Ed25519 private key (PKCS#8 PEM) with its public half as a JWK.
#[derive(Clone)]
pub struct EdKey {
    encoding: EncodingKey,
    /// The public key: `kty` OKP, `crv` Ed25519, `x`, `kid`, `alg` EdDSA, `use` sig.
    public: Jwk,
    kid: String,
}

impl std::fmt::Debug for EdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl EdKey {
    /// Parses an Ed25519 private key in PKCS#8 PEM (as `openssl genpkey -algorithm ed25519`
    /// writes it) and checks that it signs tokens its public key verifies.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let encoding = EncodingKey::from_ed_pem(pem)
            .map_err(|e| format!("not an Ed25519 private key in PKCS#8 PEM ({e})"))?;
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA)
            .map_err(|e| format!("cannot derive the Ed25519 public key ({e})"))?;
        // The key id is the RFC 7638 thumbprint: stable for a key, different for the next
        // one, so verifiers can hold both during a rotation.
        let kid = public
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| format!("cannot compute the key id ({e})"))?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        let key = Self {
            encoding,
            public,
            kid,
        };
        key.self_check()?;
        Ok(key)
    }

    /// Reads and parses the key file; errors name `JWT_PRIVATE_KEY_FILE`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let fail = |message: String| ConfigError::new("JWT_PRIVATE_KEY_FILE", message);
        let pem = std::fs::read(path)
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        Self::from_pem(&pem).map_err(|e| fail(format!("{}: {e}", path.display())))
    }

    /// The key id put in the `kid` header of every token.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn self_check(&self) -> Result<(), String> {
        let decoding = DecodingKey::from_jwk(&self.public)
            .map_err(|e| format!("unusable public key ({e})"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let probe = serde_json::json!({"probe": true});
        let token = jsonwebtoken::encode(&header, &probe, &self.encoding)
            .map_err(|e| format!("the key cannot sign ({e})"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
            .map(|_| ())
            .map_err(|e| format!("the public key does not verify its signatures ({e})"))
    }
}

/// Reads `JWT_EXTRA_JWKS_FILE`: a JWKS document of Ed25519 public keys, each with its `kid`
/// (as `/.well-known/jwks.json` publishes them, so saving that document before a rotation
/// gives the file). A private part (`d`) is refused: the file is published as it is.
pub fn read_extra_jwks(path: &Path) -> Result<JwkSet, ConfigError> {
    let fail = |message: String| {
        ConfigError::new(
            "JWT_EXTRA_JWKS_FILE",
            format!("{}: {message}", path.display()),
        )
    };
    let text = std::fs::read(path).map_err(|e| fail(format!("cannot read it ({e})")))?;
    let raw: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| fail(format!("not JSON ({e})")))?;
    let private = raw["keys"]
        .as_array()
        .is_some_and(|keys| keys.iter().any(|k| k.get("d").is_some()));
    if private {
        return Err(fail(
            "holds a private key (`d`); publish public keys only".into(),
        ));
    }
    let set: JwkSet = serde_json::from_value(raw).map_err(|e| fail(format!("not a JWKS ({e})")))?;
    for key in &set.keys {
        if key.common.key_id.is_none() {
            return Err(fail("every key needs its `kid`".into()));
        }
        DecodingKey::from_jwk(key).map_err(|e| fail(format!("unusable key ({e})")))?;
    }
    Ok(set)
}

/// Mints access tokens and holds the matching verifier and JWKS.
pub struct TokenIssuer {
    settings: TokenSettings,
    header: Header,
    key: EncodingKey,
    jwks: JwkSet,
    verifier: Arc<TokenVerifier>,
}

impl TokenIssuer {
    /// An issuer for `settings`: HMAC with its secret (and any previous one, verified only),
    /// or EdDSA with `ed_key`, publishing `extra` public keys beside it (verified, never used
    /// to sign).
    pub fn new(
        settings: TokenSettings,
        ed_key: Option<EdKey>,
        extra: &JwkSet,
    ) -> Result<Self, ConfigError> {
        let (header, key, jwks, verifier) = match settings.algorithm {
            Algorithm::EdDSA => {
                let ed = ed_key.ok_or_else(|| {
                    ConfigError::new("JWT_PRIVATE_KEY_FILE", "required with ALGORITHM=EdDSA")
                })?;
                let mut header = Header::new(Algorithm::EdDSA);
                header.kid = Some(ed.kid.clone());
                let mut keys = vec![ed.public.clone()];
                keys.extend(
                    extra
                        .keys
                        .iter()
                        .filter(|k| k.common.key_id != ed.public.common.key_id)
                        .cloned(),
                );
                let jwks = JwkSet { keys };
                let verifier = settings
                    .jwks_verifier(jwks.clone())
                    .map_err(|e| ConfigError::new("JWT_PRIVATE_KEY_FILE", e))?;
                (header, ed.encoding, jwks, verifier)
            }
            algorithm => {
                let secret = settings.secret.as_ref().ok_or_else(|| {
                    ConfigError::new(
                        "SECRET_KEY",
                        format!("required with ALGORITHM={algorithm:?}"),
                    )
                })?;
                let key = EncodingKey::from_secret(secret.expose().as_bytes());
                let verifier = settings
                    .hmac_verifier()
                    .ok_or_else(|| ConfigError::new("ALGORITHM", "unsupported token algorithm"))?;
                (Header::new(algorithm), key, JwkSet::default(), verifier)
            }
        };
        Ok(Self {
            settings,
            header,
            key,
            jwks,
            verifier: Arc::new(verifier),
        })
    }

    /// Signs a token for `user`'s session `sid`, valid for the configured lifetime.
    pub fn issue(
        &self,
        user: &SessionData,
        sid: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let lifetime = i64::try_from(self.settings.lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: user.user_id.to_string(),
            sid: sid.to_owned(),
            username: user.username.clone(),
            role: user.role.as_str().to_owned(),
            iat: now,
            exp: now.saturating_add(lifetime),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key)
    }

    /// How long a token (and its session) lives.
    pub fn lifetime(&self) -> Duration {
        self.settings.lifetime
    }

    /// The public verification keys: the Ed25519 key, or none with HMAC.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// A verifier that accepts exactly the tokens this issuer signs.
    pub fn verifier(&self) -> Arc<TokenVerifier> {
        Arc::clone(&self.verifier)
    }
}
