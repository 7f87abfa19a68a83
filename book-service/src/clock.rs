//! The library's notion of "now": due dates, overdue loans and pickup deadlines are computed
//! from a [`Clock`], so tests can move time forward by days without sleeping. (A command's
//! deadline is wall-clock time shared with its sender and is not read from here.)

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to: for tests and simulations.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A shared clock, as the service holds it.
#[derive(Clone)]
pub struct SharedClock(Arc<dyn Clock>);

impl SharedClock {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self(clock)
    }

    /// The current time, to the microsecond (what both databases store).
    pub fn now(&self) -> DateTime<Utc> {
        let now = self.0.now();
        now - Duration::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1000))
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        Self(Arc::new(SystemClock))
    }
}

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedClock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = Utc::now();
        let manual = Arc::new(ManualClock::starting_at(start));
        let shared = SharedClock::new(manual.clone());
        assert_eq!(shared.now().timestamp_micros(), start.timestamp_micros());
        manual.advance(Duration::days(3));
        assert_eq!(
            shared.now().timestamp_micros(),
            (start + Duration::days(3)).timestamp_micros()
        );
        assert_eq!(shared.now().timestamp_subsec_nanos() % 1000, 0);
    }
}
