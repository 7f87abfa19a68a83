//! app-service configuration, read from the environment.

use std::time::Duration;

use common::auth::TokenSettings;
use common::config::{millis_or, var_or, ConfigError};
use common::server::HttpLimits;

/// Everything app-service needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `APP_SERVICE_ADDR` (default `0.0.0.0:8001`).
    pub listen: String,
    /// `USER_SERVICE_URL` (default `http://127.0.0.1:8002`).
    pub user_service_url: String,
    /// `SCRAPER_SERVICE_URL` (default `http://127.0.0.1:8003`).
    pub scraper_service_url: String,
    /// `JWKS_URL` (default `<USER_SERVICE_URL>/.well-known/jwks.json`), used with EdDSA.
    pub jwks_url: String,
    /// How often to re-fetch the JWKS (`JWKS_REFRESH_SECONDS`, 300).
    pub jwks_refresh: Duration,
    /// Connect timeout towards the services (`UPSTREAM_CONNECT_TIMEOUT_MS`, 1000).
    pub upstream_connect_timeout: Duration,
    /// Whole-call timeout towards the services (`UPSTREAM_TIMEOUT_MS`, 10000).
    pub upstream_timeout: Duration,
    pub tokens: TokenSettings,
    pub limits: HttpLimits,
}

impl Config {
    /// Reads the variables above, `HttpLimits` and the token settings.
    pub fn from_env() -> Result<Self, ConfigError> {
        let user_service_url = trim_slash(var_or("USER_SERVICE_URL", "http://127.0.0.1:8002"));
        let jwks_default = format!("{user_service_url}/.well-known/jwks.json");
        Ok(Self {
            listen: var_or("APP_SERVICE_ADDR", "0.0.0.0:8001"),
            scraper_service_url: trim_slash(var_or("SCRAPER_SERVICE_URL", "http://127.0.0.1:8003")),
            jwks_url: var_or("JWKS_URL", &jwks_default),
            user_service_url,
            jwks_refresh: common::config::secs_or("JWKS_REFRESH_SECONDS", 300)?,
            upstream_connect_timeout: millis_or("UPSTREAM_CONNECT_TIMEOUT_MS", 1000)?,
            upstream_timeout: millis_or("UPSTREAM_TIMEOUT_MS", 10_000)?,
            tokens: TokenSettings::from_env()?,
            limits: HttpLimits::from_env()?,
        })
    }
}

fn trim_slash(url: String) -> String {
    url.trim_end_matches('/').to_owned()
}

impl Config {
    /// A configuration for tests and embedding: an ephemeral port on 127.0.0.1, the given
    /// services and token settings, defaults otherwise.
    pub fn new(user_service_url: &str, scraper_service_url: &str, tokens: TokenSettings) -> Self {
        let user_service_url = trim_slash(user_service_url.to_owned());
        Self {
            listen: "127.0.0.1:0".into(),
            jwks_url: format!("{user_service_url}/.well-known/jwks.json"),
            user_service_url,
            scraper_service_url: trim_slash(scraper_service_url.to_owned()),
            jwks_refresh: Duration::from_secs(300),
            upstream_connect_timeout: Duration::from_secs(1),
            upstream_timeout: Duration::from_secs(10),
            tokens,
            limits: HttpLimits::default(),
        }
    }
}
