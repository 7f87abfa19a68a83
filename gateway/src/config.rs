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
    /// `BOOK_SERVICE_URLS` (comma list, default `http://127.0.0.1:8004`): the primary
    /// book-service instances, which serve `/books/*` while any of them is healthy.
    pub book_service: Vec<String>,
    /// `BOOK_SERVICE_BACKUP_URLS` (comma list, default none): book-service instances that
    /// serve `/books/*` only while no primary instance is healthy.
    pub book_service_backup: Vec<String>,
    /// `BORROWINGS_URL` (default `http://127.0.0.1:8005`): the get-user-borrowings function,
    /// which serves `/user/borrowings/`.
    pub borrowings: Vec<String>,
    /// Token settings shared with every service (`ALGORITHM`, `SECRET_KEY`, `JWT_ISSUER`, ...).
    pub tokens: TokenSettings,
    /// `JWKS_URL` (default `<USER_SERVICE_URL>/.well-known/jwks.json`); used with EdDSA only.
    pub jwks_url: String,
    /// `JWKS_REFRESH_SECONDS` (300): how often the JWKS is fetched again.
    pub jwks_refresh: Duration,
    /// `HEALTH_CHECK_INTERVAL_MS` (1000): how often every instance is probed.
    pub health_check_interval: Duration,
    /// `GATEWAY_MAX_BODY_BYTES` (1 MiB): larger request bodies get 413.
    pub max_body_bytes: u64,
    /// `UPSTREAM_CONNECT_TIMEOUT_MS` (1000).
    pub connect_timeout: Duration,
    /// `UPSTREAM_READ_TIMEOUT_MS` (30000): longest wait for the upstream's next bytes (a
    /// server-sent event stream must send something, a keep-alive comment, more often).
    pub read_timeout: Duration,
    /// `UPSTREAM_WRITE_TIMEOUT_MS` (30000): longest wait to send the upstream more bytes.
    pub write_timeout: Duration,
    /// `GATEWAY_CLIENT_TIMEOUT_MS` (30000): longest wait for a client's next body bytes (or
    /// for a client to take ours), so slow clients cannot hold connections for ever.
    pub client_timeout: Duration,
    /// `GATEWAY_HEADER_TIMEOUT_MS` (10000): the whole request head (request line and headers)
    /// must arrive within this time of its first byte (of the connection, for the first
    /// request), however steadily it trickles in; then 408.
    pub header_timeout: Duration,
    /// `GATEWAY_MAX_HEADER_BYTES` (32768): the largest request head; larger gets 431.
    pub max_header_bytes: usize,
    /// `GATEWAY_MAX_HEADERS` (100): the most header lines in a request; more gets 431.
    pub max_headers: usize,
    /// `GATEWAY_MAX_CONNECTIONS_PER_IP` (256; 0 = no limit): open connections one client
    /// address may hold; connections beyond it are answered 429 and closed at once.
    pub max_connections_per_ip: usize,
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

/// Pingora's own limits on a request head: beyond them it answers an empty 400 before ours
/// (JSON 431) could, so ours may not be set higher.
const PINGORA_MAX_HEADER_BYTES: usize = 1024 * 1024 - 1;
const PINGORA_MAX_HEADERS: usize = 256;

const DEFAULT_UPSTREAM: &str = "http://127.0.0.1:8001";
const DEFAULT_BOOK_SERVICE: &str = "http://127.0.0.1:8004";
const DEFAULT_BORROWINGS: &str = "http://127.0.0.1:8005";

