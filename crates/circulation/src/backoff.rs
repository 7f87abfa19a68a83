//! Pauses between reconnection attempts: doubling from a minimum up to a maximum, with
//! jitter so that instances cut off together do not return in lockstep.

use std::time::Duration;

/// The pause before the next attempt.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The pause to take now: between half and all of the current step ("equal jitter"),
    /// then the step doubles up to the maximum.
    pub(crate) fn next_pause(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(self.max);
        let half = step / 2;
        // Random bits without a dependency of its own: a v4 UUID is 122 random bits.
        let random = uuid::Uuid::new_v4().as_u128() as u64;
        let jitter_ns = random % (half.as_nanos().max(1) as u64);
        half + Duration::from_nanos(jitter_ns)
    }

    /// Back to the minimum after a success.
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let bounds = [100, 200, 400, 800, 800];
        for max in bounds {
            let pause = b.next_pause();
            let max = Duration::from_millis(max);
            assert!(pause >= max / 2 && pause <= max, "{pause:?} within {max:?}");
        }
        b.reset();
        assert!(b.next_pause() <= Duration::from_millis(100));
    }
}
