//! Throttling of password logins, per client address and per account.
//!
//! # Counting
//!
//! Every attempt is counted before its password is checked (see [`super`]): first against its
//! address (`throttle:ip:<address>`, `LOGIN_MAX_FAILURES_PER_IP` per window) before any
//! database lookup, then against the account (`LOGIN_MAX_FAILURES_PER_ACCOUNT`) before any
//! hashing. Forty simultaneous guesses against a limit of five get five 401s and thirty-five
//! 429s. The limits are about *failures*, so a success gives its count back:
//!
//! * the address: a success adds one to `throttle:ip-ok:<address>`, a counter that ends with
//!   (never after) the address's window, and refusals look at attempts minus successes. A
//!   success only ever pays for itself: it does not reset the failures of a spraying attack,
//!   and successes of one window cannot buy failures in the next;
//! * the account: a success clears its counter, as before.
//!
//! # Known addresses: why the owner is not locked out
//!
//! A hard per-account lock lets anyone lock anyone out: five failures from anywhere, repeated
//! every window, and the owner gets 429 for ever. So an address that has logged in to an
//! account successfully is remembered for it (`login:known:<address>:<account>`, for
//! `LOGIN_KNOWN_ADDRESS_DAYS`, 30 by default; 0 turns this off). Attempts from a known address
//! are counted on their own (`throttle:user-at:<address>:<account>`, same limit) and are not
//! stopped by the account's counter, which only unknown addresses fill and obey.
//!
//! The trade-off, chosen deliberately:
//!
//! * an attacker who exhausts an account's limit locks out only *unknown* addresses: the owner
//!   at home or at work still logs in, while the owner on a new network waits for the window
//!   (15 minutes), as everyone did before;
//! * a guesser on an address the owner used (a shared NAT, a café) gets its own five guesses
//!   per window instead of sharing the account's five: at most one extra allowance per such
//!   address, still bounded by the per-address limit;
//! * a success from an unknown address still clears the account's counter (the owner on a new
//!   network resets it); a success from a known address clears only that address's counter,
//!   so the owner's daily logins do not hand an attacker five fresh guesses each time.
//!
//! Progressive delays were not chosen because a delay still costs a server slot per attempt
//! and punishes the owner as much as the attacker; a CAPTCHA would need a client flow the
//! original API does not have. Both remain possible on top of this.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::kv::{Kv, KvError};

use super::{within, Throttled};
use crate::config::ThrottleConfig;

/// How much earlier than the address's window a success credit ends, so that it never
/// outlives the attempts it pays for (clock steps and round trips included).
const CREDIT_MARGIN: Duration = Duration::from_secs(1);

/// The login counters and the known addresses.
#[derive(Clone, Debug)]
pub struct LoginThrottle {
    kv: Kv,
    limits: ThrottleConfig,
    known_ttl: Duration,
}

/// An attempt counted against its address.
#[derive(Debug)]
pub struct AddressCounted {
    ip: Option<IpAddr>,
    /// When the address's window ends (for the success credit).
    window_ends: Option<Instant>,
}

/// An attempt counted against its address and its account: it may check the password.
#[derive(Debug)]
pub struct Attempt {
    address: AddressCounted,
    account: String,
    /// Whether the address has logged in to this account before.
    known: bool,
}

fn ip_key(ip: &IpAddr) -> String {
    format!("throttle:ip:{ip}")
}

fn ip_success_key(ip: &IpAddr) -> String {
    format!("throttle:ip-ok:{ip}")
}

// An unknown login name is counted as typed, so it may contain anything: each kind of key
// has a prefix of its own, and in keys naming an address the address (never typed by the
// client) comes before the name. No typed name can reach another kind's counter.

fn account_key(account: &str) -> String {
    format!("throttle:user:{account}")
}

fn known_account_key(account: &str, ip: &IpAddr) -> String {
    format!("throttle:user-at:{ip}:{account}")
}

fn known_key(account: &str, ip: &IpAddr) -> String {
    format!("login:known:{ip}:{account}")
}

impl LoginThrottle {
    /// Counters in `kv`; addresses stay known for `known_ttl` (zero: never remembered).
    pub fn new(kv: Kv, limits: ThrottleConfig, known_ttl: Duration) -> Self {
        Self {
            kv,
            limits,
            known_ttl,
        }
    }

    /// Counts an attempt against its client address (none known: not counted); refused when
    /// the address has failed too often.
    pub async fn count_address(
        &self,
        ip: Option<IpAddr>,
    ) -> Result<Result<AddressCounted, Throttled>, KvError> {
        let Some(ip) = ip else {
            return Ok(Ok(AddressCounted {
                ip: None,
                window_ends: None,
            }));
        };
        let (count, left) = self
            .kv
            .incr_in_window(&ip_key(&ip), self.limits.window)
            .await?;
        if count > self.limits.max_failures_per_ip {
            let (successes, _) = self.kv.counter(&ip_success_key(&ip)).await?;
            if let Err(refused) = within(
                count.saturating_sub(successes),
                self.limits.max_failures_per_ip,
                left,
            ) {
                return Ok(Err(refused));
            }
        }
        Ok(Ok(AddressCounted {
            ip: Some(ip),
            window_ends: Some(Instant::now() + left),
        }))
    }

