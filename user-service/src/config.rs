//! The service's settings, read once from the environment at start-up.
//!
//! Every value is checked here, so a bad one stops start-up with one line naming its variable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::auth::TokenSettings;
use common::config::{millis_or, parse_or, secs_or, var, var_or, ConfigError, Secret};
use events::StreamConfig;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::Algorithm;
use service_kit::db::DbConfig;
use service_kit::ServerConfig;

use crate::tokens::EdKey;

/// Default bcrypt cost, as passlib used in the original app.
pub const DEFAULT_BCRYPT_COST: u32 = 12;
/// Default number of logins that may wait for a bcrypt thread before the service answers 503.
pub const DEFAULT_BCRYPT_QUEUE: usize = 64;
/// Default number of new hashes (registrations) that may wait for a bcrypt thread.
pub const DEFAULT_BCRYPT_HASH_QUEUE: usize = 8;
/// Default longest wait of a bcrypt job: half of app-service's 10 s upstream timeout, so a
/// refusal (503) reaches the client while its request is still awaited.
pub const DEFAULT_BCRYPT_MAX_WAIT: Duration = Duration::from_secs(5);
/// Where the service listens unless `USER_SERVICE_ADDR` says otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8002";
/// Default failed logins per account within the window before 429.
pub const DEFAULT_MAX_FAILURES_PER_ACCOUNT: u64 = 5;
/// Default failed logins per client address within the window before 429.
pub const DEFAULT_MAX_FAILURES_PER_IP: u64 = 20;
/// Default length of the failed-login window.
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(900);
/// Default time an address that logged in to an account stays known to it (30 days).
pub const DEFAULT_KNOWN_ADDRESS_DAYS: u64 = 30;
/// Default registrations per client address per [`DEFAULT_REGISTER_WINDOW`].
pub const DEFAULT_REGISTER_MAX_PER_IP: u64 = 10;
/// Default window of the per-address registration limit (one hour).
pub const DEFAULT_REGISTER_WINDOW: Duration = Duration::from_secs(3600);
/// Default registrations from everyone per [`DEFAULT_REGISTER_GLOBAL_WINDOW`].
pub const DEFAULT_REGISTER_MAX_GLOBAL: u64 = 60;
/// Default window of the global registration limit (one minute).
pub const DEFAULT_REGISTER_GLOBAL_WINDOW: Duration = Duration::from_secs(60);
/// Default interval between two looks at pending session revocations.
pub const DEFAULT_REVOCATION_POLL: Duration = Duration::from_millis(250);

/// Everything user-service needs to start. Every field is public so that tests and the
/// one-process binary can build one without the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `USER_SERVICE_ADDR`, request limits and the shutdown drain.
    pub server: ServerConfig,
    /// `USER_SERVICE_DATABASE_URL` / `DATABASE_URL` (else SQLite `DATA_DIR/users.sqlite`).
    pub db: DbConfig,
    /// Algorithm, secret, issuer, audience and lifetime of access tokens.
    pub tokens: TokenSettings,
    /// The Ed25519 signing key when `tokens.algorithm` is EdDSA (`JWT_PRIVATE_KEY_FILE`).
    pub ed_key: Option<EdKey>,
    /// `JWT_EXTRA_JWKS_FILE` (EdDSA): public keys published and accepted besides the signing
    /// key — the previous key after a rotation, until its tokens have expired, or the next one
    /// before it (see docs/operations.md, "Rotating the signing key"). Empty by default.
    pub extra_jwks: JwkSet,
    pub bcrypt: BcryptConfig,
    /// Failed-login limits.
    pub throttle: ThrottleConfig,
    /// `LOGIN_KNOWN_ADDRESS_DAYS`: how long an address that logged in to an account keeps
    /// passing that account's lock (see [`crate::throttle::login`]); zero turns it off.
    pub known_address_ttl: Duration,
    pub registration: RegistrationLimits,
    /// `SESSION_REVOCATION_POLL_MS`: how often pending session revocations (requested by
    /// `set-role` from another process) are carried out.
    pub revocation_poll: Duration,
    /// Readers' notifications: the event stream they come from, the live stream, e-mail.
    pub notifications: NotificationsConfig,
    /// `SESSION_COOKIE_SECURE` (`false` by default): whether the web UI's session cookies
    /// (`POST /auth/session`) are marked `Secure`, sent over HTTPS only. Set it where the
    /// gateway is reached over TLS; left off, the plain-HTTP `cargo run` UI works.
    pub secure_cookies: bool,
}

