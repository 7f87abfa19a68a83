//! Where circulation events travel and how they are kept: read once from the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::config::{millis_or, parse_or, var, var_or, ConfigError, Secret};

/// Which stream carries the events.
#[derive(Clone, Debug)]
pub enum Transport {
    /// NATS JetStream (`NATS_URL` set).
    Nats(NatsConfig),
    /// The in-process stream, durable in the SQLite file at `path` (`DATA_DIR/events.sqlite`).
    Local { path: PathBuf },
}

/// Reaching NATS.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// `NATS_URL`, e.g. `nats://127.0.0.1:4222` (a secret: it may hold credentials).
    pub url: Secret,
    /// `NATS_CONNECT_TIMEOUT_MS` (2000): one connection attempt taking longer has failed.
    pub connect_timeout: Duration,
    /// `EVENTS_REPLICAS` (1): copies of each stream in a NATS cluster (1, 3 or 5).
    pub replicas: usize,
}

/// The stream, its names, retention and delivery rules.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    pub transport: Transport,
    /// `EVENTS_STREAM` (`LIBRARY_EVENTS`): the JetStream stream of the events; the dead
    /// letters are in `<EVENTS_STREAM>_DEAD`.
    pub stream: String,
    /// `EVENTS_SUBJECT_PREFIX` (`library.events`): an event of title 42 is published on
    /// `library.events.42`.
    pub subject_prefix: String,
    /// `EVENTS_DEAD_SUBJECT` (`library.dead.events`): where a consumer puts an event it
    /// could not handle `max_deliver` times. Outside `<prefix>.*` on purpose: there it would
    /// be delivered back to every consumer of the events.
    pub dead_subject: String,
    /// `EVENTS_LIVE_SUBJECT` (`library.live`): the fan-out of live signals between
    /// instances (core NATS, not stored).
    pub live_subject: String,
    /// `EVENTS_MAX_AGE_DAYS` (30): events older than this are removed (limits retention:
    /// whether or not every consumer has read them).
    pub max_age: Duration,
    /// `EVENTS_DEAD_MAX_AGE_DAYS` (90): how long dead letters are kept for an operator.
    pub dead_max_age: Duration,
    /// `EVENTS_MAX_BYTES` (1073741824, 1 GiB): the stream's size limit; the oldest events
    /// go first beyond it. `-1` for none.
    pub max_bytes: i64,
    /// `EVENTS_DUPLICATE_WINDOW_SECS` (600): a publish with a message id seen within this
    /// window is dropped (acknowledged as a duplicate).
    pub duplicate_window: Duration,
    /// `EVENTS_ACK_WAIT_MS` (30000): an event delivered and not acknowledged within this time
    /// (its consumer died) is delivered again.
    pub ack_wait: Duration,
    /// `EVENTS_MAX_DELIVER` (5): after this many failed deliveries an event goes to the dead
    /// letters.
    pub max_deliver: u32,
    /// `EVENTS_RETRY_DELAY_MS` (1000): the pause before an event whose handling failed is
    /// delivered again, doubled on each further failure (at most a minute).
    pub retry_delay: Duration,
    /// `EVENTS_BATCH` (256): events handed to a handler at once (those already delivered;
    /// never waited for).
    pub batch: usize,
    /// `EVENTS_POLL_MS` (250), in-process stream only: how often an idle consumer looks for
    /// redeliveries (a publish wakes it at once).
    pub poll: Duration,
}

