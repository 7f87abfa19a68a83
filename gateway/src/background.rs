//! Background work of the gateway beside the requests: the issuer's public keys (EdDSA),
//! fetched until they answer and refreshed periodically, and the feed of ended sessions that
//! keeps the session cache honest. Both run as Pingora background services.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::auth::TokenSettings;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::auth::TokenCheck;

/// Fetches the issuer's JWKS (EdDSA) until it answers, then refreshes it periodically.
/// Until the first answer protected routes answer 503; a failed refresh keeps the old keys.
pub struct JwksRefresh {
    pub url: String,
    pub every: Duration,
    pub settings: TokenSettings,
    pub tokens: Arc<TokenCheck>,
}

#[async_trait]
impl BackgroundService for JwksRefresh {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let http = match reqwest::Client::builder().build() {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "cannot build an HTTP client; JWKS never loaded");
                return;
            }
        };
        let mut backoff = Duration::from_millis(200);
        let mut warned = false;
        loop {
            let wait = match common::jwks::fetch(&http, &self.url).await {
                Ok(set) => {
                    let installed = match self.tokens.verifier() {
                        Some(verifier) => verifier.replace_jwks(&set),
                        None => self.settings.jwks_verifier(set).map(|v| {
                            self.tokens.install(Arc::new(v));
                            tracing::info!(url = %self.url, "JWKS loaded; protected routes open");
                        }),
                    };
                    if let Err(e) = installed {
                        tracing::warn!(url = %self.url, error = %e, "ignoring an unusable JWKS");
                    }
                    backoff = Duration::from_millis(200);
                    warned = false;
                    self.every
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, "JWKS not available; retrying");
                        warned = true;
                    }
                    if self.tokens.verifier().is_some() {
                        self.every.min(Duration::from_secs(30))
                    } else {
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        backoff
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Keeps the session cache honest: subscribes to the ids of ended sessions and evicts each.
/// The cache serves only while subscribed; when the subscription is lost every request asks
/// the store until it is back.
pub struct SessionFeed {
    pub tokens: Arc<TokenCheck>,
}

/// How long to wait before subscribing again.
const FEED_RETRY: Duration = Duration::from_secs(1);

#[async_trait]
impl BackgroundService for SessionFeed {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let cache = self.tokens.cache();
        let mut quiet = false;
        loop {
            match self.tokens.sessions().ended().await {
                // An in-process store announces nothing, and needs no cache in front of it.
                Ok(None) => return,
                Ok(Some(mut feed)) => {
                    cache.start_listening();
                    tracing::info!("subscribed to ended sessions; session cache on");
                    loop {
                        tokio::select! {
                            ended = feed.next() => match ended {
                                Some(sid) => self.tokens.session_ended(&sid),
                                None => break,
                            },
                            _ = shutdown.changed() => {
                                cache.stop_listening();
                                return;
                            }
                        }
                    }
                    cache.stop_listening();
                    tracing::warn!(
                        "lost the ended-sessions feed; session cache off until it is back"
                    );
                    quiet = true;
                }
                Err(e) => {
                    if !quiet {
                        tracing::warn!(error = %e, "cannot subscribe to ended sessions; session cache off");
                        quiet = true;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(FEED_RETRY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