/// Where notifications come from and how they are delivered.
#[derive(Clone, Debug)]
pub struct NotificationsConfig {
    /// The circulation events (`NATS_URL`, `EVENTS_*`, see [`StreamConfig::from_env`]); `None`
    /// (tests, embedding without the library) attaches no notifier: the endpoints serve what
    /// is stored and nothing new arrives. [`crate::startup::Application::build_with_events`]
    /// attaches a stream opened elsewhere.
    pub events: Option<StreamConfig>,
    /// `EVENTS_CONSUMER` (`notifier`): the durable consumer's name; instances sharing it share
    /// the work. `none`: this instance does not consume (it serves the endpoints and its
    /// streams still hear about notifications other instances store).
    pub consumer: Option<String>,
    /// `SSE_KEEP_ALIVE_MS` (15000): how often an idle stream sends a `: keep-alive` comment
    /// (and looks for notifications it may have missed).
    pub keep_alive: Duration,
    /// `SSE_SESSION_CHECK_MS` (5000): how often a stream checks that its session still lives
    /// (an ended session is usually announced at once; this is the backstop).
    pub session_check: Duration,
    pub mail: MailConfig,
}

/// How the e-mails of notifications are sent.
#[derive(Clone, Debug)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// `MAIL_FROM` (`Library <library@localhost>`): the sender; its domain names the
    /// `Message-ID`s.
    pub from: String,
    /// `MAIL_RETRY_MIN_MS` (1000) and `MAIL_RETRY_MAX_MS` (600000): the first and the longest
    /// pause before another attempt after a transient failure (doubling).
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// `MAIL_POLL_MS` (1000): how often the mailer looks for e-mails due for a retry.
    pub poll: Duration,
    /// `MAIL_TIMEOUT_MS` (10000): the longest one SMTP exchange may take.
    pub timeout: Duration,
}

/// Where e-mails go.
#[derive(Clone, Debug)]
pub enum MailTransport {
    /// `SMTP_URL`, e.g. `smtp://127.0.0.1:1025` (plain), `smtp://host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465`.
    Smtp(Secret),
    /// No `SMTP_URL`: each e-mail is written as `notification-<id>.eml` in `MAIL_DIR`
    /// (default `DATA_DIR/mail`).
    Folder(PathBuf),
}

impl MailConfig {
    /// E-mails written to `dir`, retried quickly: tests and the one-process mode.
    pub fn folder(dir: &Path) -> Self {
        Self {
            transport: MailTransport::Folder(dir.to_owned()),
            from: "Library <library@localhost>".to_owned(),
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(5),
            poll: Duration::from_millis(200),
            timeout: Duration::from_secs(5),
        }
    }

    fn from_env() -> Result<Self, ConfigError> {
        let transport = match var("SMTP_URL") {
            Some(url) => {
                if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                    return Err(ConfigError::new(
                        "SMTP_URL",
                        "expected smtp:// or smtps:// (leave it unset to write e-mails to MAIL_DIR)",
                    ));
                }
                MailTransport::Smtp(Secret::new(url))
            }
            None => MailTransport::Folder(match var("MAIL_DIR") {
                Some(dir) => PathBuf::from(dir),
                None => PathBuf::from(var_or("DATA_DIR", "data")).join("mail"),
            }),
        };
        let config = Self {
            transport,
            from: var_or("MAIL_FROM", "Library <library@localhost>"),
            retry_min: millis_or("MAIL_RETRY_MIN_MS", 1000)?,
            retry_max: millis_or("MAIL_RETRY_MAX_MS", 600_000)?,
            poll: millis_or("MAIL_POLL_MS", 1000)?,
            timeout: millis_or("MAIL_TIMEOUT_MS", 10_000)?,
        };
        for (name, zero) in [
            ("MAIL_RETRY_MIN_MS", config.retry_min.is_zero()),
            ("MAIL_POLL_MS", config.poll.is_zero()),
            ("MAIL_TIMEOUT_MS", config.timeout.is_zero()),
        ] {
            if zero {
                return Err(ConfigError::new(name, "must be at least 1"));
            }
        }
        if config.retry_max < config.retry_min {
            return Err(ConfigError::new(
                "MAIL_RETRY_MAX_MS",
                "must not be below MAIL_RETRY_MIN_MS",
            ));
        }
        Ok(config)
    }
}