    /// Counts the attempt against `account` (its canonical, lowercase name): on the account's
    /// counter from an unknown address, on the address's own counter for this account from a
    /// known one. Refused over the limit.
    pub async fn count_account(
        &self,
        address: AddressCounted,
        account: &str,
    ) -> Result<Result<Attempt, Throttled>, KvError> {
        let known = match &address.ip {
            Some(ip) if !self.known_ttl.is_zero() => {
                self.kv.get(&known_key(account, ip)).await?.is_some()
            }
            _ => false,
        };
        let key = match (&address.ip, known) {
            (Some(ip), true) => known_account_key(account, ip),
            _ => account_key(account),
        };
        let (count, left) = self.kv.incr_in_window(&key, self.limits.window).await?;
        Ok(
            within(count, self.limits.max_failures_per_account, left).map(|()| Attempt {
                address,
                account: account.to_owned(),
                known,
            }),
        )
    }

    /// Records that `attempt` logged in: its count is given back (see the module
    /// documentation) and its address becomes known to the account.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), KvError> {
        let Attempt {
            address,
            account,
            known,
        } = attempt;
        let Some(ip) = address.ip else {
            self.kv.del(&account_key(&account)).await?;
            return Ok(());
        };
        if known {
            self.kv.del(&known_account_key(&account, &ip)).await?;
        } else {
            self.kv.del(&account_key(&account)).await?;
        }
        if !self.known_ttl.is_zero() {
            self.kv
                .set_ex(&known_key(&account, &ip), "1", self.known_ttl)
                .await?;
        }
        let left = address.window_ends.map_or(Duration::ZERO, |ends| {
            ends.saturating_duration_since(Instant::now())
                .saturating_sub(CREDIT_MARGIN)
        });
        // Within the margin of the window's end the credit is skipped: the address is
        // over-counted for at most that second, never under-counted.
        if left >= Duration::from_secs(1) {
            self.kv.incr_in_window(&ip_success_key(&ip), left).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn throttle(per_account: u64, per_ip: u64) -> LoginThrottle {
        let limits = ThrottleConfig {
            max_failures_per_account: per_account,
            max_failures_per_ip: per_ip,
            window: Duration::from_secs(60),
        };
        LoginThrottle::new(Kv::memory("t:"), limits, DAY)
    }

    async fn attempt(t: &LoginThrottle, account: &str, ip: &str) -> Result<Attempt, Throttled> {
        let address = t.count_address(Some(ip.parse().unwrap())).await.unwrap()?;
        t.count_account(address, account).await.unwrap()
    }

    #[tokio::test]
    async fn attempts_count_before_the_check() {
        let t = throttle(2, 100);
        assert!(attempt(&t, "alice", "192.0.2.1").await.is_ok());
        assert!(attempt(&t, "alice", "192.0.2.2").await.is_ok());
        let refused = attempt(&t, "alice", "192.0.2.3").await.unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(58));
        assert!(attempt(&t, "bob", "192.0.2.3").await.is_ok());
    }

    #[tokio::test]
    async fn a_known_address_passes_the_account_lock_on_its_own_count() {
        let t = throttle(2, 100);
        let first = attempt(&t, "alice", "198.51.100.7").await.unwrap();
        t.succeeded(first).await.unwrap();
        for _ in 0..2 {
            attempt(&t, "alice", "203.0.113.66").await.unwrap();
        }
        assert!(attempt(&t, "alice", "203.0.113.66").await.is_err());
        assert!(
            attempt(&t, "alice", "192.0.2.200").await.is_err(),
            "unknown"
        );
        // The owner's address has its own two attempts.
        assert!(attempt(&t, "alice", "198.51.100.7").await.is_ok());
        let ok = attempt(&t, "alice", "198.51.100.7").await.unwrap();
        assert!(attempt(&t, "alice", "198.51.100.7").await.is_err());
        // Its success clears its own counter, not the account's.
        t.succeeded(ok).await.unwrap();
        assert!(attempt(&t, "alice", "198.51.100.7").await.is_ok());
        assert!(attempt(&t, "alice", "192.0.2.200").await.is_err());
    }

    #[tokio::test]
    async fn no_typed_name_reaches_a_known_address_counter() {
        let t = throttle(2, 100);
        let home = "198.51.100.7";
        t.succeeded(attempt(&t, "alice", home).await.unwrap())
            .await
            .unwrap();
        for name in [
            format!("alice:ip:{home}"),
            format!("{home}:alice"),
            format!("user-at:{home}:alice"),
        ] {
            for _ in 0..3 {
                let _ = attempt(&t, &name, "203.0.113.66").await;
            }
        }
        assert!(attempt(&t, "alice", home).await.is_ok());
        assert!(attempt(&t, "alice", home).await.is_ok());
    }

    #[tokio::test]
    async fn an_address_is_limited_by_failures_not_by_successes() {
        let t = throttle(100, 3);
        for i in 0..5 {
            let a = attempt(&t, &format!("user{i}"), "192.0.2.9").await.unwrap();
            t.succeeded(a).await.unwrap();
        }
        for i in 0..3 {
            attempt(&t, &format!("ghost{i}"), "192.0.2.9")
                .await
                .unwrap();
        }
        assert!(attempt(&t, "ghost9", "192.0.2.9").await.is_err());
        // A success after the lock does not reopen it.
        assert!(attempt(&t, "user0", "192.0.2.9").await.is_err());
    }
}
