//! The bcrypt pool: hashing and verifying off the async runtime, on a bounded number of
//! low-priority threads, with two lanes and a deadline on every job.
//!
//! # Why a pool
//!
//! A bcrypt at cost 12 takes a quarter of a second of CPU. Running it on the async runtime
//! would stall every other request, so jobs run on `BCRYPT_THREADS` threads of their own, at a
//! lower scheduling priority (nice 10 on Linux) so that cheap requests such as `GET /auth/me`
//! keep their latency during a login storm.
//!
//! # Lanes
//!
//! * [`Lane::Verify`] — logins. Served first by every thread; at most `BCRYPT_QUEUE` waiting.
//! * [`Lane::Hash`] — new hashes (registrations, re-hashes of legacy passwords). Runs on at
//!   most `threads - 1` threads at once (one with a single thread), only when no login waits,
//!   and at most `BCRYPT_HASH_QUEUE` wait.
//!
//! So registrations can never take every thread nor any of the login queue: a login waits at
//! most for the jobs already running, however many registrations arrive.
//!
//! # Deadlines
//!
//! A caller does not wait for ever (app-service gives up on user-service after 10 s), so no job
//! may wait longer than `BCRYPT_MAX_WAIT_MS`. On arrival the pool estimates the job's wait from
//! the jobs ahead of it in its lane and the measured time of one job (a moving average); a job
//! that would wait longer, or that finds its queue full, is refused at once with
//! [`HashError::Busy`] (503 and `Retry-After`). A job whose wait ran over all the same (the
//! estimate was low) is skipped when its turn comes and refused likewise; a job whose caller
//! went away is skipped silently.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::config::BcryptConfig;
use crate::password::{self, NewHash, StoredPassword, Verdict};

/// The nice value of the hashing threads (higher is lower priority).
const HASHER_NICENESS: i32 = 10;

/// The weight of the newest job in the moving average of job times, as `1 / AVERAGE_WEIGHT`.
const AVERAGE_WEIGHT: u64 = 8;

/// Which queue a job waits in (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Logins: first served, every thread.
    Verify,
    /// New hashes: never every thread, only when no login waits.
    Hash,
}

/// Why a hash job did not run.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The job's queue is full, or it would (or did) wait longer than allowed.
    #[error("password hashing is saturated; retry in {}s", retry_after.as_secs())]
    Busy { retry_after: Duration },
    /// The pool has stopped (the service is shutting down).
    #[error("password hashing pool has stopped")]
    Stopped,
    /// bcrypt itself failed (e.g. a stored hash that is not a bcrypt string).
    #[error("bcrypt failed: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
}

/// A handle to the pool; cheap to clone. The threads stop once every handle is gone.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    cost: u32,
    /// A hash of a random password at `cost`, verified against when a login names no
    /// account, so that "unknown user" costs the same time as "wrong password".
    dummy: StoredPassword,
    /// Jobs accepted so far (tests check that a throttled login did no hashing).
    started: AtomicU64,
}

/// What the threads and the handles share.
struct Shared {
    queues: Mutex<Queues>,
    /// Signalled when a job arrives, a hash-lane slot frees up, or the pool stops.
    wake: Condvar,
    limits: Limits,
    /// Moving average of how long one job runs, in microseconds.
    job_micros: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    threads: usize,
    hash_threads: usize,
    verify_queue: usize,
    hash_queue: usize,
    max_wait: Duration,
}

#[derive(Default)]
struct Queues {
    verify: VecDeque<Job>,
    hash: VecDeque<Job>,
    /// Jobs running, of either lane.
    running: usize,
    /// Hash-lane jobs running.
    hashing: usize,
    stopped: bool,
}