impl StreamConfig {
    /// Reads `NATS_URL` (unset: the in-process stream in `DATA_DIR/events.sqlite`) and the
    /// variables of [`StreamConfig`] and [`NatsConfig`].
    pub fn from_env() -> Result<Self, ConfigError> {
        let transport = match var("NATS_URL") {
            Some(url) => {
                if !(url.starts_with("nats://") || url.starts_with("tls://")) {
                    return Err(ConfigError::new(
                        "NATS_URL",
                        "expected a nats:// URL (leave it unset for the in-process stream)",
                    ));
                }
                Transport::Nats(NatsConfig {
                    url: Secret::new(url),
                    connect_timeout: millis_or("NATS_CONNECT_TIMEOUT_MS", 2000)?,
                    replicas: parse_or("EVENTS_REPLICAS", 1)?,
                })
            }
            None => Transport::Local {
                path: PathBuf::from(var_or("DATA_DIR", "data")).join("events.sqlite"),
            },
        };
        let days = |name: &str, default: u64| -> Result<Duration, ConfigError> {
            let n: u64 = parse_or(name, default)?;
            if !(1..=3650).contains(&n) {
                return Err(ConfigError::new(name, "must be between 1 and 3650"));
            }
            Ok(Duration::from_secs(n * 24 * 3600))
        };
        let config = Self {
            transport,
            stream: var_or("EVENTS_STREAM", "LIBRARY_EVENTS"),
            subject_prefix: var_or("EVENTS_SUBJECT_PREFIX", "library.events"),
            dead_subject: var_or("EVENTS_DEAD_SUBJECT", "library.dead.events"),
            live_subject: var_or("EVENTS_LIVE_SUBJECT", "library.live"),
            max_age: days("EVENTS_MAX_AGE_DAYS", 30)?,
            dead_max_age: days("EVENTS_DEAD_MAX_AGE_DAYS", 90)?,
            max_bytes: parse_or("EVENTS_MAX_BYTES", 1 << 30)?,
            duplicate_window: Duration::from_secs(parse_or("EVENTS_DUPLICATE_WINDOW_SECS", 600)?),
            ack_wait: millis_or("EVENTS_ACK_WAIT_MS", 30_000)?,
            max_deliver: parse_or("EVENTS_MAX_DELIVER", 5)?,
            retry_delay: millis_or("EVENTS_RETRY_DELAY_MS", 1000)?,
            batch: parse_or("EVENTS_BATCH", 256)?,
            poll: millis_or("EVENTS_POLL_MS", 250)?,
        };
        config.check()?;
        Ok(config)
    }

    /// The in-process stream in `dir/events.sqlite`, default names and tuning: tests and the
    /// one-process mode.
    pub fn local(dir: &Path) -> Self {
        Self::with_transport(Transport::Local {
            path: dir.join("events.sqlite"),
        })
    }

    /// JetStream at `url` with every name derived from `name` (a stream `<NAME>` on
    /// `<name>.events.*`, dead letters on `<name>.dead`, live signals on `<name>.live`):
    /// tests, each under a name of its own.
    pub fn nats(url: &str, name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        Self {
            stream: name.to_ascii_uppercase(),
            subject_prefix: format!("{lower}.events"),
            dead_subject: format!("{lower}.dead"),
            live_subject: format!("{lower}.live"),
            ..Self::with_transport(Transport::Nats(NatsConfig {
                url: Secret::new(url),
                connect_timeout: Duration::from_secs(2),
                replicas: 1,
            }))
        }
    }

    fn with_transport(transport: Transport) -> Self {
        Self {
            transport,
            stream: "LIBRARY_EVENTS".to_owned(),
            subject_prefix: "library.events".to_owned(),
            dead_subject: "library.dead.events".to_owned(),
            live_subject: "library.live".to_owned(),
            max_age: Duration::from_secs(30 * 24 * 3600),
            dead_max_age: Duration::from_secs(90 * 24 * 3600),
            max_bytes: 1 << 30,
            duplicate_window: Duration::from_secs(600),
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            retry_delay: Duration::from_secs(1),
            batch: 256,
            poll: Duration::from_millis(250),
        }
    }

