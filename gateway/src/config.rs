//! Gateway configuration, read from the environment (never from a Pingora YAML file).

use std::time::Duration;

use common::auth::TokenSettings;
use common::config::{millis_or, parse_or, secs_or, var, var_or, ConfigError};

/// Everything the gateway needs to start. Every field is public so that tests and the
/// one-process binary can build one without touching the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `GATEWAY_ADDR` (default `0.0.0.0:8000`). `127.0.0.1:0` picks a free port.
    pub listen: String,
    /// `APP_SERVICE_URLS` (comma list) or `APP_SERVICE_URL`, default `http://127.0.0.1:8001`.
    /// Each is `http://host:port`; a host name is resolved again every few seconds, and every
    /// address it resolves to becomes an instance.
    pub upstreams: Vec<String>,
    /// Token settings shared with every service (`ALGORITHM`, `SECRET_KEY`, `JWT_ISSUER`, ...).
    pub tokens: TokenSettings,
    /// `JWKS_URL` (default `<USER_SERVICE_URL>/.well-known/jwks.json`); used with EdDSA only.
    pub jwks_url: String,
    /// `JWKS_REFRESH_SECONDS` (300): how often the JWKS is fetched again.
    pub jwks_refresh: Duration,
    /// `HEALTH_CHECK_INTERVAL_MS` (1000): how often every instance's `/healthz` is probed.
    pub health_check_interval: Duration,
    /// `GATEWAY_MAX_BODY_BYTES` (1 MiB): larger request bodies get 413.
    pub max_body_bytes: u64,
    /// `UPSTREAM_CONNECT_TIMEOUT_MS` (1000).
    pub connect_timeout: Duration,
    /// `UPSTREAM_READ_TIMEOUT_MS` (30000): longest wait for the upstream's next bytes.
    pub read_timeout: Duration,
    /// `UPSTREAM_WRITE_TIMEOUT_MS` (30000): longest wait to send the upstream more bytes.
    pub write_timeout: Duration,
    /// `GATEWAY_CLIENT_TIMEOUT_MS` (30000): longest wait for a client's next bytes (or for a
    /// client to take ours), so slow clients cannot hold connections for ever.
    pub client_timeout: Duration,
    /// `GATEWAY_METRICS_ADDR` (default `127.0.0.1:9000`; `off` disables): Prometheus text at
    /// `/metrics`.
    pub metrics_listen: Option<String>,
    /// `GATEWAY_THREADS` (default: the number of CPUs): worker threads of the proxy.
    pub threads: usize,
    /// `SESSION_CACHE_TTL_MS` (2000; 0 disables): how long a session found live is
    /// remembered (ended sessions are evicted at once; see [`crate::session_cache`]).
    pub session_cache_ttl: Duration,
    /// `SESSION_CACHE_MAX_ENTRIES` (100000): the most sessions remembered.
    pub session_cache_max_entries: usize,
    /// `GATEWAY_GRACE_SECONDS` (10): on shutdown, the longest wait for in-flight requests.
    pub grace: Duration,
}

const DEFAULT_UPSTREAM: &str = "http://127.0.0.1:8001";

