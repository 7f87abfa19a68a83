//! The function's settings, read once from the environment at start-up (a cold start on AWS).

use std::time::Duration;

use common::auth::TokenSettings;
use common::config::{millis_or, parse_or, secs_or, var_or, ConfigError};

/// Everything the function needs, on AWS and behind the local adapter alike.
#[derive(Clone, Debug)]
pub struct Config {
    /// The local HTTP adapter (unused on AWS).
    pub server: AdapterConfig,
    /// `ALGORITHM`, `SECRET_KEY`, `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_LEEWAY_SECONDS`: how
    /// bearer tokens are verified (the same settings as every service).
    pub tokens: TokenSettings,
    /// `JWKS_URL` (default `<USER_SERVICE_URL>/.well-known/jwks.json`), used with EdDSA.
    pub jwks_url: String,
    /// `JWKS_REFRESH_SECONDS` (300).
    pub jwks_refresh: Duration,
    /// Where and how book-service's API is read.
    pub books: BooksConfig,
}

/// The local HTTP adapter's listener and drain.
#[derive(Clone, Debug)]
pub struct AdapterConfig {
    /// `BORROWINGS_FUNCTION_ADDR` (default `0.0.0.0:8005`; `127.0.0.1:0` picks a free port).
    pub listen: String,
    /// `SHUTDOWN_GRACE_MS` (10000): how long in-flight requests may finish after a stop.
    pub drain: Duration,
}

/// The read path: book-service's API.
#[derive(Clone, Debug)]
pub struct BooksConfig {
    /// `BOOK_SERVICE_URL` (default `http://127.0.0.1:8004`): book-service's base URL.
    pub url: String,
    /// `BOOK_SERVICE_TIMEOUT_MS` (2000): the longest one call to book-service may take,
    /// connecting included; past it the function answers 503.
    pub timeout: Duration,
    /// `MAX_ACTIVE_LOANS` (5, the same variable and default as book-service): how many
    /// `GET /books/{id}` lookups run at once. A reader holds at most that many loans, so
    /// their titles are all looked up in one round.
    pub lookups: usize,
}

impl Config {
    /// Reads the variables above; a bad value is an error naming its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let user_service_url = var_or("USER_SERVICE_URL", "http://127.0.0.1:8002");
        let jwks_default = format!(
            "{}/.well-known/jwks.json",
            user_service_url.trim_end_matches('/')
        );
        let config = Self {
            server: AdapterConfig {
                listen: var_or("BORROWINGS_FUNCTION_ADDR", "0.0.0.0:8005"),
                drain: millis_or("SHUTDOWN_GRACE_MS", 10_000)?,
            },
            tokens: TokenSettings::from_env()?,
            jwks_url: var_or("JWKS_URL", &jwks_default),
            jwks_refresh: secs_or("JWKS_REFRESH_SECONDS", 300)?,
            books: BooksConfig {
                url: var_or("BOOK_SERVICE_URL", "http://127.0.0.1:8004"),
                timeout: millis_or("BOOK_SERVICE_TIMEOUT_MS", 2000)?,
                lookups: parse_or("MAX_ACTIVE_LOANS", 5)?,
            },
        };
        config.check()?;
        Ok(config)
    }

    /// A configuration for tests and embedding, without the environment: the adapter on an
    /// ephemeral port of 127.0.0.1, book-service at `book_service_url`, HS256 tokens with
    /// `secret` (issuer `user-service`, audience `platform`).
    pub fn for_tests(book_service_url: &str, secret: &str) -> Self {
        Self {
            server: AdapterConfig {
                listen: "127.0.0.1:0".to_owned(),
                drain: Duration::from_secs(5),
            },
            tokens: TokenSettings {
                algorithm: common::auth::hmac_algorithm("HS256").expect("an HMAC algorithm"),
                secret: Some(common::config::Secret::new(secret)),
                previous_secret: None,
                issuer: "user-service".to_owned(),
                audience: "platform".to_owned(),
                lifetime: Duration::from_secs(30 * 60),
                leeway: Duration::from_secs(5),
            },
            jwks_url: "http://127.0.0.1:8002/.well-known/jwks.json".to_owned(),
            jwks_refresh: Duration::from_secs(300),
            books: BooksConfig {
                url: book_service_url.to_owned(),
                timeout: Duration::from_secs(2),
                lookups: 5,
            },
        }
    }

    /// Every value within its bounds.
    pub fn check(&self) -> Result<(), ConfigError> {
        if url::Url::parse(&self.books.url)
            .map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
        {
            return Err(ConfigError::new(
                "BOOK_SERVICE_URL",
                format!("{:?} is not an http(s) URL", self.books.url),
            ));
        }
        if self.books.timeout.is_zero() {
            return Err(ConfigError::new(
                "BOOK_SERVICE_TIMEOUT_MS",
                "must be at least 1",
            ));
        }
        if self.books.lookups == 0 {
            return Err(ConfigError::new("MAX_ACTIVE_LOANS", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_refused_by_name() {
        let mut config = Config::for_tests("http://127.0.0.1:8004", "s");
        assert!(config.check().is_ok());
        config.books.lookups = 0;
        assert_eq!(config.check().unwrap_err().var, "MAX_ACTIVE_LOANS");
        config.books.lookups = 5;
        config.books.url = "book-service:8004".into();
        assert_eq!(config.check().unwrap_err().var, "BOOK_SERVICE_URL");
        config.books.url = "https://books.internal".into();
        config.books.timeout = Duration::ZERO;
        assert_eq!(config.check().unwrap_err().var, "BOOK_SERVICE_TIMEOUT_MS");
    }
}
