//! The key-value backend for sessions, login throttling and caches: Redis, or an in-process
//! map when no `REDIS_URL` is set (the one-command mode).
//!
//! Both backends have the same semantics (string values, per-key expiry, an atomic counter
//! with a window). Every key is prefixed so that tests, and several platforms sharing one
//! Redis, never see each other's keys. Redis errors are reported, never papered over: callers
//! turn them into 503 and fail closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

/// The backend could not answer (Redis down, timed out, or refused the command).
#[derive(Debug, thiserror::Error)]
#[error("key-value store unavailable: {0}")]
pub struct KvError(String);

impl From<redis::RedisError> for KvError {
    fn from(e: redis::RedisError) -> Self {
        KvError(e.to_string())
    }
}

/// How long to wait for Redis before calling it unavailable.
#[derive(Debug, Clone, Copy)]
pub struct RedisTimeouts {
    pub connect: Duration,
    pub response: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            response: Duration::from_millis(500),
        }
    }
}

/// A handle to the key-value store; cheap to clone.
#[derive(Clone)]
pub struct Kv {
    backend: Backend,
    prefix: Arc<str>,
}

#[derive(Clone)]
enum Backend {
    Redis(Redis),
    Memory(Arc<MemoryMap>),
}

/// A multiplexed connection for commands, and the client that opens subscriptions.
#[derive(Clone)]
struct Redis {
    conn: ConnectionManager,
    client: redis::Client,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("backend", &self.backend_name())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Kv {
    /// An in-process store; clones share the same map.
    pub fn memory(prefix: &str) -> Self {
        Self {
            backend: Backend::Memory(Arc::new(MemoryMap::default())),
            prefix: prefix.into(),
        }
    }

    /// Connects to Redis. The connection reconnects by itself after Redis comes back; while it
    /// is down every call fails quickly with [`KvError`].
    ///
    /// The first connection is made lazily when Redis is unreachable at start-up, so that a
    /// service can start before Redis and recover when it appears; a malformed URL is an error.
    pub async fn redis(url: &str, prefix: &str, timeouts: RedisTimeouts) -> Result<Self, KvError> {
        let client =
            redis::Client::open(url).map_err(|e| KvError(format!("invalid REDIS_URL: {e}")))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            backend: Backend::Redis(Redis {
                conn,
                client,
                connect_timeout: timeouts.connect,
            }),
            prefix: prefix.into(),
        })
    }

    /// `"redis"` or `"memory"`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Redis(_) => "redis",
            Backend::Memory(_) => "memory",
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// Whether the backend answers (for readiness checks).
    pub async fn ping(&self) -> Result<(), KvError> {
        match &self.backend {
            Backend::Redis(Redis { conn, .. }) => {
                let mut conn = conn.clone();
                let _: String = redis::cmd("PING").query_async(&mut conn).await?;
                Ok(())
            }
            Backend::Memory(_) => Ok(()),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Redis(Redis { conn, .. }) => Ok(conn.clone().get(key).await?),
            Backend::Memory(map) => Ok(map.get(&key)),
        }
    }

    /// Sets `key` to `value`, expiring after `ttl`.
    pub async fn set_ex(&self, key: &str, value: &str, ttl: Duration) -> Result<(), KvError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Redis(Redis { conn, .. }) => {
                let ms = ttl.as_millis().max(1) as u64;
                let _: () = redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(())
            }
            Backend::Memory(map) => {
                map.set(key, value.to_owned(), ttl);
                Ok(())
            }
        }
    }

    /// Removes `key`; true when it existed.
    pub async fn del(&self, key: &str) -> Result<bool, KvError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Redis(Redis { conn, .. }) => {
                let n: u64 = conn.clone().del(key).await?;
                Ok(n > 0)
            }
            Backend::Memory(map) => Ok(map.del(&key)),
        }
    }

    /// Removes `key` and, in the same transaction, publishes `message` on `channel` (both
    /// prefixed like keys); true when the key existed. The in-process store has no
    /// subscribers, so there it only removes.
    pub async fn del_and_publish(
        &self,
        key: &str,
        channel: &str,
        message: &str,
    ) -> Result<bool, KvError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Redis(Redis { conn, .. }) => {
                let (removed, _receivers): (u64, u64) = redis::pipe()
                    .atomic()
                    .del(&key)
                    .publish(self.key(channel), message)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(removed > 0)
            }
            Backend::Memory(map) => Ok(map.del(&key)),
        }
    }

    /// Adds `member` to the set at `key`, which lives at least `ttl` from now (an existing
    /// longer life is kept).
    pub async fn add_to_set(&self, key: &str, member: &str, ttl: Duration) -> Result<(), KvError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Redis(Redis { conn, .. }) => {
                let ms = ttl.as_millis().max(1) as u64;
                let _: (u64, u64, u64) = redis::pipe()
                    .atomic()
                    .cmd("SADD")
                    .arg(&key)
                    .arg(member)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(ms)
                    .arg("NX")
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(ms)
                    .arg("GT")
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(())
            }
            Backend::Memory(map) => {
                map.add_to_set(key, member, ttl);
                Ok(())
            }
        }
    }

    /// Removes the set at `key` and returns its members, in one step.
    pub async fn take_set(&self, key: &str) -> Result<Vec<String>, KvError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Redis(Redis { conn, .. }) => {
                let (members, _): (Vec<String>, u64) = redis::pipe()
                    .atomic()
                    .smembers(&key)
                    .del(&key)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(members)
            }
            Backend::Memory(map) => Ok(map.take_set(&key)),
        }
    }

    /// Subscribes to `channel` (prefixed like keys) on a connection of its own. `None` for
    /// the in-process store, which publishes nothing: a caller must not cache what it
    /// cannot hear about.
    pub async fn subscribe(&self, channel: &str) -> Result<Option<Subscription>, KvError> {
        let Backend::Redis(redis) = &self.backend else {
            return Ok(None);
        };
        let connect = async {
            let mut pubsub = redis.client.get_async_pubsub().await?;
            pubsub.subscribe(self.key(channel)).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::time::timeout(redis.connect_timeout, connect)
            .await
            .map_err(|_| KvError("timed out subscribing".into()))??;
        Ok(Some(Subscription(pubsub.into_on_message())))
    }

    /// Adds one to the counter at `key`, which starts a window of length `window` when it is
    /// created. Returns the count and how long the window still runs.
    pub async fn incr_in_window(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<(u64, Duration), KvError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Redis(Redis { conn, .. }) => {
                let ms = window.as_millis().max(1) as u64;
                let (count, _, ttl_ms): (u64, i64, i64) = redis::pipe()
                    .atomic()
                    .cmd("INCR")
                    .arg(&key)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(ms)
                    .arg("NX")
                    .cmd("PTTL")
                    .arg(&key)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok((count, Duration::from_millis(ttl_ms.max(0) as u64)))
            }
            Backend::Memory(map) => Ok(map.incr(key, window)),
        }
    }

    /// The counter at `key` and how long its window still runs; `(0, 0)` when there is none.
    pub async fn counter(&self, key: &str) -> Result<(u64, Duration), KvError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Redis(Redis { conn, .. }) => {
                let (count, ttl_ms): (Option<u64>, i64) = redis::pipe()
                    .cmd("GET")
                    .arg(&key)
                    .cmd("PTTL")
                    .arg(&key)
                    .query_async(&mut conn.clone())
                    .await?;
                Ok((
                    count.unwrap_or(0),
                    Duration::from_millis(ttl_ms.max(0) as u64),
                ))
            }
            Backend::Memory(map) => Ok(map.counter(&key)),
        }
    }
}

