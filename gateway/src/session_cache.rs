//! The gateway's memory of live sessions, so that a protected request normally costs no
//! round trip to the session store.
//!
//! A session found live in the store is remembered for a short time (`SESSION_CACHE_TTL_MS`)
//! with the user id it belongs to (a token is served from here only if its `sub` matches).
//! Freshness does not rest on that time alone:
//! - every session end is published by [`common::auth::Sessions::revoke`] in the same Redis
//!   transaction as the delete, and the gateway's subscriber evicts the id at once;
//! - the gateway evicts a session itself when it relays that session's successful logout, so
//!   through this gateway the token is refused from the moment the logout response leaves;
//! - the cache is used only while the subscription is up ([`SessionCache::start_listening`]):
//!   when it drops, everything is forgotten and every request asks the store again;
//! - an answer from the store that started before an eviction is never cached (each shard
//!   has an epoch, bumped by every eviction, and a lookup carries the epoch it started in).
//!
//! The time-to-live only bounds what a silently broken subscription could cost.
//!
//! Why this is written here rather than taken from a cache crate (moka, quick_cache, ...):
//! those give the time-to-live and the size bound, which are the easy ten lines below, but
//! not the two properties the revocation guarantee rests on. The race guard needs "insert
//! only if no eviction of this key happened since the lookup started", checked atomically
//! with the insert — an eviction usually concerns a key that is *not* cached yet (the lookup
//! is in flight), so a library would need tombstones for absent keys and a compare on them;
//! the shard epoch here is exactly that, for the price of a counter. The listening gate
//! (serve nothing, and drop late inserts, while the invalidation feed is down) must be
//! atomic with the same inserts. Built on a library, both would remain hand-written around
//! it, with the library's own locking in between.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

/// Live sessions by id, each with the value the gateway derived from it.
pub struct SessionCache<T> {
    shards: Vec<RwLock<Shard<T>>>,
    ttl: Duration,
    max_per_shard: usize,
    listening: AtomicBool,
}

struct Shard<T> {
    entries: HashMap<Box<str>, (T, Instant)>,
    /// Bumped by every eviction in this shard.
    epoch: u64,
}

/// Taken before the store is asked; an insert with an outdated ticket is dropped.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    shard: usize,
    epoch: u64,
}