impl NotificationsConfig {
    fn from_env() -> Result<Self, ConfigError> {
        let config = Self {
            events: Some(StreamConfig::from_env()?),
            consumer: Some(var_or("EVENTS_CONSUMER", "notifier")).filter(|c| c != "none"),
            keep_alive: millis_or("SSE_KEEP_ALIVE_MS", 15_000)?,
            session_check: millis_or("SSE_SESSION_CHECK_MS", 5000)?,
            mail: MailConfig::from_env()?,
        };
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
        if config
            .consumer
            .as_ref()
            .is_some_and(|c| c.is_empty() || !c.chars().all(plain))
        {
            return Err(ConfigError::new(
                "EVENTS_CONSUMER",
                "use letters, digits, dashes and underscores",
            ));
        }
        for (name, zero) in [
            ("SSE_KEEP_ALIVE_MS", config.keep_alive.is_zero()),
            ("SSE_SESSION_CHECK_MS", config.session_check.is_zero()),
        ] {
            if zero {
                return Err(ConfigError::new(name, "must be at least 1"));
            }
        }
        Ok(config)
    }

    /// No stream attached, e-mails written to `mail_dir`, a one-second keep-alive and session
    /// check: tests.
    pub fn for_tests(mail_dir: &Path) -> Self {
        Self {
            events: None,
            consumer: Some("notifier".to_owned()),
            keep_alive: Duration::from_secs(1),
            session_check: Duration::from_secs(1),
            mail: MailConfig::folder(mail_dir),
        }
    }
}

/// The password-hashing pool (see [`crate::hasher`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BcryptConfig {
    /// `BCRYPT_COST` (4..=31); each step doubles the work.
    pub cost: u32,
    /// `BCRYPT_THREADS`: threads that hash and verify, off the async runtime.
    pub threads: usize,
    /// `BCRYPT_QUEUE`: logins that may wait for a thread; beyond that they get 503.
    pub queue: usize,
    /// `BCRYPT_HASH_QUEUE`: new hashes (registrations) that may wait; beyond that 503.
    pub hash_queue: usize,
    /// `BCRYPT_MAX_WAIT_MS`: the longest a job may wait for a thread; one that would wait
    /// longer is refused at once (503).
    pub max_wait: Duration,
}

impl Default for BcryptConfig {
    fn default() -> Self {
        Self {
            cost: DEFAULT_BCRYPT_COST,
            threads: available_cpus(),
            queue: DEFAULT_BCRYPT_QUEUE,
            hash_queue: DEFAULT_BCRYPT_HASH_QUEUE,
            max_wait: DEFAULT_BCRYPT_MAX_WAIT,
        }
    }
}

/// Limits on failed logins, counted in a fixed window from the first attempt.
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

/// Limits on registrations (every attempt counts, taken names included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationLimits {
    /// `REGISTER_MAX_PER_IP` per `window`, per client address.
    pub max_per_ip: u64,
    /// `REGISTER_WINDOW_SECONDS`.
    pub window: Duration,
    /// `REGISTER_MAX_GLOBAL` per `global_window`, from everyone together.
    pub max_global: u64,
    /// `REGISTER_GLOBAL_WINDOW_SECONDS`.
    pub global_window: Duration,
}

impl Default for RegistrationLimits {
    fn default() -> Self {
        Self {
            max_per_ip: DEFAULT_REGISTER_MAX_PER_IP,
            window: DEFAULT_REGISTER_WINDOW,
            max_global: DEFAULT_REGISTER_MAX_GLOBAL,
            global_window: DEFAULT_REGISTER_GLOBAL_WINDOW,
        }
    }
}

