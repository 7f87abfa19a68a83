//! scraper-service configuration, read once at start-up from the environment.

use std::path::Path;
use std::time::Duration;

use api::scrape::Idno;
use common::auth::TokenSettings;
use common::config::{millis_or, parse_or, secs_or, var, var_or, ConfigError};
use service_kit::db::DbConfig;
use service_kit::ServerConfig;
use url::Url;

/// Which [`crate::extract::Fetcher`] downloads pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetcherChoice {
    /// The browser when chromedriver and Chromium (or `WEBDRIVER_URL`) are available, else HTTP.
    Auto,
    /// Headless Chromium over WebDriver: runs the page's JavaScript.
    Browser,
    /// A plain HTTP GET: sees only the HTML the server sends.
    Http,
}

/// Everything the service reads from the environment. Fields are public so tests and the
/// one-process binary can build one without touching the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SCRAPER_SERVICE_ADDR` (`0.0.0.0:8003`), the request limits, and `SHUTDOWN_GRACE_MS`
    /// (10000): how long a stop lets requests and running jobs finish before the jobs still
    /// held are put back in the queue.
    pub server: ServerConfig,
    /// `SCRAPER_SERVICE_DATABASE_URL` / `DATABASE_URL`, or SQLite `scraper.sqlite`.
    pub db: DbConfig,
    /// `ALGORITHM`, `SECRET_KEY`, `JWT_ISSUER`, …: the service verifies every caller's token.
    pub tokens: TokenSettings,
    /// `JWKS_URL` (`<USER_SERVICE_URL>/.well-known/jwks.json`): the issuer's public keys, with
    /// `ALGORITHM=EdDSA` only.
    pub jwks_url: String,
    /// `JWKS_REFRESH_SECONDS` (300): how often those keys are fetched again.
    pub jwks_refresh: Duration,
    /// `COMPANY_CACHE_TTL_SECONDS` (86400): how long a company record counts as fresh.
    pub cache_ttl: Duration,
    /// `SOURCE_BASE_URL` (`https://openmoney.md`): the only host ever fetched.
    pub source_base_url: Url,
    /// `SCRAPER_FETCHER`: `browser`, `http` or unset (auto).
    pub fetcher: FetcherChoice,
    /// `CHROMEDRIVER_PATH` (`chromedriver`).
    pub chromedriver_path: String,
    /// `CHROMIUM_PATH` (`/usr/bin/chromium`).
    pub chromium_path: String,
    /// `WEBDRIVER_URL`: an already running WebDriver server; then no chromedriver is spawned.
    pub webdriver_url: Option<String>,
    /// `SCRAPER_READY_SELECTOR`: CSS selector whose presence means the page has rendered.
    pub ready_selector: String,
    /// `SCRAPER_NOT_FOUND_SELECTOR`: CSS selector of a rendered "company not found" message.
    pub not_found_selector: String,
    /// `SCRAPER_PAGE_TIMEOUT_MS` (20000): the longest one page may take to load and render.
    pub page_timeout: Duration,
    /// `SCRAPER_USER_AGENT`.
    pub user_agent: String,
    /// `SCRAPER_MAX_PAGE_BYTES` (5 MiB): larger pages are refused.
    pub max_page_bytes: usize,
    /// `SCRAPER_MAX_CONCURRENT_PER_HOST` (2): pages fetched at once from the source.
    pub max_concurrent_per_host: usize,
    /// `SCRAPE_WORKERS` (2): jobs processed at once by this instance; 0 runs no worker.
    pub workers: usize,
    /// `SCRAPE_POLL_INTERVAL_MS` (500): how often idle workers look for due jobs.
    pub poll_interval: Duration,
    /// `SCRAPE_LEASE_SECONDS` (120): how long a running job is held before another
    /// instance may take it over (renewed while the job runs).
    pub lease: Duration,
    /// `SCRAPE_MAX_ATTEMPTS` (3).
    pub max_attempts: u32,
    /// `SCRAPE_RETRY_BASE_MS` (1000): the first retry delay, doubled on each attempt.
    pub retry_base: Duration,
    /// `SCRAPE_RETRY_MAX_MS` (60000): the longest retry delay.
    pub retry_max: Duration,
    /// What one user may ask for (429 with `Retry-After` beyond it).
    pub quotas: QuotaLimits,
    /// How re-transform runs use the machine.
    pub retransform: RetransformSettings,
}

