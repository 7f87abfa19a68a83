//! book-service's settings, read once from the environment at start-up.

use std::time::Duration;

use circulation::BusConfig;
use common::auth::TokenSettings;
use common::config::{millis_or, parse_or, secs_or, var_or, ConfigError};
use events::StreamConfig;
use service_kit::db::DbConfig;
use service_kit::ServerConfig;

use crate::rules::Rules;

/// Everything book-service needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `BOOK_SERVICE_ADDR` (default `0.0.0.0:8004`), `MAX_BODY_BYTES`, `REQUEST_TIMEOUT_MS`,
    /// `SHUTDOWN_GRACE_MS`.
    pub server: ServerConfig,
    /// `BOOK_SERVICE_DATABASE_URL` or `DATABASE_URL` (PostgreSQL), else SQLite
    /// `DATA_DIR/books.sqlite`; `BOOK_SERVICE_DATABASE_SCHEMA`, pool settings.
    pub db: DbConfig,
    /// `ALGORITHM`, `SECRET_KEY`, `JWT_ISSUER`, … : how bearer tokens are verified.
    pub tokens: TokenSettings,
    /// `JWKS_URL` (default `<USER_SERVICE_URL>/.well-known/jwks.json`), used with EdDSA.
    pub jwks_url: String,
    /// `JWKS_REFRESH_SECONDS` (300).
    pub jwks_refresh: Duration,
    /// `LOAN_PERIOD_DAYS`, `MAX_RENEWALS`, `MAX_ACTIVE_LOANS`, `MAX_ACTIVE_HOLDS`,
    /// `HOLD_PICKUP_DAYS`, `DUE_SOON_DAYS`.
    pub rules: Rules,
    /// `HOLD_SWEEP_INTERVAL_MS` (60000): how often expired pickups are swept and the
    /// scheduled notices (due soon, overdue) sent.
    pub sweep_every: Duration,
    /// `IDEMPOTENCY_RETENTION_HOURS` (24): how long an applied command is remembered, i.e.
    /// how late a retry with the same `Idempotency-Key` still gets the first result.
    pub idempotency_retention: Duration,
    /// How circulation commands arrive: `AMQP_URL`, `CIRCULATION_*` (see
    /// [`BusConfig::from_env`]).
    pub bus: BusConfig,
    /// Where circulation events go: `NATS_URL`, `EVENTS_*` (see [`StreamConfig::from_env`]).
    pub events: StreamConfig,
    /// The outbox relay.
    pub outbox: OutboxConfig,
}