fn available_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

impl Config {
    /// Reads the server part (`USER_SERVICE_ADDR`, `MAX_BODY_BYTES`, `REQUEST_TIMEOUT_MS`,
    /// `SHUTDOWN_GRACE_MS`), the database (`USER_SERVICE_DATABASE_URL`, `DATABASE_URL`,
    /// `DATA_DIR`, ...), the token settings (`ALGORITHM`, `SECRET_KEY`, ...),
    /// `JWT_PRIVATE_KEY_FILE`, the bcrypt pool (`BCRYPT_COST`, `BCRYPT_THREADS`,
    /// `BCRYPT_QUEUE`, `BCRYPT_HASH_QUEUE`, `BCRYPT_MAX_WAIT_MS`), login throttling
    /// (`LOGIN_MAX_FAILURES_PER_ACCOUNT`, `LOGIN_MAX_FAILURES_PER_IP`,
    /// `LOGIN_FAILURE_WINDOW_SECONDS`, `LOGIN_KNOWN_ADDRESS_DAYS`), registration throttling
    /// (`REGISTER_MAX_PER_IP`, `REGISTER_WINDOW_SECONDS`, `REGISTER_MAX_GLOBAL`,
    /// `REGISTER_GLOBAL_WINDOW_SECONDS`) and `SESSION_REVOCATION_POLL_MS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let server = ServerConfig::from_env("USER_SERVICE_ADDR", DEFAULT_LISTEN)?;
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
        let extra_jwks = match var("JWT_EXTRA_JWKS_FILE") {
            Some(path) if tokens.algorithm == Algorithm::EdDSA => {
                crate::tokens::read_extra_jwks(Path::new(&path))?
            }
            Some(_) => {
                return Err(ConfigError::new(
                    "JWT_EXTRA_JWKS_FILE",
                    "is for ALGORITHM=EdDSA; with HS* rotate with SECRET_KEY_PREVIOUS",
                ))
            }
            None => JwkSet::default(),
        };
        let bcrypt = BcryptConfig {
            cost: parse_or("BCRYPT_COST", DEFAULT_BCRYPT_COST)?,
            threads: parse_or("BCRYPT_THREADS", available_cpus())?,
            queue: parse_or("BCRYPT_QUEUE", DEFAULT_BCRYPT_QUEUE)?,
            hash_queue: parse_or("BCRYPT_HASH_QUEUE", DEFAULT_BCRYPT_HASH_QUEUE)?,
            max_wait: millis_or("BCRYPT_MAX_WAIT_MS", millis(DEFAULT_BCRYPT_MAX_WAIT))?,
        };
        check_bcrypt(&bcrypt, &server)?;
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
        at_least_one(
            "LOGIN_MAX_FAILURES_PER_ACCOUNT",
            throttle.max_failures_per_account,
        )?;
        at_least_one("LOGIN_MAX_FAILURES_PER_IP", throttle.max_failures_per_ip)?;
        at_least_one("LOGIN_FAILURE_WINDOW_SECONDS", throttle.window.as_secs())?;
        let known_days: u64 = parse_or("LOGIN_KNOWN_ADDRESS_DAYS", DEFAULT_KNOWN_ADDRESS_DAYS)?;
        let known_address_ttl = known_days
            .checked_mul(24 * 3600)
            .filter(|_| known_days <= 3650)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                ConfigError::new(
                    "LOGIN_KNOWN_ADDRESS_DAYS",
                    "must be at most 3650 (ten years)",
                )
            })?;
        let registration = RegistrationLimits {
            max_per_ip: parse_or("REGISTER_MAX_PER_IP", DEFAULT_REGISTER_MAX_PER_IP)?,
            window: secs_or("REGISTER_WINDOW_SECONDS", DEFAULT_REGISTER_WINDOW.as_secs())?,
            max_global: parse_or("REGISTER_MAX_GLOBAL", DEFAULT_REGISTER_MAX_GLOBAL)?,
            global_window: secs_or(
                "REGISTER_GLOBAL_WINDOW_SECONDS",
                DEFAULT_REGISTER_GLOBAL_WINDOW.as_secs(),
            )?,
        };
        at_least_one("REGISTER_MAX_PER_IP", registration.max_per_ip)?;
        at_least_one("REGISTER_WINDOW_SECONDS", registration.window.as_secs())?;
        at_least_one("REGISTER_MAX_GLOBAL", registration.max_global)?;
        at_least_one(
            "REGISTER_GLOBAL_WINDOW_SECONDS",
            registration.global_window.as_secs(),
        )?;
        let revocation_poll = millis_or(
            "SESSION_REVOCATION_POLL_MS",
            millis(DEFAULT_REVOCATION_POLL),
        )?;
        if !(10..=60_000).contains(&millis(revocation_poll)) {
            return Err(ConfigError::new(
                "SESSION_REVOCATION_POLL_MS",
                "must be between 10 and 60000 (a demoted user keeps their sessions that long)",
            ));
        }
        Ok(Self {
            server,
            db: db_from_env()?,
            tokens,
            ed_key,
            extra_jwks,
            bcrypt,
            throttle,
            known_address_ttl,
            registration,
            revocation_poll,
            notifications: NotificationsConfig::from_env()?,
            secure_cookies: parse_or("SESSION_COOKIE_SECURE", false)?,
        })
    }

    /// Settings for tests and the one-process mode's tests: listens on `127.0.0.1:0`, HS256
    /// with `secret` (at least 32 bytes), bcrypt cost 4 on two threads, default throttling; no
    /// event stream attached, e-mails (were there any) written to the system's temporary
    /// directory under `user-service-mail` — set `notifications` to change either.
    pub fn for_tests(db: DbConfig, secret: &str) -> Self {
        Self {
            server: ServerConfig::ephemeral("USER_SERVICE_ADDR"),
            db,
            tokens: TokenSettings {
                algorithm: Algorithm::HS256,
                secret: Some(Secret::new(secret)),
                previous_secret: None,
                issuer: "user-service".to_owned(),
                audience: "platform".to_owned(),
                lifetime: Duration::from_secs(30 * 60),
                leeway: Duration::from_secs(5),
            },
            ed_key: None,
            extra_jwks: JwkSet::default(),
            bcrypt: BcryptConfig {
                cost: 4,
                threads: 2,
                ..BcryptConfig::default()
            },
            throttle: ThrottleConfig::default(),
            known_address_ttl: Duration::from_secs(DEFAULT_KNOWN_ADDRESS_DAYS * 24 * 3600),
            registration: RegistrationLimits::default(),
            revocation_poll: DEFAULT_REVOCATION_POLL,
            notifications: NotificationsConfig::for_tests(
                &std::env::temp_dir().join("user-service-mail"),
            ),
            secure_cookies: false,
        }
    }
}

