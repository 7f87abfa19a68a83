//! The plain-HTTP fetcher: one GET, redirects followed only within the source host, the body
//! streamed and cut off at `SCRAPER_MAX_PAGE_BYTES`. It does not run JavaScript, so a
//! single-page app yields only its empty shell.

use std::error::Error as _;
use std::time::Duration;

use url::Url;

use super::{FetchError, FetchedPage, Fetcher, HostGate};
use crate::config::Config;

/// Most redirects followed for one page.
const MAX_REDIRECTS: usize = 5;

/// Fetches pages with reqwest.
pub struct HttpFetcher {
    client: reqwest::Client,
    gate: HostGate,
    max_bytes: usize,
    timeout: Duration,
}

impl HttpFetcher {
    /// Fails only when the TLS backend cannot initialise.
    pub fn new(config: &Config) -> Result<Self, String> {
        let gate = HostGate::new(&config.source_base_url, config.max_concurrent_per_host);
        let origin = HostGate::new(&config.source_base_url, 1);
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if origin.allows(attempt.url()) {
                attempt.follow()
            } else {
                let to = attempt.url().to_string();
                attempt.error(format!(
                    "redirect to {to} refused: not the configured source host"
                ))
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .redirect(policy)
            .connect_timeout(config.page_timeout.min(Duration::from_secs(10)))
            .timeout(config.page_timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            client,
            gate,
            max_bytes: config.max_page_bytes,
            timeout: config.page_timeout,
        })
    }

    fn classify(&self, e: reqwest::Error) -> FetchError {
        if e.is_redirect() || e.is_builder() {
            return FetchError::Permanent(describe(&e));
        }
        if e.is_timeout() {
            return FetchError::Transient(format!(
                "timed out after {} ms",
                self.timeout.as_millis()
            ));
        }
        FetchError::Transient(describe(&e))
    }
}

/// The error with its causes, which carry the useful part ("connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[async_trait::async_trait]
impl Fetcher for HttpFetcher {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn fetch(&self, url: &Url) -> Result<FetchedPage, FetchError> {
        let _permit = self.gate.enter(url).await?;
        let mut resp = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = resp.status().as_u16();
        let too_large =
            || FetchError::Permanent(format!("page larger than {} bytes", self.max_bytes));
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.classify(e))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchedPage {
            url: url.to_string(),
            status,
            html: String::from_utf8_lossy(&body).into_owned(),
            rendered: true,
        })
    }
}
