//! Where circulation commands travel and how patiently: read once from the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::config::{millis_or, parse_or, var, var_or, ConfigError, Secret};

/// The shortest signing secret accepted (as for token secrets).
pub const MIN_SECRET_BYTES: usize = 32;

/// Which transport carries the commands.
#[derive(Clone, Debug)]
pub enum Transport {
    /// RabbitMQ (`AMQP_URL` set).
    Amqp(AmqpConfig),
    /// The in-process queue, durable in the SQLite file at `path` (`DATA_DIR/bus.sqlite`).
    Local { path: PathBuf },
}

/// Reaching RabbitMQ.
#[derive(Clone, Debug)]
pub struct AmqpConfig {
    /// `AMQP_URL`, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f` (a secret: it may hold a
    /// password).
    pub url: Secret,
    /// `CIRCULATION_SECRET` (at least 32 bytes, required with `AMQP_URL`): the HMAC key that
    /// signs every command and reply, so that a party able to publish on the broker cannot
    /// forge a command in another user's name.
    pub secret: Secret,
    /// `AMQP_CONNECT_TIMEOUT_MS` (2000): a connection attempt taking longer has failed.
    pub connect_timeout: Duration,
}

/// The transport and its tuning.
#[derive(Clone, Debug)]
pub struct BusConfig {
    pub transport: Transport,
    /// `CIRCULATION_PREFIX` (`circulation`): the exchange is `<prefix>`, the command queue
    /// `<prefix>.commands`, the dead-letter exchange and queue `<prefix>.dlx` and
    /// `<prefix>.dead`.
    pub prefix: String,
    /// `CIRCULATION_TIMEOUT_MS` (5000): how long a sender waits for a reply; a command's
    /// deadline is this far ahead of its sending (senders use it with `Command::new`).
    pub wait: Duration,
    /// `CIRCULATION_PREFETCH` (8): commands one consumer applies at once.
    pub prefetch: u16,
    /// `CIRCULATION_MAX_DELIVERIES` (5): a command delivered this often without being
    /// settled (its consumer crashed or kept failing) is dead-lettered.
    pub max_deliveries: u32,
    /// `CIRCULATION_RETRY_DELAY_MS` (500): after a transient failure (the database down), how
    /// long before the command is offered again.
    pub retry_delay: Duration,
    /// `CIRCULATION_LEASE_MS` (30000), in-process queue only: a claimed command not settled
    /// within this time (its consumer died) is offered again.
    pub lease: Duration,
    /// `BUS_RECONNECT_MIN_MS` (100) and `BUS_RECONNECT_MAX_MS` (5000): the first and the
    /// longest pause between reconnection attempts (doubling, with jitter).
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl BusConfig {
    /// Reads `AMQP_URL` (unset: the in-process queue in `DATA_DIR/bus.sqlite`),
    /// `CIRCULATION_SECRET` and the tuning variables of [`BusConfig`].
    pub fn from_env() -> Result<Self, ConfigError> {
        let transport = match var("AMQP_URL") {
            Some(url) => {
                // lapin is built without TLS (one feature less to compile and patch): the
                // broker is reached inside the platform's network.
                if !url.starts_with("amqp://") {
                    return Err(ConfigError::new(
                        "AMQP_URL",
                        "expected an amqp:// URL (amqps:// is not built in; leave it unset for \
                         the in-process queue)",
                    ));
                }
                let secret = var("CIRCULATION_SECRET").ok_or_else(|| {
                    ConfigError::new(
                        "CIRCULATION_SECRET",
                        "required with AMQP_URL (e.g. `openssl rand -hex 32`)",
                    )
                })?;
                Transport::Amqp(AmqpConfig {
                    url: Secret::new(url),
                    secret: Secret::new(secret),
                    connect_timeout: millis_or("AMQP_CONNECT_TIMEOUT_MS", 2000)?,
                })
            }
            None => Transport::Local {
                path: PathBuf::from(var_or("DATA_DIR", "data")).join("bus.sqlite"),
            },
        };
        let config = Self {
            transport,
            prefix: var_or("CIRCULATION_PREFIX", "circulation"),
            wait: millis_or("CIRCULATION_TIMEOUT_MS", 5000)?,
            prefetch: parse_or("CIRCULATION_PREFETCH", 8)?,
            max_deliveries: parse_or("CIRCULATION_MAX_DELIVERIES", 5)?,
            retry_delay: millis_or("CIRCULATION_RETRY_DELAY_MS", 500)?,
            lease: millis_or("CIRCULATION_LEASE_MS", 30_000)?,
            reconnect_min: millis_or("BUS_RECONNECT_MIN_MS", 100)?,
            reconnect_max: millis_or("BUS_RECONNECT_MAX_MS", 5000)?,
        };
        config.check()?;
        Ok(config)
    }

    /// Whether commands travel on the in-process queue: it links a sender and a consumer only
    /// inside one process (the replies are handed over in memory), so a service running as its
    /// own process needs `AMQP_URL`.
    pub fn is_in_process(&self) -> bool {
        matches!(self.transport, Transport::Local { .. })
    }

    /// The in-process queue in `dir/bus.sqlite`, default tuning: tests and the one-process
    /// mode.
    pub fn local(dir: &Path) -> Self {
        Self::with_transport(Transport::Local {
            path: dir.join("bus.sqlite"),
        })
    }

    /// RabbitMQ at `url`, commands signed with `secret`, names under `prefix`: tests.
    pub fn amqp(url: &str, secret: &str, prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            ..Self::with_transport(Transport::Amqp(AmqpConfig {
                url: Secret::new(url),
                secret: Secret::new(secret),
                connect_timeout: Duration::from_secs(2),
            }))
        }
    }