impl Config {
    /// Reads the variables above and the token settings; `SECRET_KEY` is required with HMAC.
    pub fn from_env() -> Result<Self, ConfigError> {
        let upstreams = match var("APP_SERVICE_URLS") {
            Some(list) => url_list("APP_SERVICE_URLS", &list)?,
            None => url_list(
                "APP_SERVICE_URL",
                &var_or("APP_SERVICE_URL", DEFAULT_UPSTREAM),
            )?,
        };
        let book_service = url_list(
            "BOOK_SERVICE_URLS",
            &var_or("BOOK_SERVICE_URLS", DEFAULT_BOOK_SERVICE),
        )?;
        let book_service_backup = match var("BOOK_SERVICE_BACKUP_URLS") {
            Some(list) => url_list("BOOK_SERVICE_BACKUP_URLS", &list)?,
            None => Vec::new(),
        };
        let borrowings = url_list(
            "BORROWINGS_URL",
            &var_or("BORROWINGS_URL", DEFAULT_BORROWINGS),
        )?;
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
        Ok(Self {
            listen: var_or("GATEWAY_ADDR", "0.0.0.0:8000"),
            upstreams,
            book_service,
            book_service_backup,
            borrowings,
            tokens: TokenSettings::from_env()?,
            jwks_url: var_or("JWKS_URL", &jwks_default),
            jwks_refresh: positive(
                secs_or("JWKS_REFRESH_SECONDS", 300)?,
                "JWKS_REFRESH_SECONDS",
            )?,
            health_check_interval: positive(
                millis_or("HEALTH_CHECK_INTERVAL_MS", 1000)?,
                "HEALTH_CHECK_INTERVAL_MS",
            )?,
            max_body_bytes: parse_or("GATEWAY_MAX_BODY_BYTES", 1024 * 1024)?,
            connect_timeout: millis_or("UPSTREAM_CONNECT_TIMEOUT_MS", 1000)?,
            read_timeout: millis_or("UPSTREAM_READ_TIMEOUT_MS", 30_000)?,
            write_timeout: millis_or("UPSTREAM_WRITE_TIMEOUT_MS", 30_000)?,
            client_timeout: millis_or("GATEWAY_CLIENT_TIMEOUT_MS", 30_000)?,
            header_timeout: positive(
                millis_or("GATEWAY_HEADER_TIMEOUT_MS", 10_000)?,
                "GATEWAY_HEADER_TIMEOUT_MS",
            )?,
            max_header_bytes: within(
                parse_or("GATEWAY_MAX_HEADER_BYTES", 32 * 1024)?,
                PINGORA_MAX_HEADER_BYTES,
                "GATEWAY_MAX_HEADER_BYTES",
            )?,
            max_headers: within(
                parse_or("GATEWAY_MAX_HEADERS", 100)?,
                PINGORA_MAX_HEADERS,
                "GATEWAY_MAX_HEADERS",
            )?,
            max_connections_per_ip: parse_or("GATEWAY_MAX_CONNECTIONS_PER_IP", 256)?,
            metrics_listen,
            threads: at_least_one(parse_or("GATEWAY_THREADS", cpus)?, "GATEWAY_THREADS")?,
            session_cache_ttl: millis_or("SESSION_CACHE_TTL_MS", 2000)?,
            session_cache_max_entries: parse_or("SESSION_CACHE_MAX_ENTRIES", 100_000)?,
            grace: secs_or("GATEWAY_GRACE_SECONDS", 10)?,
        })
    }

    /// A configuration for tests and embedding: the given app-service instances and token
    /// settings, an ephemeral port on 127.0.0.1, no metrics listener, and the defaults above
    /// otherwise.
    pub fn for_upstreams(upstreams: Vec<String>, tokens: TokenSettings) -> Self {
        Self {
            listen: "127.0.0.1:0".to_owned(),
            upstreams,
            book_service: vec![DEFAULT_BOOK_SERVICE.to_owned()],
            book_service_backup: Vec::new(),
            borrowings: vec![DEFAULT_BORROWINGS.to_owned()],
            tokens,
            jwks_url: "http://127.0.0.1:8002/.well-known/jwks.json".to_owned(),
            jwks_refresh: Duration::from_secs(300),
            health_check_interval: Duration::from_millis(1000),
            max_body_bytes: 1024 * 1024,
            connect_timeout: Duration::from_millis(1000),
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            client_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_connections_per_ip: 256,
            metrics_listen: None,
            threads: 2,
            session_cache_ttl: Duration::from_secs(2),
            session_cache_max_entries: 100_000,
            grace: Duration::from_secs(10),
        }
    }
}

/// A comma-separated list of upstream URLs, each checked with [`upstream_authority`].
fn url_list(var: &'static str, raw: &str) -> Result<Vec<String>, ConfigError> {
    let urls: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        return Err(ConfigError::new(var, "names no upstream"));
    }
    for url in &urls {
        upstream_authority(url).map_err(|e| ConfigError::new(var, e))?;
    }
    Ok(urls)
}

fn positive(d: Duration, var: &'static str) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::new(var, "must be at least 1"));
    }
    Ok(d)
}

fn within(n: usize, max: usize, var: &'static str) -> Result<usize, ConfigError> {
    if n == 0 || n > max {
        return Err(ConfigError::new(var, format!("must be from 1 to {max}")));
    }
    Ok(n)
}

fn at_least_one(n: usize, var: &'static str) -> Result<usize, ConfigError> {
    if n == 0 {
        return Err(ConfigError::new(var, "must be at least 1"));
    }
    Ok(n)
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

    #[test]
    fn url_lists_name_the_variable_at_fault() {
        assert_eq!(
            url_list("V", " http://a:1 , http://b:2,").unwrap(),
            ["http://a:1", "http://b:2"]
        );
        let empty = url_list("BOOK_SERVICE_URLS", " , ").unwrap_err();
        assert!(empty.to_string().contains("BOOK_SERVICE_URLS"), "{empty}");
        let bad = url_list("BORROWINGS_URL", "https://f:1").unwrap_err();
        assert!(bad.to_string().contains("BORROWINGS_URL"), "{bad}");
    }
}
