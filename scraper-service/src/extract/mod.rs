//! Extract: downloading a company page from the source site.
//!
//! Two [`Fetcher`]s: [`browser::BrowserFetcher`] drives headless Chromium over WebDriver and so
//! sees what the page's JavaScript renders; [`http::HttpFetcher`] makes a plain GET and sees
//! only the HTML the server sends. Both fetch only from the configured host, at most
//! `SCRAPER_MAX_CONCURRENT_PER_HOST` pages at a time ([`HostGate`]).

pub mod browser;
pub mod http;

use std::sync::Arc;

use tokio::sync::{Semaphore, SemaphorePermit};
use url::Url;

use common::config::ConfigError;

use crate::config::{Config, FetcherChoice};

/// A page as fetched: the body exactly as received (or the DOM as rendered) and its status.
#[derive(Debug, Clone)]
pub struct FetchedPage {
    /// The address asked for.
    pub url: String,
    /// The HTTP status of the (final) response; 200 when the browser could not tell.
    pub status: u16,
    pub html: String,
    /// False when the browser gave up waiting for the page to render (the body is what it
    /// had by then); always true for plain HTTP, which cannot tell.
    pub rendered: bool,
}

/// Why a page could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Worth retrying: connection refused or reset, timeout, browser crash.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: another host, a page too large, a bad configuration.
    #[error("{0}")]
    Permanent(String),
}

/// Downloads pages of the source site.
#[async_trait::async_trait]
pub trait Fetcher: Send + Sync {
    /// `"browser"` or `"http"`.
    fn name(&self) -> &'static str;

    /// Fetches `url`, which must be on the configured host.
    async fn fetch(&self, url: &Url) -> Result<FetchedPage, FetchError>;

    /// Releases what the fetcher holds (browser sessions, the chromedriver process).
    async fn shutdown(&self) {}
}

/// Lets through only URLs of the configured host, and at most N fetches at once.
#[derive(Debug)]
pub struct HostGate {
    scheme: String,
    host: String,
    port: Option<u16>,
    permits: Semaphore,
}

impl HostGate {
    pub fn new(base: &Url, max_concurrent: usize) -> Self {
        Self {
            scheme: base.scheme().to_owned(),
            host: base.host_str().unwrap_or_default().to_ascii_lowercase(),
            port: base.port_or_known_default(),
            permits: Semaphore::new(max_concurrent.max(1)),
        }
    }

    /// Whether `url` is on the configured scheme, host and port.
    pub fn allows(&self, url: &Url) -> bool {
        url.scheme() == self.scheme
            && url
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
            && url.port_or_known_default() == self.port
    }

    /// The host, for browser host-resolver rules.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Checks `url` and waits for a free slot.
    pub async fn enter(&self, url: &Url) -> Result<SemaphorePermit<'_>, FetchError> {
        if !self.allows(url) {
            return Err(FetchError::Permanent(format!(
                "refusing to fetch {url}: not the configured source host"
            )));
        }
        self.permits
            .acquire()
            .await
            .map_err(|_| FetchError::Transient("fetcher is shutting down".into()))
    }
}

/// Builds the fetcher the configuration asks for, logging once which one runs and why.
pub fn from_config(config: &Config) -> Result<Arc<dyn Fetcher>, ConfigError> {
    let (choice, why) = config.resolve_fetcher();
    match choice {
        FetcherChoice::Browser => {
            tracing::info!(fetcher = "browser", reason = %why, "pages are fetched with headless Chromium");
            Ok(Arc::new(browser::BrowserFetcher::new(config)))
        }
        _ => {
            if config.fetcher == FetcherChoice::Auto {
                // A fallback, not a choice: say so loudly enough to be seen at start-up.
                tracing::warn!(fetcher = "http", reason = %why, "no browser: pages are fetched with plain HTTP");
            } else {
                tracing::info!(fetcher = "http", reason = %why, "pages are fetched with plain HTTP");
            }
            let fetcher = http::HttpFetcher::new(config)
                .map_err(|e| ConfigError::new("SCRAPER_FETCHER", e))?;
            Ok(Arc::new(fetcher))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_allows_only_the_configured_origin() {
        let gate = HostGate::new(&Url::parse("https://openmoney.md").unwrap(), 2);
        assert!(gate.allows(&Url::parse("https://openmoney.md/companies/1").unwrap()));
        assert!(gate.allows(&Url::parse("https://OPENMONEY.md:443/x").unwrap()));
        assert!(!gate.allows(&Url::parse("http://openmoney.md/x").unwrap()));
        assert!(!gate.allows(&Url::parse("https://openmoney.md.evil.com/x").unwrap()));
        assert!(!gate.allows(&Url::parse("https://openmoney.md:8443/x").unwrap()));
        assert!(!gate.allows(&Url::parse("https://api.openmoney.md/x").unwrap()));
    }
}