    /// Every value within its bounds; the error names the variable.
    pub fn check(&self) -> Result<(), ConfigError> {
        let token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
        let subject =
            |s: &str| !s.is_empty() && s.split('.').all(|t| !t.is_empty() && t.chars().all(token));
        if self.stream.is_empty() || self.stream.len() > 100 || !self.stream.chars().all(token) {
            return Err(ConfigError::new(
                "EVENTS_STREAM",
                "use 1–100 letters, digits, dashes and underscores",
            ));
        }
        for (name, value) in [
            ("EVENTS_SUBJECT_PREFIX", &self.subject_prefix),
            ("EVENTS_DEAD_SUBJECT", &self.dead_subject),
            ("EVENTS_LIVE_SUBJECT", &self.live_subject),
        ] {
            if !subject(value) {
                return Err(ConfigError::new(
                    name,
                    "use dot-separated tokens of letters, digits, dashes and underscores",
                ));
            }
        }
        if self
            .dead_subject
            .starts_with(&format!("{}.", self.subject_prefix))
            && self.dead_subject.matches('.').count()
                == self.subject_prefix.matches('.').count() + 1
        {
            return Err(ConfigError::new(
                "EVENTS_DEAD_SUBJECT",
                "must not be one of the event subjects (<EVENTS_SUBJECT_PREFIX>.*)",
            ));
        }
        if let Transport::Nats(nats) = &self.transport {
            if ![1, 3, 5].contains(&nats.replicas) {
                return Err(ConfigError::new("EVENTS_REPLICAS", "must be 1, 3 or 5"));
            }
        }
        if self.max_bytes == 0 || self.max_bytes < -1 {
            return Err(ConfigError::new(
                "EVENTS_MAX_BYTES",
                "must be positive, or -1 for no limit",
            ));
        }
        let positive = [
            (
                "EVENTS_DUPLICATE_WINDOW_SECS",
                self.duplicate_window.is_zero(),
            ),
            ("EVENTS_ACK_WAIT_MS", self.ack_wait.is_zero()),
            ("EVENTS_MAX_DELIVER", self.max_deliver == 0),
            ("EVENTS_RETRY_DELAY_MS", self.retry_delay.is_zero()),
            ("EVENTS_BATCH", self.batch == 0),
            ("EVENTS_POLL_MS", self.poll.is_zero()),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, zero)| *zero) {
            return Err(ConfigError::new(*name, "must be at least 1"));
        }
        if self.duplicate_window > self.max_age {
            return Err(ConfigError::new(
                "EVENTS_DUPLICATE_WINDOW_SECS",
                "must not exceed EVENTS_MAX_AGE_DAYS",
            ));
        }
        Ok(())
    }

    /// The subject of the events of `title_id`.
    pub fn subject_of(&self, title_id: i64) -> String {
        format!("{}.{title_id}", self.subject_prefix)
    }

    /// The subjects of every event: `<prefix>.*`.
    pub fn all_subjects(&self) -> String {
        format!("{}.*", self.subject_prefix)
    }

    /// The stream keeping the dead letters.
    pub fn dead_stream(&self) -> String {
        format!("{}_DEAD", self.stream)
    }

    /// The pause before delivery number `delivered + 1` after `delivered` failed ones.
    pub fn retry_pause(&self, delivered: u32) -> Duration {
        let doublings = delivered.saturating_sub(1).min(16);
        (self.retry_delay * 2u32.pow(doublings)).min(Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_test_name() {
        let c = StreamConfig::nats("nats://h:4222", "t_1a");
        assert_eq!(
            (
                c.stream.as_str(),
                c.subject_of(42),
                c.all_subjects(),
                c.dead_stream(),
                c.dead_subject.as_str()
            ),
            (
                "T_1A",
                "t_1a.events.42".to_owned(),
                "t_1a.events.*".to_owned(),
                "T_1A_DEAD".to_owned(),
                "t_1a.dead"
            )
        );
        assert!(c.check().is_ok());
        assert!(StreamConfig::local(Path::new("/tmp")).check().is_ok());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let mut c = StreamConfig::local(Path::new("/tmp"));
        c.dead_subject = "library.events.dead".into();
        assert_eq!(c.check().unwrap_err().var, "EVENTS_DEAD_SUBJECT");
        let mut c = StreamConfig::local(Path::new("/tmp"));
        c.subject_prefix = "library..events".into();
        assert_eq!(c.check().unwrap_err().var, "EVENTS_SUBJECT_PREFIX");
        let mut c = StreamConfig::local(Path::new("/tmp"));
        c.stream = "has.dot".into();
        assert_eq!(c.check().unwrap_err().var, "EVENTS_STREAM");
        let mut c = StreamConfig::local(Path::new("/tmp"));
        c.max_deliver = 0;
        assert_eq!(c.check().unwrap_err().var, "EVENTS_MAX_DELIVER");
        let mut c = StreamConfig::nats("nats://h", "x");
        if let Transport::Nats(n) = &mut c.transport {
            n.replicas = 2;
        }
        assert_eq!(c.check().unwrap_err().var, "EVENTS_REPLICAS");
    }

    #[test]
    fn retries_back_off_up_to_a_minute() {
        let c = StreamConfig::local(Path::new("/tmp"));
        assert_eq!(c.retry_pause(1), Duration::from_secs(1));
        assert_eq!(c.retry_pause(2), Duration::from_secs(2));
        assert_eq!(c.retry_pause(4), Duration::from_secs(8));
        assert_eq!(c.retry_pause(30), Duration::from_secs(60));
    }
}
