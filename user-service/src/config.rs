//! The service's settings, read once from the environment at start-up.

use std::path::Path;
use std::time::Duration;

use common::auth::TokenSettings;
use common::config::{parse_or, secs_or, var, var_or, ConfigError, Secret};
use common::db::DbConfig;
use common::server::HttpLimits;
use jsonwebtoken::Algorithm;

use crate::tokens::EdKey;

/// Default bcrypt cost, as passlib used in the original app.
pub const DEFAULT_BCRYPT_COST: u32 = 12;
/// Default number of waiting hash jobs before the service answers 503.
pub const DEFAULT_BCRYPT_QUEUE: usize = 64;
/// Default failed logins per account within the window before 429.
pub const DEFAULT_MAX_FAILURES_PER_ACCOUNT: u64 = 5;
/// Default failed logins per client address within the window before 429.
pub const DEFAULT_MAX_FAILURES_PER_IP: u64 = 20;
/// How long in-flight requests may finish after a shutdown signal (as app-service).
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);
/// Default length of the failed-login window.
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(900);

/// Everything user-service needs to start. Every field is public so that tests and the
/// one-process binary can build one without the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `host:port` to listen on (`USER_SERVICE_ADDR`).
    pub addr: String,
    pub db: DbConfig,
    /// Algorithm, secret, issuer, audience and lifetime of access tokens.
    pub tokens: TokenSettings,
    /// The Ed25519 signing key when `tokens.algorithm` is EdDSA (`JWT_PRIVATE_KEY_FILE`).
    pub ed_key: Option<EdKey>,
    pub bcrypt: BcryptConfig,
    pub throttle: ThrottleConfig,
    pub http: HttpLimits,
    /// How long in-flight requests may finish after a shutdown signal.
    pub drain: Duration,
}

/// The password-hashing pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BcryptConfig {
    /// bcrypt cost (4..=31); each step doubles the work.
    pub cost: u32,
    /// Threads that hash and verify, off the async runtime.
    pub threads: usize,
    /// Jobs that may wait for a thread; beyond that requests get 503 `Server busy; retry`.
    pub queue: usize,
}

impl Default for BcryptConfig {
    fn default() -> Self {
        Self {
            cost: DEFAULT_BCRYPT_COST,
            threads: available_cpus(),
            queue: DEFAULT_BCRYPT_QUEUE,
        }
    }
}

/// Limits on failed logins, counted in a fixed window from the first failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    pub max_failures_per_account: u64,
    pub max_failures_per_ip: u64,
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures_per_account: DEFAULT_MAX_FAILURES_PER_ACCOUNT,
            max_failures_per_ip: DEFAULT_MAX_FAILURES_PER_IP,
            window: DEFAULT_FAILURE_WINDOW,
        }
    }
}

fn available_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