/// Messages published on a subscribed channel.
pub struct Subscription(redis::aio::PubSubStream);

impl Subscription {
    /// The next message; `None` once the connection is lost (subscribe again).
    pub async fn next(&mut self) -> Option<String> {
        use futures_util::StreamExt;
        loop {
            let msg = self.0.next().await?;
            if let Ok(text) = msg.get_payload::<String>() {
                return Some(text);
            }
        }
    }
}

/// The in-process backend: a map with per-entry expiry, swept now and then.
#[derive(Default)]
struct MemoryMap {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    entries: HashMap<String, (String, Instant)>,
    sets: HashMap<String, (std::collections::HashSet<String>, Instant)>,
    writes_since_sweep: usize,
}

const SWEEP_EVERY_WRITES: usize = 1024;

impl MemoryMap {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // A panic while holding the lock cannot leave the map half-written (every operation
        // is a single insert or remove), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &str) -> Option<String> {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some((v, exp)) if *exp > now => Some(v.clone()),
            Some(_) => {
                inner.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn set(&self, key: String, value: String, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.entries.insert(key, (value, now + ttl));
        inner.after_write(now);
    }

    fn del(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        matches!(inner.entries.remove(key), Some((_, exp)) if exp > now)
    }

    fn incr(&self, key: String, window: Duration) -> (u64, Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        let entry = inner
            .entries
            .entry(key)
            .and_modify(|(v, exp)| {
                if *exp <= now {
                    *v = "0".into();
                    *exp = now + window;
                }
            })
            .or_insert_with(|| ("0".into(), now + window));
        let count = entry.0.parse::<u64>().unwrap_or(0) + 1;
        entry.0 = count.to_string();
        let remaining = entry.1.saturating_duration_since(now);
        inner.after_write(now);
        (count, remaining)
    }

    fn add_to_set(&self, key: String, member: &str, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        let until = now + ttl;
        let entry = inner
            .sets
            .entry(key)
            .or_insert_with(|| (Default::default(), until));
        if entry.1 <= now {
            entry.0.clear();
        }
        entry.1 = entry.1.max(until);
        entry.0.insert(member.to_owned());
        inner.after_write(now);
    }

    fn take_set(&self, key: &str) -> Vec<String> {
        let now = Instant::now();
        match self.lock().sets.remove(key) {
            Some((members, until)) if until > now => members.into_iter().collect(),
            _ => Vec::new(),
        }
    }

    fn counter(&self, key: &str) -> (u64, Duration) {
        let now = Instant::now();
        let inner = self.lock();
        match inner.entries.get(key) {
            Some((v, exp)) if *exp > now => {
                (v.parse().unwrap_or(0), exp.saturating_duration_since(now))
            }
            _ => (0, Duration::ZERO),
        }
    }
}

impl MemoryInner {
    fn after_write(&mut self, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY_WRITES {
            self.writes_since_sweep = 0;
            self.entries.retain(|_, (_, exp)| *exp > now);
            self.sets.retain(|_, (_, exp)| *exp > now);
        }
    }
}

/// Opens the store named by `REDIS_URL` (Redis) or, when unset, an in-process map; keys are
/// prefixed with `REDIS_KEY_PREFIX`. Timeouts: `REDIS_CONNECT_TIMEOUT_MS` (2000) and
/// `REDIS_RESPONSE_TIMEOUT_MS` (500).
pub async fn from_env() -> Result<Kv, crate::config::ConfigError> {
    use crate::config::{millis_or, var, var_or, ConfigError};
    let prefix = var_or("REDIS_KEY_PREFIX", "");
    match var("REDIS_URL") {
        None => Ok(Kv::memory(&prefix)),
        Some(url) => {
            let timeouts = RedisTimeouts {
                connect: millis_or("REDIS_CONNECT_TIMEOUT_MS", 2000)?,
                response: millis_or("REDIS_RESPONSE_TIMEOUT_MS", 500)?,
            };
            Kv::redis(&url, &prefix, timeouts)
                .await
                .map_err(|e| ConfigError::new("REDIS_URL", e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_expires_and_counts() {
        let kv = Kv::memory("t:");
        kv.set_ex("a", "1", Duration::from_millis(30))
            .await
            .unwrap();
        assert_eq!(kv.get("a").await.unwrap().as_deref(), Some("1"));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(kv.get("a").await.unwrap(), None);

        let (n, left) = kv
            .incr_in_window("c", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert!(left > Duration::from_secs(59));
        let (n, _) = kv
            .incr_in_window("c", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(kv.counter("c").await.unwrap().0, 2);
        assert!(kv.del("c").await.unwrap());
        assert_eq!(kv.counter("c").await.unwrap().0, 0);

        kv.add_to_set("s", "a", Duration::from_secs(60))
            .await
            .unwrap();
        kv.add_to_set("s", "b", Duration::from_millis(1))
            .await
            .unwrap();
        let mut members = kv.take_set("s").await.unwrap();
        members.sort();
        assert_eq!(members, ["a", "b"], "a shorter ttl keeps the longer life");
        assert!(kv.take_set("s").await.unwrap().is_empty());
    }
}
