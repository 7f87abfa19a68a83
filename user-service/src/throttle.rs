//! Throttling of failed logins, per account and per client address, in the key-value store.
//!
//! Each failed login adds one to `throttle:user:<account>` and `throttle:ip:<address>`; a
//! counter lives for a fixed window from its first failure. Once a counter has reached its
//! limit, logins for that account (or from that address) are refused with 429 and
//! `Retry-After` until the window ends — before any database lookup or password hashing is
//! done for the address, and before hashing for the account. A successful login clears the
//! account's counter (not the address's, so that one good password does not reset a
//! spraying attack). Concurrent attempts that pass the check together may overshoot a limit
//! by their number, which the bcrypt queue bounds.

use std::net::IpAddr;
use std::time::Duration;

use common::kv::{Kv, KvError};

use crate::config::ThrottleConfig;

/// A refusal: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

/// The failed-login counters.
#[derive(Clone, Debug)]
pub struct Throttle {
    kv: Kv,
    limits: ThrottleConfig,
}

fn account_key(account: &str) -> String {
    format!("throttle:user:{}", account.to_lowercase())
}

fn ip_key(ip: &IpAddr) -> String {
    format!("throttle:ip:{ip}")
}

impl Throttle {
    pub fn new(kv: Kv, limits: ThrottleConfig) -> Self {
        Self { kv, limits }
    }

    /// Refuses when the client address has failed too often.
    pub async fn check_ip(&self, ip: Option<IpAddr>) -> Result<Result<(), Throttled>, KvError> {
        match ip {
            Some(ip) => {
                self.check(&ip_key(&ip), self.limits.max_failures_per_ip)
                    .await
            }
            None => Ok(Ok(())),
        }
    }

    /// Refuses when the account (its lowercased name) has failed too often.
    pub async fn check_account(&self, account: &str) -> Result<Result<(), Throttled>, KvError> {
        self.check(&account_key(account), self.limits.max_failures_per_account)
            .await
    }

    async fn check(&self, key: &str, limit: u64) -> Result<Result<(), Throttled>, KvError> {
        let (count, left) = self.kv.counter(key).await?;
        if count >= limit {
            Ok(Err(Throttled {
                retry_after: left.max(Duration::from_secs(1)),
            }))
        } else {
            Ok(Ok(()))
        }
    }

    /// Counts a failed login against the account and the address.
    pub async fn record_failure(&self, account: &str, ip: Option<IpAddr>) -> Result<(), KvError> {
        self.kv
            .incr_in_window(&account_key(account), self.limits.window)
            .await?;
        if let Some(ip) = ip {
            self.kv
                .incr_in_window(&ip_key(&ip), self.limits.window)
                .await?;
        }
        Ok(())
    }

    /// Forgets the account's failures after a successful login.
    pub async fn clear_account(&self, account: &str) -> Result<(), KvError> {
        self.kv.del(&account_key(account)).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limits_each_key_separately() {
        let limits = ThrottleConfig {
            max_failures_per_account: 2,
            max_failures_per_ip: 3,
            window: Duration::from_secs(60),
        };
        let t = Throttle::new(Kv::memory("t:"), limits);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        t.record_failure("Alice", Some(ip)).await.unwrap();
        assert!(t.check_account("alice").await.unwrap().is_ok());
        t.record_failure("alice", Some(ip)).await.unwrap();
        let refused = t.check_account("ALICE").await.unwrap().unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(58));
        assert!(t.check_ip(Some(ip)).await.unwrap().is_ok());
        t.record_failure("bob", Some(ip)).await.unwrap();
        assert!(t.check_ip(Some(ip)).await.unwrap().is_err());
        assert!(t.check_ip(None).await.unwrap().is_ok());
        t.clear_account("alice").await.unwrap();
        assert!(t.check_account("alice").await.unwrap().is_ok());
    }
}
