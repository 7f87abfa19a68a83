//! Getting the issuer's public keys (JWKS) for EdDSA verification, and keeping them fresh.
//!
//! Verifiers never hold a key that can mint tokens: with `ALGORITHM=EdDSA` they fetch
//! user-service's `/.well-known/jwks.json` at start-up and again every refresh interval, so a
//! newly published key (rotation) is picked up without a restart.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;

use crate::auth::{TokenSettings, TokenVerifier};
use crate::config::ConfigError;

/// Fetches and parses a JWKS document.
pub async fn fetch(http: &reqwest::Client, url: &str) -> Result<JwkSet, String> {
    let resp = http
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url} answered {}", resp.status()));
    }
    resp.json::<JwkSet>()
        .await
        .map_err(|e| format!("{url} is not a JWKS: {e}"))
}

/// The verifier the settings call for: built directly from the secret (HS*), or from the
/// JWKS at `jwks_url` (EdDSA), retried until it answers or `wait` runs out.
pub async fn verifier(
    settings: &TokenSettings,
    jwks_url: &str,
    wait: Duration,
) -> Result<Arc<TokenVerifier>, ConfigError> {
    if let Some(v) = settings.hmac_verifier() {
        return Ok(Arc::new(v));
    }
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = Duration::from_millis(100);
    loop {
        match fetch(&http, jwks_url).await {
            Ok(set) => {
                return settings
                    .jwks_verifier(set)
                    .map(Arc::new)
                    .map_err(|e| ConfigError::new("JWKS_URL", e));
            }
            Err(e) if tokio::time::Instant::now() + delay >= deadline => {
                return Err(ConfigError::new("JWKS_URL", e));
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS not available yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Re-fetches the JWKS every `every` and swaps the keys in; failures keep the old keys.
pub fn spawn_refresh(verifier: Arc<TokenVerifier>, jwks_url: String, every: Duration) {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            tokio::time::sleep(every).await;
            match fetch(&http, &jwks_url).await {
                Ok(set) => {
                    if let Err(e) = verifier.replace_jwks(&set) {
                        tracing::warn!(error = %e, "ignoring unusable JWKS");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the current keys")
                }
            }
        }
    });
}