impl Config {
    /// Reads the variables above and the token settings; `SECRET_KEY` is required with HMAC.
    pub fn from_env() -> Result<Self, ConfigError> {
        let (var_name, raw) = match var("APP_SERVICE_URLS") {
            Some(list) => ("APP_SERVICE_URLS", list),
            None => (
                "APP_SERVICE_URL",
                var_or("APP_SERVICE_URL", DEFAULT_UPSTREAM),
            ),
        };
        let upstreams: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if upstreams.is_empty() {
            return Err(ConfigError::new(var_name, "names no upstream"));
        }
        for url in &upstreams {
            upstream_authority(url).map_err(|e| ConfigError::new(var_name, e))?;
        }
        let user_service = var_or("USER_SERVICE_URL", "http://127.0.0.1:8002");
        let jwks_default = format!(
            "{}/.well-known/jwks.json",
            user_service.trim_end_matches('/')
        );
        let metrics_listen = match var("GATEWAY_METRICS_ADDR") {
            Some(v) if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("none") => None,
            Some(v) => Some(v),
            None => Some("127.0.0.1:9000".to_owned()),
        };
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let threads: usize = parse_or("GATEWAY_THREADS", cpus)?;
        if threads == 0 {
            return Err(ConfigError::new("GATEWAY_THREADS", "must be at least 1"));
        }
        let max_body_bytes: u64 = parse_or("GATEWAY_MAX_BODY_BYTES", 1024 * 1024)?;
        let health_check_interval = millis_or("HEALTH_CHECK_INTERVAL_MS", 1000)?;
        if health_check_interval.is_zero() {
            return Err(ConfigError::new(
                "HEALTH_CHECK_INTERVAL_MS",
                "must be at least 1",
            ));
        }
        let jwks_refresh = secs_or("JWKS_REFRESH_SECONDS", 300)?;
        if jwks_refresh.is_zero() {
            return Err(ConfigError::new(
                "JWKS_REFRESH_SECONDS",
                "must be at least 1",
            ));
        }
        Ok(Self {
            listen: var_or("GATEWAY_ADDR", "0.0.0.0:8000"),
            upstreams,
            tokens: TokenSettings::from_env()?,
            jwks_url: var_or("JWKS_URL", &jwks_default),
            jwks_refresh,
            health_check_interval,
            max_body_bytes,
            connect_timeout: millis_or("UPSTREAM_CONNECT_TIMEOUT_MS", 1000)?,
            read_timeout: millis_or("UPSTREAM_READ_TIMEOUT_MS", 30_000)?,
            write_timeout: millis_or("UPSTREAM_WRITE_TIMEOUT_MS", 30_000)?,
            client_timeout: millis_or("GATEWAY_CLIENT_TIMEOUT_MS", 30_000)?,
            metrics_listen,
            threads,
            session_cache_ttl: millis_or("SESSION_CACHE_TTL_MS", 2000)?,
            session_cache_max_entries: parse_or("SESSION_CACHE_MAX_ENTRIES", 100_000)?,
            grace: secs_or("GATEWAY_GRACE_SECONDS", 10)?,
        })
    }

    /// A configuration for tests and embedding: the given upstreams and token settings, an
    /// ephemeral port on 127.0.0.1, no metrics listener, and the defaults above otherwise.
    pub fn for_upstreams(upstreams: Vec<String>, tokens: TokenSettings) -> Self {
        Self {
            listen: "127.0.0.1:0".to_owned(),
            upstreams,
            tokens,
            jwks_url: "http://127.0.0.1:8002/.well-known/jwks.json".to_owned(),
            jwks_refresh: Duration::from_secs(300),
            health_check_interval: Duration::from_millis(1000),
            max_body_bytes: 1024 * 1024,
            connect_timeout: Duration::from_millis(1000),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            client_timeout: Duration::from_secs(30),
            metrics_listen: None,
            threads: 2,
            session_cache_ttl: Duration::from_secs(2),
            session_cache_max_entries: 100_000,
            grace: Duration::from_secs(10),
        }
    }
}

/// The `host:port` of an upstream URL such as `http://app-service:8001` (a bare `host:port`
/// is accepted too). Only plain HTTP is supported: the gateway is built without TLS.
pub fn upstream_authority(url: &str) -> Result<String, String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{url:?}: only http:// upstreams are supported, not {scheme}://"
            ))
        }
        None => url,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?} is not of the form http://host:port"));
    }
    // A port is required unless the host is a bracketed IPv6 literal followed by one.
    let has_port = match authority.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && !port.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    };
    if has_port {
        Ok(authority.to_owned())
    } else if !authority.contains(':') || authority.ends_with(']') {
        Ok(format!("{authority}:80"))
    } else {
        Err(format!("{url:?} has an invalid port"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_urls() {
        assert_eq!(
            upstream_authority("http://app-service:8001").unwrap(),
            "app-service:8001"
        );
        assert_eq!(
            upstream_authority("http://127.0.0.1:8001/").unwrap(),
            "127.0.0.1:8001"
        );
        assert_eq!(
            upstream_authority("127.0.0.1:8001").unwrap(),
            "127.0.0.1:8001"
        );
        assert_eq!(upstream_authority("http://app").unwrap(), "app:80");
        assert_eq!(
            upstream_authority("http://[::1]:8001").unwrap(),
            "[::1]:8001"
        );
        assert!(upstream_authority("https://app:8001").is_err());
        assert!(upstream_authority("http://app:port").is_err());
        assert!(upstream_authority("http://").is_err());
        assert!(upstream_authority("http://user:pw@app:1").is_err());
    }
}