/// How a re-transform run uses the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetransformSettings {
    /// `RETRANSFORM_BATCH_SIZE` (128): pages read, parsed and committed together. At most
    /// three batches of pages are in memory at once (one read ahead, one waiting, one being
    /// parsed).
    pub batch: usize,
    /// `RETRANSFORM_THREADS` (the number of CPUs): threads parsing pages.
    pub threads: usize,
    /// `RETRANSFORM_LEASE_SECONDS` (60): how long a run is held by its process without a
    /// sign of life; a run whose process died is resumable once its lease has run out.
    pub lease: Duration,
}

impl Default for RetransformSettings {
    fn default() -> Self {
        Self {
            batch: 128,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            lease: Duration::from_secs(60),
        }
    }
}

impl RetransformSettings {
    /// Reads the `RETRANSFORM_*` variables (see the field docs).
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let settings = Self {
            batch: at_least_one("RETRANSFORM_BATCH_SIZE", defaults.batch as u64)? as usize,
            threads: at_least_one("RETRANSFORM_THREADS", defaults.threads as u64)? as usize,
            lease: secs_or("RETRANSFORM_LEASE_SECONDS", 60)?,
        };
        if settings.lease.is_zero() {
            return Err(ConfigError::new(
                "RETRANSFORM_LEASE_SECONDS",
                "must be at least 1",
            ));
        }
        Ok(settings)
    }
}

/// Per-user caps on what costs outbound fetches. Each counter runs for a fixed window from
/// the first request counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    /// `SCRAPE_JOBS_PER_USER_PER_MINUTE` (20): requests one user may send per minute that
    /// queue a job (or join their own pending one); answers from the cache do not count.
    pub jobs_per_minute: u64,
    /// `SCRAPE_FORCED_PER_USER_PER_HOUR` (10): forced refreshes one user may ask for per
    /// hour (each also counts as a job).
    pub forced_per_hour: u64,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        Self {
            jobs_per_minute: 20,
            forced_per_hour: 10,
        }
    }
}

/// The database (`SCRAPER_SERVICE_DATABASE_URL`, `DATABASE_URL`, `DATA_DIR`, …): all the
/// administrative commands need, without the token settings serving needs.
pub fn db_from_env() -> Result<DbConfig, ConfigError> {
    DbConfig::from_env("SCRAPER_SERVICE", "scraper.sqlite")
}

/// `COMPANY_CACHE_TTL_SECONDS` (86400): how long a company record counts as fresh.
pub fn cache_ttl_from_env() -> Result<Duration, ConfigError> {
    secs_or("COMPANY_CACHE_TTL_SECONDS", 86_400)
}

/// Default CSS selector that means "the company page has rendered". It matches the usual
/// containers of a details page (a data table or description list) but not the empty shell
/// of a single-page app.
pub const DEFAULT_READY_SELECTOR: &str = "[data-company], .company, .company-details, table, dl";
/// Default CSS selector of a rendered "not found" message.
pub const DEFAULT_NOT_FOUND_SELECTOR: &str = "[data-not-found], .not-found";