impl<T: Clone> SessionCache<T> {
    /// A cache keeping entries for `ttl`, at most about `max_entries` of them; a zero `ttl`
    /// or `max_entries` disables it. It serves nothing until [`Self::start_listening`].
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(Shard {
                        entries: HashMap::new(),
                        epoch: 0,
                    })
                })
                .collect(),
            ttl,
            max_per_shard: max_entries.div_ceil(SHARDS),
            listening: AtomicBool::new(false),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.max_per_shard > 0
    }

    fn shard_of(sid: &str) -> usize {
        let h = sid
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        h as usize % SHARDS
    }

    fn read(&self, shard: usize) -> RwLockReadGuard<'_, Shard<T>> {
        // Every write is a single insert, remove or clear: a poisoned lock holds a whole map.
        self.shards[shard].read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, shard: usize) -> RwLockWriteGuard<'_, Shard<T>> {
        self.shards[shard]
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The remembered value of a live session, if any and still fresh.
    pub fn get(&self, sid: &str) -> Option<T> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let shard = self.read(Self::shard_of(sid));
        match shard.entries.get(sid) {
            Some((value, fresh_until)) if Instant::now() < *fresh_until => Some(value.clone()),
            _ => None,
        }
    }

    /// What an insert after asking the store needs; `None` while nothing may be cached.
    pub fn ticket(&self, sid: &str) -> Option<Ticket> {
        if !self.enabled() || !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let shard = Self::shard_of(sid);
        let epoch = self.read(shard).epoch;
        Some(Ticket { shard, epoch })
    }

    /// Remembers a session the store said was live, unless an eviction happened in between.
    pub fn insert(&self, sid: &str, value: T, ticket: Ticket) {
        let mut shard = self.write(ticket.shard);
        if shard.epoch != ticket.epoch || !self.listening.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if shard.entries.len() >= self.max_per_shard {
            shard
                .entries
                .retain(|_, (_, fresh_until)| *fresh_until > now);
            if shard.entries.len() >= self.max_per_shard {
                return;
            }
        }
        shard.entries.insert(sid.into(), (value, now + self.ttl));
    }

    /// Forgets a session (it ended).
    pub fn evict(&self, sid: &str) {
        let mut shard = self.write(Self::shard_of(sid));
        shard.epoch += 1;
        shard.entries.remove(sid);
    }

    fn forget_all(&self) {
        for i in 0..SHARDS {
            let mut shard = self.write(i);
            shard.epoch += 1;
            shard.entries.clear();
        }
    }

    /// The invalidation feed is subscribed: start caching, from nothing.
    pub fn start_listening(&self) {
        self.forget_all();
        self.listening.store(true, Ordering::Release);
    }

    /// The feed is lost: stop caching and forget everything.
    pub fn stop_listening(&self) {
        self.listening.store(false, Ordering::Release);
        self.forget_all();
    }

    /// How many entries are held (fresh or not yet swept).
    #[cfg(test)]
    fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.read(i).entries.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening(ttl_ms: u64, max: usize) -> SessionCache<u32> {
        let cache = SessionCache::new(Duration::from_millis(ttl_ms), max);
        cache.start_listening();
        cache
    }

    #[test]
    fn serves_nothing_until_listening() {
        let cache = SessionCache::new(Duration::from_secs(5), 100);
        assert!(cache.ticket("a").is_none());
        cache.start_listening();
        let t = cache.ticket("a").unwrap();
        cache.insert("a", 1, t);
        assert_eq!(cache.get("a"), Some(1));
    }

    #[test]
    fn losing_the_feed_forgets_everything_and_refuses_inserts() {
        let cache = listening(5000, 100);
        let t = cache.ticket("a").unwrap();
        cache.insert("a", 1, t);
        let late = cache.ticket("b").unwrap();
        cache.stop_listening();
        assert_eq!(cache.get("a"), None);
        assert!(cache.ticket("a").is_none());
        cache.insert("b", 2, late);
        cache.start_listening();
        assert_eq!(cache.get("a"), None, "nothing survives a resubscription");
        assert_eq!(cache.get("b"), None, "a lookup from before is not cached");
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn an_answer_that_raced_an_eviction_is_not_cached() {
        let cache = listening(5000, 100);
        // A lookup starts, the session ends meanwhile, then the (stale) answer arrives.
        let ticket = cache.ticket("s").unwrap();
        cache.evict("s");
        cache.insert("s", 7, ticket);
        assert_eq!(cache.get("s"), None);
        // A lookup that starts after the eviction is cached normally.
        let ticket = cache.ticket("s").unwrap();
        cache.insert("s", 8, ticket);
        assert_eq!(cache.get("s"), Some(8));
        cache.evict("s");
        assert_eq!(cache.get("s"), None);
    }

    #[test]
    fn entries_go_stale_after_the_ttl() {
        let cache = listening(20, 100);
        let t = cache.ticket("a").unwrap();
        cache.insert("a", 1, t);
        assert_eq!(cache.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn stays_within_its_size_and_can_be_disabled() {
        let cache = listening(5000, 32);
        for i in 0..1000 {
            let sid = format!("sid-{i}");
            let t = cache.ticket(&sid).unwrap();
            cache.insert(&sid, i, t);
        }
        assert!(cache.len() <= 32, "{} entries", cache.len());

        let off = listening(0, 100);
        assert!(off.ticket("a").is_none());
        let off = listening(5000, 0);
        assert!(off.ticket("a").is_none());
    }
}