impl Config {
    /// Reads `USER_SERVICE_ADDR`, the database (`USER_SERVICE_DATABASE_URL`, `DATABASE_URL`,
    /// `DATA_DIR`, ...), the token settings (`ALGORITHM`, `SECRET_KEY`, ...),
    /// `JWT_PRIVATE_KEY_FILE`, `BCRYPT_COST`, `BCRYPT_THREADS`, `BCRYPT_QUEUE`,
    /// `LOGIN_MAX_FAILURES_PER_ACCOUNT`, `LOGIN_MAX_FAILURES_PER_IP`,
    /// `LOGIN_FAILURE_WINDOW_SECONDS`, `MAX_BODY_BYTES` and `REQUEST_TIMEOUT_MS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let tokens = TokenSettings::from_env()?;
        let ed_key = match (tokens.algorithm, var("JWT_PRIVATE_KEY_FILE")) {
            (Algorithm::EdDSA, Some(path)) => Some(EdKey::from_file(Path::new(&path))?),
            (Algorithm::EdDSA, None) => {
                return Err(ConfigError::new(
                    "JWT_PRIVATE_KEY_FILE",
                    "required with ALGORITHM=EdDSA (an Ed25519 PKCS#8 PEM, e.g. `openssl genpkey -algorithm ed25519`)",
                ))
            }
            (_, Some(_)) => {
                return Err(ConfigError::new(
                    "JWT_PRIVATE_KEY_FILE",
                    "is set but ALGORITHM is not EdDSA; set ALGORITHM=EdDSA or unset it",
                ))
            }
            (_, None) => None,
        };
        let bcrypt = BcryptConfig {
            cost: parse_or("BCRYPT_COST", DEFAULT_BCRYPT_COST)?,
            threads: parse_or("BCRYPT_THREADS", available_cpus())?,
            queue: parse_or("BCRYPT_QUEUE", DEFAULT_BCRYPT_QUEUE)?,
        };
        check_bcrypt(&bcrypt)?;
        let throttle = ThrottleConfig {
            max_failures_per_account: parse_or(
                "LOGIN_MAX_FAILURES_PER_ACCOUNT",
                DEFAULT_MAX_FAILURES_PER_ACCOUNT,
            )?,
            max_failures_per_ip: parse_or(
                "LOGIN_MAX_FAILURES_PER_IP",
                DEFAULT_MAX_FAILURES_PER_IP,
            )?,
            window: secs_or(
                "LOGIN_FAILURE_WINDOW_SECONDS",
                DEFAULT_FAILURE_WINDOW.as_secs(),
            )?,
        };
        check_throttle(&throttle)?;
        Ok(Self {
            addr: var_or("USER_SERVICE_ADDR", "0.0.0.0:8002"),
            db: DbConfig::from_env("USER_SERVICE", "users.sqlite")?,
            tokens,
            ed_key,
            bcrypt,
            throttle,
            http: HttpLimits::from_env()?,
            drain: DEFAULT_DRAIN,
        })
    }

    /// Settings for tests and the one-process mode: listens on `127.0.0.1:0`, HS256 with
    /// `secret` (at least 32 bytes), bcrypt cost 4 on two threads, default throttling.
    pub fn for_tests(db: DbConfig, secret: &str) -> Self {
        Self {
            addr: "127.0.0.1:0".to_owned(),
            db,
            tokens: TokenSettings {
                algorithm: Algorithm::HS256,
                secret: Some(Secret::new(secret)),
                issuer: "user-service".to_owned(),
                audience: "platform".to_owned(),
                lifetime: Duration::from_secs(30 * 60),
                leeway: Duration::from_secs(5),
            },
            ed_key: None,
            bcrypt: BcryptConfig {
                cost: 4,
                threads: 2,
                queue: DEFAULT_BCRYPT_QUEUE,
            },
            throttle: ThrottleConfig::default(),
            http: HttpLimits::default(),
            drain: Duration::from_secs(5),
        }
    }
}

fn check_bcrypt(c: &BcryptConfig) -> Result<(), ConfigError> {
    if !(4..=31).contains(&c.cost) {
        return Err(ConfigError::new(
            "BCRYPT_COST",
            "must be between 4 and 31 (12 is a sound default)",
        ));
    }
    if c.threads == 0 {
        return Err(ConfigError::new("BCRYPT_THREADS", "must be at least 1"));
    }
    if c.queue == 0 {
        return Err(ConfigError::new("BCRYPT_QUEUE", "must be at least 1"));
    }
    Ok(())
}

fn check_throttle(c: &ThrottleConfig) -> Result<(), ConfigError> {
    if c.max_failures_per_account == 0 {
        return Err(ConfigError::new(
            "LOGIN_MAX_FAILURES_PER_ACCOUNT",
            "must be at least 1",
        ));
    }
    if c.max_failures_per_ip == 0 {
        return Err(ConfigError::new(
            "LOGIN_MAX_FAILURES_PER_IP",
            "must be at least 1",
        ));
    }
    if c.window.is_zero() {
        return Err(ConfigError::new(
            "LOGIN_FAILURE_WINDOW_SECONDS",
            "must be at least 1",
        ));
    }
    Ok(())
}
