//! app-service configuration, read once from the environment at start-up.
//!
//! How circulation commands travel (`AMQP_URL`, `CIRCULATION_SECRET`, `CIRCULATION_TIMEOUT_MS`,
//! …) is the bus's own configuration, `circulation::BusConfig`: the bus is opened once per
//! process and handed to [`crate::startup::Application::build`], so that in the one-process
//! mode app-service and book-service share it.

use std::time::Duration;

use common::auth::TokenSettings;
use common::config::{millis_or, secs_or, var_or, ConfigError};
use service_kit::ServerConfig;

/// Everything app-service needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `APP_SERVICE_ADDR` (default `0.0.0.0:8001`), `MAX_BODY_BYTES`, `REQUEST_TIMEOUT_MS`,
    /// `SHUTDOWN_GRACE_MS`.
    pub server: ServerConfig,
    /// `USER_SERVICE_URL` (default `http://127.0.0.1:8002`), without a trailing slash.
    pub user_service_url: String,
    /// `SCRAPER_SERVICE_URL` (default `http://127.0.0.1:8003`), without a trailing slash.
    pub scraper_service_url: String,
    /// `BOOK_SERVICE_URL` (default `http://127.0.0.1:8004`), without a trailing slash: where
    /// `GET /loans/` and `GET /holds/` are read.
    pub book_service_url: String,
    /// Connect timeout towards the services (`UPSTREAM_CONNECT_TIMEOUT_MS`, 1000).
    pub upstream_connect_timeout: Duration,
    /// Whole-call timeout towards the services (`UPSTREAM_TIMEOUT_MS`, 10000); beyond it the
    /// client gets 504.
    pub upstream_timeout: Duration,
    /// `UPSTREAM_STREAM_IDLE_TIMEOUT_MS` (60000): `GET /notifications/stream` only, which has
    /// no whole-call limit: the longest silence accepted between two pieces of the event
    /// stream (user-service sends a keep-alive comment far more often), after which the
    /// stream is closed and the client reconnects.
    pub stream_idle_timeout: Duration,
    /// `ALGORITHM`, `SECRET_KEY`, `JWT_ISSUER`, … : how bearer tokens are verified.
    pub tokens: TokenSettings,
    /// `JWKS_URL` (default `<USER_SERVICE_URL>/.well-known/jwks.json`), used with EdDSA.
    pub jwks_url: String,
    /// How often the JWKS is fetched again (`JWKS_REFRESH_SECONDS`, 300).
    pub jwks_refresh: Duration,
}

impl Config {
    /// Reads the variables above; a bad value is an error naming its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let user_service_url = trim_slash(&var_or("USER_SERVICE_URL", "http://127.0.0.1:8002"));
        let jwks_default = jwks_url_of(&user_service_url);
        Ok(Self {
            server: ServerConfig::from_env("APP_SERVICE_ADDR", "0.0.0.0:8001")?,
            scraper_service_url: trim_slash(&var_or(
                "SCRAPER_SERVICE_URL",
                "http://127.0.0.1:8003",
            )),
            book_service_url: trim_slash(&var_or("BOOK_SERVICE_URL", "http://127.0.0.1:8004")),
            user_service_url,
            upstream_connect_timeout: millis_or("UPSTREAM_CONNECT_TIMEOUT_MS", 1000)?,
            upstream_timeout: millis_or("UPSTREAM_TIMEOUT_MS", 10_000)?,
            stream_idle_timeout: positive(
                millis_or("UPSTREAM_STREAM_IDLE_TIMEOUT_MS", 60_000)?,
                "UPSTREAM_STREAM_IDLE_TIMEOUT_MS",
            )?,
            tokens: TokenSettings::from_env()?,
            jwks_url: var_or("JWKS_URL", &jwks_default),
            jwks_refresh: secs_or("JWKS_REFRESH_SECONDS", 300)?,
        })
    }

    /// A configuration for tests and embedding, without the environment: an ephemeral port on
    /// 127.0.0.1, the given services and token settings, book-service at its default address
    /// (set `book_service_url` to move it), defaults otherwise.
    pub fn new(user_service_url: &str, scraper_service_url: &str, tokens: TokenSettings) -> Self {
        let user_service_url = trim_slash(user_service_url);
        Self {
            server: ServerConfig::ephemeral("APP_SERVICE_ADDR"),
            jwks_url: jwks_url_of(&user_service_url),
            user_service_url,
            scraper_service_url: trim_slash(scraper_service_url),
            book_service_url: "http://127.0.0.1:8004".to_owned(),
            upstream_connect_timeout: Duration::from_secs(1),
            upstream_timeout: Duration::from_secs(10),
            stream_idle_timeout: Duration::from_secs(60),
            tokens,
            jwks_refresh: Duration::from_secs(300),
        }
    }
}

/// `value`, unless it is zero (which would close every stream at once).
fn positive(value: Duration, var: &str) -> Result<Duration, ConfigError> {
    if value.is_zero() {
        Err(ConfigError::new(var, "must be at least 1"))
    } else {
        Ok(value)
    }
}

/// Where user-service publishes its public keys.
fn jwks_url_of(user_service_url: &str) -> String {
    format!("{user_service_url}/.well-known/jwks.json")
}

/// Paths are appended to the base URL, so it must not end with a slash.
fn trim_slash(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}
