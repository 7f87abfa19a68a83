//! Password hashing with bcrypt on a dedicated, bounded, low-priority thread pool.
//!
//! # The password scheme
//!
//! bcrypt reads at most 72 bytes of its input, so a longer password would be silently cut and
//! any two passwords sharing their first 72 bytes would be equal. To keep every byte:
//!
//! * a password of **at most 72 bytes** (UTF-8) is bcrypted as it is — exactly what passlib
//!   did in the original app, so its `$2b$12$…` hashes verify unchanged;
//! * a password of **more than 72 bytes** is bcrypted over `base64(SHA-256(password))` (44
//!   ASCII bytes, standard alphabet with padding): the digest depends on every byte, and
//!   base64 keeps NUL bytes out of bcrypt's input.
//!
//! The choice depends only on the password's length, so hashing and verifying always agree
//! and the stored hash is an ordinary bcrypt string (`$2b$<cost>$…`). (A legacy account whose
//! password was longer than 72 bytes — passlib truncated it — must reset its password.)
//!
//! # Why a pool
//!
//! A bcrypt at cost 12 takes a quarter of a second of CPU. Running it on the async runtime
//! would stall every other request, so hashing and verifying run on `BCRYPT_THREADS` threads
//! of their own, at a lower scheduling priority (nice 10 on Linux) so that cheap requests such
//! as `GET /auth/me` keep their latency during a login storm. Jobs wait in a queue of
//! `BCRYPT_QUEUE` places; when it is full the request is refused at once (503 with
//! `Retry-After`) instead of piling up work that would time out anyway.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::config::BcryptConfig;

/// bcrypt reads at most this many bytes of a password.
pub const BCRYPT_MAX_BYTES: usize = 72;

/// The nice value of the hashing threads (higher is lower priority).
const HASHER_NICENESS: i32 = 10;

/// Why a hash job did not run.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every thread is busy and the queue is full.
    #[error("password hashing queue is full")]
    Busy,
    /// The pool has stopped (the service is shutting down).
    #[error("password hashing pool has stopped")]
    Stopped,
    /// bcrypt itself failed (e.g. a stored hash that is not a bcrypt string).
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
}

/// What bcrypt is given for `password` (see the module documentation).
pub fn bcrypt_input(password: &str) -> Cow<'_, [u8]> {
    if password.len() > BCRYPT_MAX_BYTES {
        let digest = Sha256::digest(password.as_bytes());
        Cow::Owned(
            base64::engine::general_purpose::STANDARD
                .encode(digest)
                .into_bytes(),
        )
    } else {
        Cow::Borrowed(password.as_bytes())
    }
}

/// Hashes `password` at `cost` on the calling thread (blocking; prefer [`PasswordHasher`]).
pub fn hash_blocking(password: &str, cost: u32) -> Result<String, bcrypt::BcryptError> {
    bcrypt::hash(bcrypt_input(password), cost)
}

/// Whether `password` matches `hash`, on the calling thread (blocking).
pub fn verify_blocking(password: &str, hash: &str) -> Result<bool, bcrypt::BcryptError> {
    bcrypt::verify(bcrypt_input(password), hash)
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A handle to the hashing pool; cheap to clone. The threads stop once every handle is gone.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: SyncSender<Job>,
    cost: u32,
    /// A hash of a random password at `cost`, verified against when a login names no
    /// account, so that "unknown user" costs the same time as "wrong password".
    dummy_hash: String,
    /// Jobs accepted so far (tests check that a throttled login did no hashing).
    started: AtomicU64,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("cost", &self.inner.cost)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Starts the threads and computes the dummy hash (one bcrypt at `config.cost`).
    pub fn start(config: &BcryptConfig) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(config.queue.max(1));
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..config.threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("bcrypt-{i}"))
                .spawn(move || worker(&queue))?;
        }
        let random = uuid::Uuid::new_v4().simple().to_string();
        let dummy_hash = hash_blocking(&random, config.cost).map_err(std::io::Error::other)?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs,
                cost: config.cost,
                dummy_hash,
                started: AtomicU64::new(0),
            }),
        })
    }

    /// The bcrypt cost of new hashes.
    pub fn cost(&self) -> u32 {
        self.inner.cost
    }

    /// How many jobs the pool has accepted since it started.
    pub fn jobs_started(&self) -> u64 {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// A new hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let cost = self.inner.cost;
        self.run(move || hash_blocking(&password, cost))
            .await?
            .map_err(HashError::from)
    }

    /// Whether `password` matches `stored`; with `None` (no such account) the dummy hash is
    /// verified instead and the answer is always false.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.inner.dummy_hash.clone());
        let matched = self.run(move || verify_blocking(&password, &hash)).await?;
        match matched {
            Ok(ok) => Ok(ok && known),
            // A stored value that is not a bcrypt hash can never match; it is not a server
            // failure the client could retry.
            Err(e) if known => {
                tracing::warn!(error = %e, "stored password hash is not a valid bcrypt hash");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `f` on the pool and waits for its result; `Busy` at once when the queue is full.
    pub async fn run<T, F>(&self, f: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit(f)?.await.map_err(|_| HashError::Stopped)
    }

    /// Queues `f` without waiting; the receiver yields its result.
    fn submit<T, F>(&self, f: F) -> Result<oneshot::Receiver<T>, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The request gave up while this waited (timeout, client gone): skip the work.
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        });
        match self.inner.jobs.try_send(job) {
            Ok(()) => {
                self.inner.started.fetch_add(1, Ordering::Relaxed);
                Ok(rx)
            }
            Err(TrySendError::Full(_)) => Err(HashError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(HashError::Stopped),
        }
    }
}

