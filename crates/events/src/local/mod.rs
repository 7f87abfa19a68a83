//! The in-process stream of the one-process mode: an append-only table in a SQLite file
//! (`DATA_DIR/events.sqlite`), so events and every consumer's position survive a restart.
//!
//! Same semantics as JetStream: publishing is a committed insert (the publish
//! acknowledgement), a repeated event id is dropped; each durable consumer has a position and
//! a set of pending (delivered, unacknowledged) events under a lease — a consumer that dies
//! leaves them to be delivered again when the lease (the ack wait) runs out; a failed event
//! comes back after a pause; dead letters go to a table of their own; retention is by age.
//! Live signals are a broadcast within the process.

mod store;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::config::ConfigError;
use common::shutdown::Shutdown;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::{broadcast, Notify};
use uuid::Uuid;

use crate::config::StreamConfig;
use crate::consume::{judge, EventHandler, Incoming, Verdict};
use crate::error::{PublishError, StreamStartError};
use crate::event::DeadLetter;
use crate::event::Event;

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/local");

/// How often the retention is applied.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Live signals a slow listener may fall behind by before it is told it missed some.
const LIVE_CAPACITY: usize = 4096;

/// The stream, the bell that wakes idle consumers and the live broadcast; cheap to clone.
#[derive(Clone)]
pub(crate) struct LocalStream(Arc<Inner>);

struct Inner {
    pool: SqlitePool,
    wake: Notify,
    live: broadcast::Sender<String>,
    config: Arc<StreamConfig>,
}

impl LocalStream {
    /// Opens (creating) the stream file at `path` and applies its schema.
    pub(crate) async fn open(
        path: &Path,
        config: Arc<StreamConfig>,
    ) -> Result<Self, StreamStartError> {
        let fail = |e: &dyn std::fmt::Display| {
            StreamStartError(ConfigError::new(
                "DATA_DIR",
                format!("cannot open the event stream {}: {e}", path.display()),
            ))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| fail(&e))?;
        MIGRATIONS.run(&pool).await.map_err(|e| fail(&e))?;
        Ok(Self(Arc::new(Inner {
            pool,
            wake: Notify::new(),
            live: broadcast::channel(LIVE_CAPACITY).0,
            config,
        })))
    }

    pub(crate) async fn ping(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.0.pool)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Appends `events` in one transaction: all stored, or none.
    pub(crate) async fn publish(&self, events: &[Event]) -> Vec<Result<(), PublishError>> {
        let rows: Vec<(String, String, String)> = events
            .iter()
            .map(|e| {
                (
                    e.id.to_string(),
                    self.0.config.subject_of(e.title_id),
                    e.to_json(),
                )
            })
            .collect();
        let result = store::append(&self.0.pool, &rows)
            .await
            .map_err(|e| PublishError::Unavailable(format!("cannot append to the stream: {e}")));
        if result.is_ok() {
            self.0.wake.notify_waiters();
        }
        events.iter().map(|_| result.clone()).collect()
    }

    pub(crate) fn announce(&self, message: String) {
        // Nobody listening is not an error: a signal is for whoever is there.
        let _ = self.0.live.send(message);
    }

    pub(crate) fn subscribe_live(&self) -> broadcast::Receiver<String> {
        self.0.live.subscribe()
    }

    pub(crate) async fn dead_letters(&self) -> Result<Vec<DeadLetter>, String> {
        store::dead(&self.0.pool).await.map_err(|e| e.to_string())
    }

    /// Runs the durable consumer `name` until `shutdown`; the batch in hand is finished and
    /// settled first.
    pub(crate) async fn consume<H: EventHandler>(
        &self,
        name: String,
        handler: Arc<H>,
        shutdown: Shutdown,
    ) {
        let config = &self.0.config;
        let stopping = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (stream, stopping) = (self.clone(), stopping.clone());
            tokio::spawn(async move {
                shutdown.wait().await;
                stopping.store(true, Ordering::SeqCst);
                stream.0.wake.notify_waiters();
            })
        };
        let owner = format!("{name}-{}", Uuid::new_v4().simple());
        let lease_ms = i64::try_from(config.ack_wait.as_millis()).unwrap_or(i64::MAX);
        let limit = i64::try_from(config.batch).unwrap_or(i64::MAX);
        let mut registered = false;
        let mut purged_at: Option<Instant> = None;
        tracing::info!(consumer = name, "event consumer attached (in process)");
        while !stopping.load(Ordering::SeqCst) {
            // Registered before looking, so an event published meanwhile still wakes us.
            let woken = self.0.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if !registered {
                registered = store::register(&self.0.pool, &name).await.is_ok();
            }
            let claimed = if registered {
                store::claim(&self.0.pool, &name, &owner, limit, lease_ms).await
            } else {
                Ok(Vec::new())
            };
            match claimed {
                Ok(batch) if !batch.is_empty() => {
                    self.settle(&name, &owner, &*handler, batch).await
                }
                Ok(_) => {
                    if purged_at.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                        self.purge().await;
                        purged_at = Some(Instant::now());
                    }
                    tokio::select! {
                        _ = &mut woken => {}
                        _ = tokio::time::sleep(config.poll) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(consumer = name, error = %e, "cannot read the event stream; retrying");
                    tokio::select! {
                        _ = &mut woken => {}
                        _ = tokio::time::sleep(config.retry_delay) => {}
                    }
                }
            }
        }
        watcher.abort();
    }

    async fn settle<H: EventHandler>(
        &self,
        name: &str,
        owner: &str,
        handler: &H,
        batch: Vec<store::Claimed>,
    ) {
        let pool = &self.0.pool;
        let config = &self.0.config;
        let incoming: Vec<Incoming> = batch
            .iter()
            .map(|c| Incoming {
                event: Event::from_json(c.body.as_bytes()).map_err(|e| e.to_string()),
                delivered: u32::try_from(c.deliveries).unwrap_or(u32::MAX),
            })
            .collect();
        let verdicts = judge(handler, &incoming, config.max_deliver).await;
        let mut acked = Vec::new();
        for ((claimed, incoming), verdict) in batch.iter().zip(&incoming).zip(verdicts) {
            let result = match verdict {
                Verdict::Ack => {
                    acked.push(claimed.seq);
                    Ok(())
                }
                Verdict::Retry => {
                    let pause = config.retry_pause(incoming.delivered);
                    let delay = i64::try_from(pause.as_millis()).unwrap_or(i64::MAX);
                    store::release(pool, name, owner, claimed.seq, delay).await
                }
                Verdict::Dead(reason) => {
                    tracing::warn!(
                        consumer = name,
                        seq = claimed.seq,
                        reason,
                        "event dead-lettered"
                    );
                    store::bury(pool, name, owner, claimed.seq, &reason).await
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot settle an event; it will be delivered again");
            }
        }
        if let Err(e) = store::ack(pool, name, owner, &acked).await {
            tracing::warn!(error = %e, "cannot acknowledge events; they will be delivered again");
        }
    }

    async fn purge(&self) {
        let config = &self.0.config;
        let now = store::now_ms();
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match store::purge(
            &self.0.pool,
            now.saturating_sub(ms(config.max_age)),
            now.saturating_sub(ms(config.dead_max_age)),
        )
        .await
        {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "old events removed from the stream"),
            Err(e) => tracing::warn!(error = %e, "cannot apply the stream's retention"),
        }
    }
}