/// How the outbox is relayed to the event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    /// `OUTBOX_BATCH` (500): events read and published at once.
    pub batch: usize,
    /// `OUTBOX_POLL_MS` (100): how often the relay looks for events when not rung (events
    /// committed by another instance, or left over from a failure).
    pub poll: Duration,
    /// `OUTBOX_LEASE_MS` (10000): how long the relay's lease lasts; another instance takes
    /// over within about 4/3 of it after the holder died.
    pub lease: Duration,
    /// `OUTBOX_RETENTION_HOURS` (168): how long published events stay in the outbox.
    pub retention: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            poll: Duration::from_millis(100),
            lease: Duration::from_secs(10),
            retention: Duration::from_secs(168 * 3600),
        }
    }
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
            server: ServerConfig::from_env("BOOK_SERVICE_ADDR", "0.0.0.0:8004")?,
            db: DbConfig::from_env("BOOK_SERVICE", "books.sqlite")?,
            tokens: TokenSettings::from_env()?,
            jwks_url: var_or("JWKS_URL", &jwks_default),
            jwks_refresh: secs_or("JWKS_REFRESH_SECONDS", 300)?,
            rules: Rules {
                loan_period: days("LOAN_PERIOD_DAYS", 14)?,
                max_renewals: parse_or("MAX_RENEWALS", 2)?,
                max_active_loans: parse_or("MAX_ACTIVE_LOANS", 5)?,
                max_active_holds: parse_or("MAX_ACTIVE_HOLDS", 10)?,
                hold_pickup: days("HOLD_PICKUP_DAYS", 3)?,
                due_soon: days("DUE_SOON_DAYS", 2)?,
            },
            sweep_every: millis_or("HOLD_SWEEP_INTERVAL_MS", 60_000)?,
            idempotency_retention: Duration::from_secs(
                3600 * parse_or::<u64>("IDEMPOTENCY_RETENTION_HOURS", 24)?,
            ),
            bus: BusConfig::from_env()?,
            events: StreamConfig::from_env()?,
            outbox: OutboxConfig {
                batch: parse_or("OUTBOX_BATCH", 500)?,
                poll: millis_or("OUTBOX_POLL_MS", 100)?,
                lease: millis_or("OUTBOX_LEASE_MS", 10_000)?,
                retention: Duration::from_secs(
                    3600 * parse_or::<u64>("OUTBOX_RETENTION_HOURS", 168)?,
                ),
            },
        };
        config.check()?;
        Ok(config)
    }

    /// A configuration for tests and embedding, without the environment: an ephemeral port on
    /// 127.0.0.1, `db`, HS256 tokens with `secret`, commands over `bus`, events to `events`,
    /// default rules, a one-second sweep.
    pub fn for_tests(db: DbConfig, secret: &str, bus: BusConfig, events: StreamConfig) -> Self {
        Self {
            server: ServerConfig::ephemeral("BOOK_SERVICE_ADDR"),
            db,
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
            rules: Rules::default(),
            sweep_every: Duration::from_secs(1),
            idempotency_retention: Duration::from_secs(24 * 3600),
            bus,
            events,
            outbox: OutboxConfig::default(),
        }
    }

    /// Every value within its bounds.
    pub fn check(&self) -> Result<(), ConfigError> {
        let zero = [
            ("MAX_ACTIVE_LOANS", self.rules.max_active_loans == 0),
            ("MAX_ACTIVE_HOLDS", self.rules.max_active_holds == 0),
            (
                "LOAN_PERIOD_DAYS",
                self.rules.loan_period <= chrono::Duration::zero(),
            ),
            (
                "HOLD_PICKUP_DAYS",
                self.rules.hold_pickup <= chrono::Duration::zero(),
            ),
            ("HOLD_SWEEP_INTERVAL_MS", self.sweep_every.is_zero()),
            ("OUTBOX_BATCH", self.outbox.batch == 0),
            ("OUTBOX_POLL_MS", self.outbox.poll.is_zero()),
            ("OUTBOX_LEASE_MS", self.outbox.lease.is_zero()),
            ("OUTBOX_RETENTION_HOURS", self.outbox.retention.is_zero()),
            (
                "IDEMPOTENCY_RETENTION_HOURS",
                self.idempotency_retention.is_zero(),
            ),
        ];
        match zero.iter().find(|(_, bad)| *bad) {
            Some((name, _)) => Err(ConfigError::new(*name, "must be at least 1")),
            None => Ok(()),
        }
    }
}

/// A whole number of days.
fn days(name: &str, default: i64) -> Result<chrono::Duration, ConfigError> {
    let n: i64 = parse_or(name, default)?;
    if !(1..=3650).contains(&n) {
        return Err(ConfigError::new(name, "must be between 1 and 3650"));
    }
    Ok(chrono::Duration::days(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_are_refused_by_name() {
        let dir = std::path::Path::new("/tmp");
        let mut config = Config::for_tests(
            DbConfig::sqlite(dir, "x"),
            "s",
            BusConfig::local(dir),
            StreamConfig::local(dir),
        );
        assert!(config.check().is_ok());
        config.rules.max_active_loans = 0;
        assert_eq!(config.check().unwrap_err().var, "MAX_ACTIVE_LOANS");
    }
}