fn worker(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // Hold the lock only while taking a job, never while running it.
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match next {
            Ok(job) => job(),
            Err(_) => return, // every sender dropped: the service has stopped
        }
    }
}

/// Lowers the calling thread's scheduling priority so hashing yields to request handling.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_priority() {
    // SAFETY: gettid and setpriority take plain integers, touch no memory of ours and only
    // change the scheduling priority of this very thread (on Linux, PRIO_PROCESS with a
    // thread id addresses that thread alone).
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, HASHER_NICENESS)
    };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower the priority of a bcrypt thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {
    let _ = HASHER_NICENESS;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(threads: usize, queue: usize) -> BcryptConfig {
        BcryptConfig {
            cost: 4,
            threads,
            queue,
        }
    }

    #[test]
    fn short_passwords_are_bcrypted_as_they_are() {
        let pw = "x".repeat(72);
        assert_eq!(bcrypt_input(&pw).as_ref(), pw.as_bytes());
        // Compatible with passlib: a plain bcrypt of the password verifies.
        let plain = bcrypt::hash("hunter22", 4).unwrap();
        assert!(verify_blocking("hunter22", &plain).unwrap());
    }

    #[test]
    fn long_passwords_keep_every_byte() {
        let long = "y".repeat(100);
        let mut changed = long.clone();
        changed.replace_range(90..91, "z");
        assert_eq!(bcrypt_input(&long).len(), 44);
        let hash = hash_blocking(&long, 4).unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(verify_blocking(&long, &hash).unwrap());
        assert!(!verify_blocking(&changed, &hash).unwrap());
        // 73 bytes is over the limit even though it is one byte more.
        let just_over = "w".repeat(73);
        assert!(!verify_blocking(&just_over, &bcrypt::hash(&just_over[..72], 4).unwrap()).unwrap());
    }

    #[tokio::test]
    async fn pool_hashes_and_verifies() {
        let hasher = PasswordHasher::start(&config(1, 4)).unwrap();
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hasher
            .verify("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify("wrong horse".into(), Some(hash))
            .await
            .unwrap());
        assert!(!hasher.verify("correct horse".into(), None).await.unwrap());
        assert!(!hasher
            .verify("x".into(), Some("not a hash".into()))
            .await
            .unwrap());
        assert_eq!(hasher.jobs_started(), 5);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_lower_priority() {
        let hasher = PasswordHasher::start(&config(1, 1)).unwrap();
        let stat = hasher
            .run(|| std::fs::read_to_string("/proc/thread-self/stat"))
            .await
            .unwrap()
            .unwrap();
        // Fields after the command name: state is field 3, nice is field 19.
        let after_name = stat.rsplit_once(')').unwrap().1;
        let nice: i32 = after_name
            .split_whitespace()
            .nth(16)
            .unwrap()
            .parse()
            .unwrap();
        assert!(nice >= HASHER_NICENESS, "nice {nice}");
    }

    #[tokio::test]
    async fn full_queue_is_busy_not_waiting() {
        let hasher = PasswordHasher::start(&config(1, 1)).unwrap();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (running_tx, running_rx) = oneshot::channel::<()>();
        // Occupy the only thread until released.
        let blocker = hasher
            .submit(move || {
                let _ = running_tx.send(());
                let _ = release_rx.recv();
            })
            .unwrap();
        running_rx.await.unwrap();
        // One job fits in the queue; the next is refused at once.
        let queued = hasher.submit(|| 7).unwrap();
        assert!(matches!(hasher.submit(|| 0), Err(HashError::Busy)));
        assert!(matches!(hasher.run(|| 0).await, Err(HashError::Busy)));
        release_tx.send(()).unwrap();
        blocker.await.unwrap();
        assert_eq!(queued.await.unwrap(), 7);
        assert_eq!(hasher.run(|| 8).await.unwrap(), 8);
    }
}