struct Job {
    /// Called with whether the job started in time; when not, it only reports that.
    run: Box<dyn FnOnce(bool) + Send>,
    deadline: Instant,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("cost", &self.inner.cost)
            .field("limits", &self.inner.shared.limits)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Starts the threads and computes the dummy hash (one bcrypt at `config.cost`, which also
    /// gives the first measure of a job's time).
    pub fn start(config: &BcryptConfig) -> std::io::Result<Self> {
        let threads = config.threads.max(1);
        let limits = Limits {
            threads,
            hash_threads: (threads - 1).max(1),
            verify_queue: config.queue.max(1),
            hash_queue: config.hash_queue.max(1),
            max_wait: config.max_wait,
        };
        let began = Instant::now();
        let random = uuid::Uuid::new_v4().simple().to_string();
        let dummy = password::hash(&random, config.cost).map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            wake: Condvar::new(),
            limits,
            job_micros: AtomicU64::new(micros(began.elapsed())),
        });
        for i in 0..threads {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("bcrypt-{i}"))
                .spawn(move || worker(&shared))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                cost: config.cost,
                dummy: StoredPassword {
                    hash: dummy.hash,
                    scheme: Some(dummy.scheme.as_str().to_owned()),
                },
                started: AtomicU64::new(0),
            }),
        })
    }

    /// How many jobs the pool has accepted since it started.
    pub fn jobs_started(&self) -> u64 {
        self.inner.started.load(Ordering::Relaxed)
    }

    /// A new hash of `password` under its scheme, in the hash lane.
    pub async fn hash(&self, password: String) -> Result<NewHash, HashError> {
        let cost = self.inner.cost;
        Ok(self
            .run(Lane::Hash, move || password::hash(&password, cost))
            .await??)
    }

    /// Checks `password` against `stored`, in the verify lane. With `None` (no such account)
    /// the dummy hash is checked instead and the answer is always a mismatch.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<StoredPassword>,
    ) -> Result<Verdict, HashError> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.inner.dummy.clone());
        let verdict = self
            .run(Lane::Verify, move || password::verify(&password, &stored))
            .await?;
        match verdict {
            Ok(v) if known => Ok(v),
            Ok(_) => Ok(Verdict::Mismatch),
            // A stored value that is not a bcrypt hash can never match; it is not a server
            // failure the client could retry.
            Err(e) if known => {
                tracing::warn!(error = %e, "stored password hash is not a valid bcrypt hash");
                Ok(Verdict::Mismatch)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `f` in `lane` and waits for its result; `Busy` at once when it would wait too long.
    pub async fn run<T, F>(&self, lane: Lane, f: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.submit(lane, f)?
            .await
            .map_err(|_| HashError::Stopped)?
    }

    /// Queues `f` without waiting; the receiver yields its result, or `Busy` if its turn came
    /// too late.
    fn submit<T, F>(
        &self,
        lane: Lane,
        f: F,
    ) -> Result<oneshot::Receiver<Result<T, HashError>>, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let shared = &self.inner.shared;
        let (tx, rx) = oneshot::channel();
        let retry_after = whole_seconds(shared.limits.max_wait);
        let run = Box::new(move |in_time: bool| {
            // The request gave up while this waited (timeout, client gone): skip the work.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(if in_time {
                Ok(f())
            } else {
                Err(HashError::Busy { retry_after })
            });
        });
        let mut queues = shared.lock();
        if queues.stopped {
            return Err(HashError::Stopped);
        }
        let (queue, capacity) = match lane {
            Lane::Verify => (&queues.verify, shared.limits.verify_queue),
            Lane::Hash => (&queues.hash, shared.limits.hash_queue),
        };
        if queue.len() >= capacity {
            return Err(HashError::Busy {
                retry_after: Duration::from_secs(1),
            });
        }
        let wait = shared.estimated_wait(&queues, lane);
        if wait > shared.limits.max_wait {
            return Err(HashError::Busy {
                retry_after: whole_seconds(wait - shared.limits.max_wait),
            });
        }
        let job = Job {
            run,
            deadline: Instant::now() + shared.limits.max_wait,
        };
        match lane {
            Lane::Verify => queues.verify.push_back(job),
            Lane::Hash => queues.hash.push_back(job),
        }
        drop(queues);
        shared.wake.notify_one();
        self.inner.started.fetch_add(1, Ordering::Relaxed);
        Ok(rx)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        // Every change under this lock is a single push, pop or counter step, so a panic
        // elsewhere cannot leave it half-written: a poisoned lock is safe to keep using.
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn job_time(&self) -> Duration {
        Duration::from_micros(self.job_micros.load(Ordering::Relaxed))
    }

    /// How long a job arriving now in `lane` would wait before it starts.
    ///
    /// Verify: the logins ahead share every thread. Hash: every login waiting goes first (on
    /// every thread), then the hash jobs ahead share the hash lane's threads.
    fn estimated_wait(&self, q: &Queues, lane: Lane) -> Duration {
        let Limits {
            threads,
            hash_threads,
            ..
        } = self.limits;
        let job = self.job_time();
        let thread_free = q.running < threads;
        let per = |jobs: usize, over: usize| job.mul_f64(jobs as f64 / over as f64);
        match lane {
            Lane::Verify if thread_free && q.verify.is_empty() => Duration::ZERO,
            Lane::Verify => per(q.verify.len() + 1, threads),
            Lane::Hash
                if thread_free
                    && q.hashing < hash_threads
                    && q.verify.is_empty()
                    && q.hash.is_empty() =>
            {
                Duration::ZERO
            }
            Lane::Hash => per(q.verify.len(), threads) + per(q.hash.len() + 1, hash_threads),
        }
    }

    fn record(&self, took: Duration) {
        let old = self.job_micros.load(Ordering::Relaxed);
        let new = (old * (AVERAGE_WEIGHT - 1) + micros(took)) / AVERAGE_WEIGHT;
        self.job_micros.store(new, Ordering::Relaxed);
    }
}