impl Config {
    /// Reads every variable (see the field docs); a malformed value names its variable.
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut c = Config::for_tests(db_from_env()?, TokenSettings::from_env()?);
        c.server = ServerConfig::from_env("SCRAPER_SERVICE_ADDR", "0.0.0.0:8003")?;
        let user_service_url = var_or("USER_SERVICE_URL", "http://127.0.0.1:8002");
        c.jwks_url = var_or(
            "JWKS_URL",
            &format!(
                "{}/.well-known/jwks.json",
                user_service_url.trim_end_matches('/')
            ),
        );
        c.jwks_refresh = secs_or("JWKS_REFRESH_SECONDS", 300)?;
        c.cache_ttl = cache_ttl_from_env()?;
        if let Some(raw) = var("SOURCE_BASE_URL") {
            c.source_base_url =
                parse_base_url(&raw).map_err(|m| ConfigError::new("SOURCE_BASE_URL", m))?;
        }
        c.fetcher = match var("SCRAPER_FETCHER")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("auto") => FetcherChoice::Auto,
            Some("browser") => FetcherChoice::Browser,
            Some("http") => FetcherChoice::Http,
            Some(other) => {
                return Err(ConfigError::new(
                    "SCRAPER_FETCHER",
                    format!("expected browser or http, got {other:?}"),
                ))
            }
        };
        c.chromedriver_path = var_or("CHROMEDRIVER_PATH", &c.chromedriver_path);
        c.chromium_path = var_or("CHROMIUM_PATH", &c.chromium_path);
        c.webdriver_url = var("WEBDRIVER_URL");
        if let Some(u) = &c.webdriver_url {
            Url::parse(u)
                .map_err(|e| ConfigError::new("WEBDRIVER_URL", format!("not a URL: {e}")))?;
        }
        c.ready_selector = var_or("SCRAPER_READY_SELECTOR", DEFAULT_READY_SELECTOR);
        check_selector("SCRAPER_READY_SELECTOR", &c.ready_selector)?;
        c.not_found_selector = var_or("SCRAPER_NOT_FOUND_SELECTOR", DEFAULT_NOT_FOUND_SELECTOR);
        check_selector("SCRAPER_NOT_FOUND_SELECTOR", &c.not_found_selector)?;
        c.page_timeout = millis_or("SCRAPER_PAGE_TIMEOUT_MS", 20_000)?;
        c.user_agent = var_or("SCRAPER_USER_AGENT", &c.user_agent);
        c.max_page_bytes = parse_or("SCRAPER_MAX_PAGE_BYTES", c.max_page_bytes)?;
        c.max_concurrent_per_host = parse_or("SCRAPER_MAX_CONCURRENT_PER_HOST", 2)?;
        if c.max_concurrent_per_host == 0 {
            return Err(ConfigError::new(
                "SCRAPER_MAX_CONCURRENT_PER_HOST",
                "must be at least 1",
            ));
        }
        c.workers = parse_or("SCRAPE_WORKERS", 2)?;
        c.poll_interval = millis_or("SCRAPE_POLL_INTERVAL_MS", 500)?;
        c.lease = secs_or("SCRAPE_LEASE_SECONDS", 120)?;
        if c.lease.is_zero() {
            return Err(ConfigError::new(
                "SCRAPE_LEASE_SECONDS",
                "must be at least 1",
            ));
        }
        c.max_attempts = parse_or("SCRAPE_MAX_ATTEMPTS", 3)?;
        if c.max_attempts == 0 {
            return Err(ConfigError::new(
                "SCRAPE_MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        c.retry_base = millis_or("SCRAPE_RETRY_BASE_MS", 1000)?;
        c.retry_max = millis_or("SCRAPE_RETRY_MAX_MS", 60_000)?;
        c.quotas.jobs_per_minute = at_least_one("SCRAPE_JOBS_PER_USER_PER_MINUTE", 20)?;
        c.quotas.forced_per_hour = at_least_one("SCRAPE_FORCED_PER_USER_PER_HOUR", 10)?;
        c.retransform = RetransformSettings::from_env()?;
        Ok(c)
    }

    /// The defaults on an ephemeral port of 127.0.0.1, with `db` as the database and
    /// `tokens` verifying callers; nothing is read from the environment (tests, embedding).
    pub fn for_tests(db: DbConfig, tokens: TokenSettings) -> Config {
        Config {
            server: ServerConfig::ephemeral("SCRAPER_SERVICE_ADDR"),
            db,
            tokens,
            jwks_url: "http://127.0.0.1:8002/.well-known/jwks.json".into(),
            jwks_refresh: Duration::from_secs(300),
            cache_ttl: Duration::from_secs(86_400),
            source_base_url: Url::parse("https://openmoney.md").expect("a valid constant URL"),
            fetcher: FetcherChoice::Auto,
            chromedriver_path: "chromedriver".into(),
            chromium_path: "/usr/bin/chromium".into(),
            webdriver_url: None,
            ready_selector: DEFAULT_READY_SELECTOR.into(),
            not_found_selector: DEFAULT_NOT_FOUND_SELECTOR.into(),
            page_timeout: Duration::from_millis(20_000),
            user_agent: format!(
                "platform-scraper/{} (+contact: the operator of this deployment)",
                env!("CARGO_PKG_VERSION")
            ),
            max_page_bytes: 5 * 1024 * 1024,
            max_concurrent_per_host: 2,
            workers: 2,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(120),
            max_attempts: 3,
            retry_base: Duration::from_millis(1000),
            retry_max: Duration::from_secs(60),
            quotas: QuotaLimits::default(),
            retransform: RetransformSettings::default(),
        }
    }

    /// The page of a company: `<SOURCE_BASE_URL>/companies/<idno>`.
    pub fn company_url(&self, idno: &Idno) -> Url {
        let mut url = self.source_base_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/companies/{idno}"));
        url.set_query(None);
        url
    }

    /// Whether the browser should be used, and why (for the start-up log line).
    pub fn resolve_fetcher(&self) -> (FetcherChoice, String) {
        match self.fetcher {
            FetcherChoice::Browser => (FetcherChoice::Browser, "SCRAPER_FETCHER=browser".into()),
            FetcherChoice::Http => (FetcherChoice::Http, "SCRAPER_FETCHER=http".into()),
            FetcherChoice::Auto => {
                if let Some(u) = &self.webdriver_url {
                    return (
                        FetcherChoice::Browser,
                        format!("WEBDRIVER_URL is set ({u})"),
                    );
                }
                let driver = find_executable(&self.chromedriver_path);
                let browser = find_executable(&self.chromium_path);
                match (driver, browser) {
                    (Some(d), Some(b)) => (
                        FetcherChoice::Browser,
                        format!("found {} and {}", d.display(), b.display()),
                    ),
                    (None, _) => (
                        FetcherChoice::Http,
                        format!(
                            "chromedriver not found at {:?} (CHROMEDRIVER_PATH); pages rendered by JavaScript will look empty",
                            self.chromedriver_path
                        ),
                    ),
                    (_, None) => (
                        FetcherChoice::Http,
                        format!(
                            "Chromium not found at {:?} (CHROMIUM_PATH); pages rendered by JavaScript will look empty",
                            self.chromium_path
                        ),
                    ),
                }
            }
        }
    }
}

/// A count read from `var` (default `default`) that must be at least 1.
fn at_least_one(var: &str, default: u64) -> Result<u64, ConfigError> {
    match parse_or(var, default)? {
        0 => Err(ConfigError::new(var, "must be at least 1")),
        n => Ok(n),
    }
}

/// `SOURCE_BASE_URL` must be http(s) with a host.
pub fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http:// or https:// URL with a host".into());
    }
    Ok(url)
}