    fn with_transport(transport: Transport) -> Self {
        Self {
            transport,
            prefix: "circulation".to_owned(),
            wait: Duration::from_secs(5),
            prefetch: 8,
            max_deliveries: 5,
            retry_delay: Duration::from_millis(500),
            lease: Duration::from_secs(30),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }

    /// Every value within its bounds; the error names the variable.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Transport::Amqp(amqp) = &self.transport {
            if amqp.secret.expose().len() < MIN_SECRET_BYTES {
                return Err(ConfigError::new(
                    "CIRCULATION_SECRET",
                    format!("must be at least {MIN_SECRET_BYTES} bytes"),
                ));
            }
        }
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if self.prefix.is_empty() || self.prefix.len() > 100 || !self.prefix.chars().all(plain) {
            return Err(ConfigError::new(
                "CIRCULATION_PREFIX",
                "use 1–100 letters, digits, dots, dashes and underscores",
            ));
        }
        let positive = [
            ("CIRCULATION_TIMEOUT_MS", self.wait.is_zero()),
            ("CIRCULATION_PREFETCH", self.prefetch == 0),
            ("CIRCULATION_MAX_DELIVERIES", self.max_deliveries == 0),
            ("CIRCULATION_LEASE_MS", self.lease.is_zero()),
            ("BUS_RECONNECT_MIN_MS", self.reconnect_min.is_zero()),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, zero)| *zero) {
            return Err(ConfigError::new(*name, "must be at least 1"));
        }
        if self.reconnect_max < self.reconnect_min {
            return Err(ConfigError::new(
                "BUS_RECONNECT_MAX_MS",
                "must not be below BUS_RECONNECT_MIN_MS",
            ));
        }
        Ok(())
    }

    /// The exchange commands are published to.
    pub fn exchange(&self) -> String {
        self.prefix.clone()
    }

    /// The queue consumers compete on.
    pub fn commands_queue(&self) -> String {
        format!("{}.commands", self.prefix)
    }

    /// Where rejected (poison) and over-delivered commands go.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    /// The queue holding dead-lettered commands for an operator to inspect.
    pub fn dead_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_prefix() {
        let c = BusConfig::amqp("amqp://h", &"k".repeat(32), "t.1");
        assert_eq!(
            (
                c.exchange(),
                c.commands_queue(),
                c.dead_letter_exchange(),
                c.dead_queue()
            ),
            (
                "t.1".into(),
                "t.1.commands".into(),
                "t.1.dlx".into(),
                "t.1.dead".into()
            )
        );
        assert!(c.check().is_ok());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let short = BusConfig::amqp("amqp://h", "short", "p");
        assert_eq!(short.check().unwrap_err().var, "CIRCULATION_SECRET");
        let mut c = BusConfig::local(Path::new("/tmp"));
        c.prefix = "bad prefix".into();
        assert_eq!(c.check().unwrap_err().var, "CIRCULATION_PREFIX");
        let mut c = BusConfig::local(Path::new("/tmp"));
        c.prefetch = 0;
        assert_eq!(c.check().unwrap_err().var, "CIRCULATION_PREFETCH");
        c.prefetch = 1;
        c.reconnect_max = Duration::from_millis(1);
        assert_eq!(c.check().unwrap_err().var, "BUS_RECONNECT_MAX_MS");
    }
}
