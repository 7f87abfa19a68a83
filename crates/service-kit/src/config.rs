//! What every service's configuration has: where it listens, the limits of one request, and
//! how long a stop may drain. Each service embeds a [`ServerConfig`] as its `server` field.

use std::time::Duration;

use common::config::{millis_or, parse_or, var_or, ConfigError};

/// Limits of one request.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// `MAX_BODY_BYTES` (64 KiB): larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `REQUEST_TIMEOUT_MS` (15000): the longest a request may take inside the service;
    /// longer gets 503.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// Listening, limits and draining.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `<SERVICE>_ADDR`: `host:port` to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// The variable `listen` came from, named when binding fails.
    pub listen_var: &'static str,
    pub limits: HttpLimits,
    /// `SHUTDOWN_GRACE_MS` (10000): after a stop signal, the longest in-flight requests (and
    /// background work such as scrape jobs) may run on.
    pub drain: Duration,
}

impl ServerConfig {
    /// Reads `listen_var` (default `default_listen`), `MAX_BODY_BYTES`, `REQUEST_TIMEOUT_MS`
    /// and `SHUTDOWN_GRACE_MS`.
    pub fn from_env(listen_var: &'static str, default_listen: &str) -> Result<Self, ConfigError> {
        let defaults = HttpLimits::default();
        Ok(Self {
            listen: var_or(listen_var, default_listen),
            listen_var,
            limits: HttpLimits {
                max_body_bytes: parse_or("MAX_BODY_BYTES", defaults.max_body_bytes)?,
                request_timeout: millis_or(
                    "REQUEST_TIMEOUT_MS",
                    defaults.request_timeout.as_millis() as u64,
                )?,
            },
            drain: millis_or("SHUTDOWN_GRACE_MS", 10_000)?,
        })
    }

    /// Tests and embedding: an ephemeral port on 127.0.0.1, default limits, a 5 s drain.
    pub fn ephemeral(listen_var: &'static str) -> Self {
        Self {
            listen: "127.0.0.1:0".to_owned(),
            listen_var,
            limits: HttpLimits::default(),
            drain: Duration::from_secs(5),
        }
    }
}