fn check_selector(var: &str, selector: &str) -> Result<(), ConfigError> {
    scraper::Selector::parse(selector)
        .map(|_| ())
        .map_err(|e| ConfigError::new(var, format!("not a valid CSS selector: {e:?}")))
}

/// `name` as given when it contains a `/`, else looked up on `PATH`.
pub fn find_executable(name: &str) -> Option<std::path::PathBuf> {
    let is_exec = |p: &Path| p.is_file();
    if name.contains('/') {
        let p = Path::new(name);
        return is_exec(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_exec(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings that are never used to verify anything here.
    fn tokens() -> TokenSettings {
        TokenSettings {
            algorithm: common::auth::hmac_algorithm("HS256").unwrap(),
            secret: None,
            previous_secret: None,
            issuer: "user-service".into(),
            audience: "platform".into(),
            lifetime: Duration::from_secs(60),
            leeway: Duration::from_secs(5),
        }
    }

    #[test]
    fn company_url_keeps_a_base_path() {
        let mut c = Config::for_tests(DbConfig::sqlite(Path::new("/tmp"), "x.sqlite"), tokens());
        let idno = Idno::parse("1008600038413").unwrap();
        assert_eq!(
            c.company_url(&idno).as_str(),
            "https://openmoney.md/companies/1008600038413"
        );
        c.source_base_url = parse_base_url("http://127.0.0.1:9000/mirror/").unwrap();
        assert_eq!(
            c.company_url(&idno).as_str(),
            "http://127.0.0.1:9000/mirror/companies/1008600038413"
        );
    }

    #[test]
    fn base_url_must_be_http() {
        assert!(parse_base_url("ftp://openmoney.md").is_err());
        assert!(parse_base_url("openmoney.md").is_err());
        assert!(parse_base_url("https://openmoney.md").is_ok());
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        // Only this test touches the environment in this binary. The token settings are
        // read first, so they must be valid for the fetcher to be reached.
        std::env::set_var("SECRET_KEY", "a-test-secret-of-at-least-32-bytes!!");
        std::env::set_var("SCRAPER_FETCHER", "selenium");
        let err = Config::from_env().unwrap_err();
        std::env::remove_var("SCRAPER_FETCHER");
        std::env::remove_var("SECRET_KEY");
        assert!(err.to_string().starts_with("SCRAPER_FETCHER: "), "{err}");
    }

    #[test]
    fn default_selectors_parse() {
        assert!(check_selector("X", DEFAULT_READY_SELECTOR).is_ok());
        assert!(check_selector("X", DEFAULT_NOT_FOUND_SELECTOR).is_ok());
        assert!(check_selector("X", "[[").is_err());
    }
}