/// A `Retry-After` for a refusal: `d` rounded up to whole seconds, at least one.
fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs_f64().ceil().max(1.0) as u64)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX / AVERAGE_WEIGHT)
}

fn worker(shared: &Shared) {
    lower_priority();
    let mut queues = shared.lock();
    loop {
        let next = if let Some(job) = queues.verify.pop_front() {
            Some((job, Lane::Verify))
        } else if queues.hashing < shared.limits.hash_threads {
            queues.hash.pop_front().map(|job| (job, Lane::Hash))
        } else {
            None
        };
        let Some((job, lane)) = next else {
            if queues.stopped {
                return; // every handle dropped: the service has stopped
            }
            queues = shared.wake.wait(queues).unwrap_or_else(|p| p.into_inner());
            continue;
        };
        queues.running += 1;
        if lane == Lane::Hash {
            queues.hashing += 1;
        }
        // Never hold the lock while running a job.
        drop(queues);
        let began = Instant::now();
        let in_time = began <= job.deadline;
        (job.run)(in_time);
        if in_time {
            shared.record(began.elapsed());
        }
        queues = shared.lock();
        queues.running -= 1;
        if lane == Lane::Hash {
            queues.hashing -= 1;
            // A hash job may be waiting for exactly this slot on another thread.
            shared.wake.notify_one();
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
    use crate::password::Scheme;

    fn config(threads: usize, queue: usize, hash_queue: usize) -> BcryptConfig {
        BcryptConfig {
            cost: 4,
            threads,
            queue,
            hash_queue,
            max_wait: Duration::from_secs(5),
        }
    }

    /// Occupies one thread of `lane` until the returned sender is used (or dropped).
    async fn block(
        hasher: &PasswordHasher,
        lane: Lane,
    ) -> (
        std::sync::mpsc::Sender<()>,
        oneshot::Receiver<Result<(), HashError>>,
    ) {
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (running_tx, running_rx) = oneshot::channel::<()>();
        let done = hasher
            .submit(lane, move || {
                let _ = running_tx.send(());
                let _ = release_rx.recv();
            })
            .unwrap();
        running_rx.await.unwrap();
        (release_tx, done)
    }

    #[tokio::test]
    async fn pool_hashes_and_verifies() {
        let hasher = PasswordHasher::start(&config(1, 4, 4)).unwrap();
        let new = hasher.hash("correct horse".into()).await.unwrap();
        assert_eq!(new.scheme, Scheme::Bcrypt);
        let stored = StoredPassword {
            hash: new.hash,
            scheme: Some(new.scheme.as_str().into()),
        };
        let check = |pw: &str, s: Option<StoredPassword>| hasher.verify(pw.into(), s);
        assert_eq!(
            check("correct horse", Some(stored.clone())).await.unwrap(),
            Verdict::Match
        );
        assert_eq!(
            check("wrong horse", Some(stored)).await.unwrap(),
            Verdict::Mismatch
        );
        assert_eq!(check("x", None).await.unwrap(), Verdict::Mismatch);
        let garbage = StoredPassword {
            hash: "not a hash".into(),
            scheme: None,
        };
        assert_eq!(check("x", Some(garbage)).await.unwrap(), Verdict::Mismatch);
        assert_eq!(hasher.jobs_started(), 5);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_lower_priority() {
        let hasher = PasswordHasher::start(&config(1, 1, 1)).unwrap();
        let stat = hasher
            .run(Lane::Verify, || {
                std::fs::read_to_string("/proc/thread-self/stat")
            })
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
        let hasher = PasswordHasher::start(&config(1, 1, 1)).unwrap();
        let (release, blocker) = block(&hasher, Lane::Verify).await;
        // One job fits in the queue; the next is refused at once.
        let queued = hasher.submit(Lane::Verify, || 7).unwrap();
        assert!(matches!(
            hasher.submit(Lane::Verify, || 0),
            Err(HashError::Busy { .. })
        ));
        assert!(matches!(
            hasher.run(Lane::Verify, || 0).await,
            Err(HashError::Busy { .. })
        ));
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert_eq!(queued.await.unwrap().unwrap(), 7);
        assert_eq!(hasher.run(Lane::Verify, || 8).await.unwrap(), 8);
    }

    #[tokio::test]
    async fn hashing_never_takes_the_last_thread_and_logins_go_first() {
        let hasher = PasswordHasher::start(&config(2, 4, 4)).unwrap();
        // The hash lane has one of the two threads: a second hash job waits...
        let (release, blocker) = block(&hasher, Lane::Hash).await;
        let (tx, mut waiting_hash) = oneshot::channel();
        let queued = hasher
            .submit(Lane::Hash, move || tx.send(()).unwrap())
            .unwrap();
        // ...while a login still runs at once on the other thread.
        assert_eq!(hasher.run(Lane::Verify, || 1).await.unwrap(), 1);
        assert!(
            waiting_hash.try_recv().is_err(),
            "the hash lane used a second thread"
        );
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        queued.await.unwrap().unwrap();
        waiting_hash.await.unwrap();

        // With every thread busy, a waiting login is taken before a hash that came earlier.
        let (release_a, a) = block(&hasher, Lane::Verify).await;
        let (release_b, b) = block(&hasher, Lane::Verify).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let (o1, o2) = (order.clone(), order.clone());
        let hash = hasher
            .submit(Lane::Hash, move || o1.lock().unwrap().push("hash"))
            .unwrap();
        let login = hasher
            .submit(Lane::Verify, move || o2.lock().unwrap().push("login"))
            .unwrap();
        release_a.send(()).unwrap();
        a.await.unwrap().unwrap();
        login.await.unwrap().unwrap();
        release_b.send(()).unwrap();
        b.await.unwrap().unwrap();
        hash.await.unwrap().unwrap();
        assert_eq!(*order.lock().unwrap(), ["login", "hash"]);
    }

    #[tokio::test]
    async fn a_job_that_would_wait_too_long_is_refused_at_once() {
        let mut c = config(1, 64, 64);
        c.max_wait = Duration::from_millis(300);
        let hasher = PasswordHasher::start(&c).unwrap();
        // Teach the pool that a job takes about 200 ms.
        for _ in 0..2 * AVERAGE_WEIGHT {
            hasher.inner.shared.record(Duration::from_millis(200));
        }
        let (release, blocker) = block(&hasher, Lane::Verify).await;
        // One job ahead of a thread that is busy: 200 ms for the first waiting job, 400 for the
        // next (over 300): refused without waiting, with a Retry-After of whole seconds.
        let first = hasher.submit(Lane::Verify, || ()).unwrap();
        let started = Instant::now();
        match hasher.run(Lane::Verify, || ()).await {
            Err(HashError::Busy { retry_after }) => assert_eq!(retry_after, Duration::from_secs(1)),
            other => panic!("expected Busy, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_millis(100));
        // A job whose turn comes after its deadline is skipped and refused.
        std::thread::sleep(Duration::from_millis(350));
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert!(matches!(first.await.unwrap(), Err(HashError::Busy { .. })));
    }
}
