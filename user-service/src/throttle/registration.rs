//! Throttling of registrations: per client address and from everyone together.
//!
//! Every attempt counts, whether its name turns out taken or not: the count comes before the
//! check, so registration cannot be used to probe which names exist faster than the limit
//! (a taken name answers 409 without any hashing, which made it a cheap oracle).
//!
//! The defaults — 10 per address per hour, 60 per minute from everyone — are far above what
//! people signing up do (one account each, a family or a class behind one address a handful),
//! and low enough that registrations stay a small share of the hashing capacity: 60 bcrypts a
//! minute at cost 12 is a quarter of one core. The per-address limit is checked first, and an
//! attempt it refuses is not counted against everyone, so one noisy address cannot use up the
//! global budget alone; many addresses together can, which then refuses registrations (never
//! logins) until the minute is over — the price of bounding the hashing work.

use std::net::IpAddr;

use common::kv::{Kv, KvError};

use super::{within, Throttled};
use crate::config::RegistrationLimits;

/// The registration counters.
#[derive(Clone, Debug)]
pub struct RegistrationThrottle {
    kv: Kv,
    limits: RegistrationLimits,
}

impl RegistrationThrottle {
    pub fn new(kv: Kv, limits: RegistrationLimits) -> Self {
        Self { kv, limits }
    }

    /// Counts a registration attempt from `ip`; refused when its address, or everyone
    /// together, is over the limit.
    pub async fn admit(&self, ip: Option<IpAddr>) -> Result<Result<(), Throttled>, KvError> {
        if let Some(ip) = ip {
            let key = format!("throttle:register:ip:{ip}");
            let (count, left) = self.kv.incr_in_window(&key, self.limits.window).await?;
            if let Err(refused) = within(count, self.limits.max_per_ip, left) {
                return Ok(Err(refused));
            }
        }
        let (count, left) = self
            .kv
            .incr_in_window("throttle:register:all", self.limits.global_window)
            .await?;
        Ok(within(count, self.limits.max_global, left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn per_address_then_global() {
        let limits = RegistrationLimits {
            max_per_ip: 2,
            window: Duration::from_secs(3600),
            max_global: 3,
            global_window: Duration::from_secs(60),
        };
        let t = RegistrationThrottle::new(Kv::memory("t:"), limits);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(t.admit(Some(a)).await.unwrap().is_ok());
        assert!(t.admit(Some(a)).await.unwrap().is_ok());
        let refused = t.admit(Some(a)).await.unwrap().unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(3500));
        // The refused attempts of `a` did not use up the global budget: `b` gets the last one.
        assert!(t.admit(Some(a)).await.unwrap().is_err());
        assert!(t.admit(Some(b)).await.unwrap().is_ok());
        let global = t.admit(None).await.unwrap().unwrap_err();
        assert!(global.retry_after <= Duration::from_secs(60));
    }
}