/// The database settings alone (`USER_SERVICE_DATABASE_URL`, `DATABASE_URL`, `DATA_DIR`, ...):
/// all that the `set-role` command needs.
pub fn db_from_env() -> Result<DbConfig, ConfigError> {
    DbConfig::from_env("USER_SERVICE", "users.sqlite")
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn at_least_one(var: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::new(var, "must be at least 1"))
    } else {
        Ok(())
    }
}

fn check_bcrypt(c: &BcryptConfig, server: &ServerConfig) -> Result<(), ConfigError> {
    if !(4..=31).contains(&c.cost) {
        return Err(ConfigError::new(
            "BCRYPT_COST",
            "must be between 4 and 31 (12 is a sound default)",
        ));
    }
    at_least_one("BCRYPT_THREADS", c.threads as u64)?;
    at_least_one("BCRYPT_QUEUE", c.queue as u64)?;
    at_least_one("BCRYPT_HASH_QUEUE", c.hash_queue as u64)?;
    at_least_one("BCRYPT_MAX_WAIT_MS", millis(c.max_wait))?;
    if c.max_wait >= server.limits.request_timeout {
        return Err(ConfigError::new(
            "BCRYPT_MAX_WAIT_MS",
            format!(
                "must be below REQUEST_TIMEOUT_MS ({} ms): a job may not wait longer than its request lives",
                millis(server.limits.request_timeout)
            ),
        ));
    }
    Ok(())
}
