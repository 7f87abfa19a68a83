//! Per-user caps on what costs outbound fetches: scrape jobs per minute and forced refreshes
//! per hour (`SCRAPE_JOBS_PER_USER_PER_MINUTE`, `SCRAPE_FORCED_PER_USER_PER_HOUR`).
//!
//! Each request is counted *before* it is let through, with one atomic increment per counter
//! (`quota:<kind>:<user id>` in the key-value store, living for its window from the first
//! count), so a burst of concurrent requests cannot slip past the cap together: the first N
//! get through and the rest are refused until the window ends. A refused request still
//! counts, which only makes hammering keep the window full.

use std::time::Duration;

use common::kv::{Kv, KvError};

use crate::config::QuotaLimits;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// A request that queues a scrape job (or joins the caller's pending one).
    Job,
    /// A forced refresh, which bypasses fresh data.
    ForcedRefresh,
}

impl Spend {
    fn name(self) -> &'static str {
        match self {
            Spend::Job => "jobs",
            Spend::ForcedRefresh => "forced",
        }
    }

    fn window(self) -> Duration {
        match self {
            Spend::Job => Duration::from_secs(60),
            Spend::ForcedRefresh => Duration::from_secs(3600),
        }
    }

    /// The `detail` of the refusal.
    pub fn refusal(self) -> &'static str {
        match self {
            Spend::Job => "Too many scrape requests; try again later",
            Spend::ForcedRefresh => "Too many forced refreshes; try again later",
        }
    }
}

/// Over the cap: refused until `retry_after` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    pub spend: Spend,
    pub retry_after: Duration,
}

/// The per-user counters.
#[derive(Clone, Debug)]
pub struct Quotas {
    kv: Kv,
    limits: QuotaLimits,
}

impl Quotas {
    pub fn new(kv: Kv, limits: QuotaLimits) -> Self {
        Self { kv, limits }
    }

    /// Counts one `spend` of user `user_id`; `Err` when that goes over the cap.
    pub async fn spend(
        &self,
        user_id: i64,
        spend: Spend,
    ) -> Result<Result<(), OverQuota>, KvError> {
        let limit = match spend {
            Spend::Job => self.limits.jobs_per_minute,
            Spend::ForcedRefresh => self.limits.forced_per_hour,
        };
        let key = format!("quota:{}:{user_id}", spend.name());
        let (count, left) = self.kv.incr_in_window(&key, spend.window()).await?;
        if count <= limit {
            return Ok(Ok(()));
        }
        Ok(Err(OverQuota {
            spend,
            retry_after: left.max(Duration::from_secs(1)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_user_and_kind_has_its_own_cap() {
        let limits = QuotaLimits {
            jobs_per_minute: 2,
            forced_per_hour: 1,
        };
        let q = Quotas::new(Kv::memory("quota-test:"), limits);
        assert_eq!(q.spend(1, Spend::Job).await.unwrap(), Ok(()));
        assert_eq!(q.spend(1, Spend::Job).await.unwrap(), Ok(()));
        let over = q.spend(1, Spend::Job).await.unwrap().unwrap_err();
        assert_eq!(over.spend, Spend::Job);
        assert!(
            over.retry_after > Duration::from_secs(58)
                && over.retry_after <= Duration::from_secs(60),
            "{over:?}"
        );
        assert_eq!(q.spend(2, Spend::Job).await.unwrap(), Ok(()));
        assert_eq!(q.spend(1, Spend::ForcedRefresh).await.unwrap(), Ok(()));
        let over = q.spend(1, Spend::ForcedRefresh).await.unwrap().unwrap_err();
        assert!(over.retry_after > Duration::from_secs(3590), "{over:?}");
    }
}
