//! Throttling in the key-value store: [`login`] attempts per account and per client address,
//! [`registration`] attempts per client address and from everyone.
//!
//! Every limit is a counter that lives for a fixed window from its first count
//! (`Kv::incr_in_window`). An attempt is counted *before* any work is done for it and refused
//! when the count passes the limit, in one atomic step: concurrent attempts cannot all pass a
//! check together, so a limit of five lets exactly five through.

pub mod login;
pub mod registration;

use std::time::Duration;

/// A refusal: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

/// `Ok` while `count` is within `limit`; otherwise a refusal until the window (`left`) ends.
fn within(count: u64, limit: u64, left: Duration) -> Result<(), Throttled> {
    if count > limit {
        Err(Throttled {
            retry_after: left.max(Duration::from_secs(1)),
        })
    } else {
        Ok(())
    }
}
