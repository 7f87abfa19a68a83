//! The in-process transport of the one-process mode: the command queue is a table in a
//! SQLite file (`DATA_DIR/bus.sqlite`), so commands survive a restart; replies go straight
//! to the waiting request through the shared [`Waiters`] (sender and consumer are one
//! process, sharing one [`LocalQueue`]).
//!
//! Same semantics as RabbitMQ: enqueueing is a committed insert (the publisher confirm);
//! consumers compete by claiming rows with a lease and settle them after the handler
//! returned; a consumer that dies leaves its row to be claimed again when the lease runs
//! out (redelivery); a command is never handed out past its deadline; undecodable commands,
//! poison and commands delivered `max_deliveries` times move to `bus_dead`.

mod store;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::config::ConfigError;
use common::shutdown::Shutdown;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

use crate::command::{Command, Reply};
use crate::config::BusConfig;
use crate::error::{BusError, BusStartError, HandlerError};
use crate::handler::{apply_span, Handler};
use crate::waiters::Waiters;

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations/local");

/// How often an idle consumer looks for commands whose lease or retry pause ran out
/// (new commands wake it at once).
const IDLE_POLL: Duration = Duration::from_millis(250);

/// The queue, its waiting requests and the bell that wakes idle consumers; cheap to clone.
#[derive(Clone)]
pub(crate) struct LocalQueue(Arc<Inner>);

struct Inner {
    pool: SqlitePool,
    waiters: Waiters,
    wake: Notify,
    prefetch: u16,
    max_deliveries: i64,
    retry_delay: Duration,
    lease: Duration,
}

impl LocalQueue {
    /// Opens (creating) the queue file at `path` and applies its schema.
    pub(crate) async fn open(path: &Path, config: &BusConfig) -> Result<Self, BusStartError> {
        let fail = |e: &dyn std::fmt::Display| {
            BusStartError(ConfigError::new(
                "DATA_DIR",
                format!("cannot open the command queue {}: {e}", path.display()),
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
            waiters: Waiters::default(),
            wake: Notify::new(),
            prefetch: config.prefetch,
            max_deliveries: i64::from(config.max_deliveries),
            retry_delay: config.retry_delay,
            lease: config.lease,
        })))
    }

    pub(crate) async fn ping(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.0.pool)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub(crate) async fn request(&self, command: Command) -> Result<Reply, BusError> {
        let remaining = command.remaining().ok_or(BusError::Timeout)?;
        let deadline = tokio::time::Instant::now() + remaining;
        let waiter = self.0.waiters.register();
        let correlation_id = waiter.correlation_id;
        let body = serde_json::to_string(&command).expect("commands serialise");
        store::enqueue(
            &self.0.pool,
            &command.message_id.to_string(),
            &correlation_id.to_string(),
            &body,
            command.deadline.timestamp_millis(),
        )
        .await
        .map_err(|e| BusError::Unavailable(format!("cannot queue the command: {e}")))?;
        self.0.wake.notify_waiters();
        match waiter.until(deadline).await {
            Some(outcome) => Ok(Reply {
                correlation_id,
                outcome,
            }),
            None => Err(BusError::Timeout),
        }
    }

    /// Runs `prefetch` claim loops until `shutdown`; each finishes the command in hand.
    pub(crate) async fn consume<H: Handler>(&self, handler: Arc<H>, shutdown: Shutdown) {
        let stopping = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (queue, stopping) = (self.clone(), stopping.clone());
            tokio::spawn(async move {
                shutdown.wait().await;
                stopping.store(true, Ordering::SeqCst);
                queue.0.wake.notify_waiters();
            })
        };
        let owner = format!("consumer-{}", Uuid::new_v4().simple());
        tracing::info!(
            prefetch = self.0.prefetch,
            "circulation consumer attached (in process)"
        );
        let mut loops = tokio::task::JoinSet::new();
        for n in 0..self.0.prefetch {
            loops.spawn(self.clone().claim_loop(
                handler.clone(),
                format!("{owner}-{n}"),
                stopping.clone(),
            ));
        }
        while loops.join_next().await.is_some() {}
        watcher.abort();
    }

    async fn claim_loop<H: Handler>(
        self,
        handler: Arc<H>,
        owner: String,
        stopping: Arc<AtomicBool>,
    ) {
        let lease_ms = i64::try_from(self.0.lease.as_millis()).unwrap_or(i64::MAX);
        while !stopping.load(Ordering::SeqCst) {
            // Registered before looking, so a command queued meanwhile still wakes us.
            let woken = self.0.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match store::claim(&self.0.pool, &owner, lease_ms).await {
                Ok(Some(claimed)) => self.settle(claimed, &handler, &owner).await,
                Ok(None) => {
                    if let Err(e) = store::purge_expired(&self.0.pool).await {
                        tracing::warn!(error = %e, "cannot purge expired commands");
                    }
                    tokio::select! {
                        _ = &mut woken => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the command queue; retrying");
                    tokio::select! {
                        _ = &mut woken => {}
                        _ = tokio::time::sleep(self.0.retry_delay) => {}
                    }
                }
            }
        }
    }

    /// Applies a claimed command and settles it, as the RabbitMQ consumer does.
    async fn settle<H: Handler>(&self, claimed: store::Claimed, handler: &Arc<H>, owner: &str) {
        let pool = &self.0.pool;
        let seq = claimed.seq;
        let command = match serde_json::from_str::<Command>(&claimed.body) {
            Ok(command) => command,
            Err(e) => {
                tracing::warn!(error = %e, message_id = claimed.message_id, "dead-lettering a poison command");
                return self.bury(seq, owner, "undecodable").await;
            }
        };
        if claimed.deliveries > self.0.max_deliveries {
            tracing::warn!(message_id = %command.message_id, deliveries = claimed.deliveries, "dead-lettering a command delivered too often");
            return self.bury(seq, owner, "delivery_limit").await;
        }
        let span = apply_span(&command);
        let result = handler.handle(command).instrument(span.clone()).await;
        let settled = match result {
            Ok(outcome) => {
                if let Ok(correlation_id) = Uuid::parse_str(&claimed.correlation_id) {
                    // Nobody waits after a restart, or after the request gave up.
                    self.0.waiters.deliver(correlation_id, outcome);
                }
                store::ack(pool, seq, owner).await
            }
            Err(HandlerError::Expired) => store::ack(pool, seq, owner).await,
            Err(HandlerError::Retry(e)) => {
                tracing::warn!(parent: &span, error = %e, "command failed for now; it will be offered again");
                let delay = i64::try_from(self.0.retry_delay.as_millis()).unwrap_or(i64::MAX);
                store::release(pool, seq, owner, delay).await
            }
            Err(HandlerError::Poison(e)) => {
                tracing::warn!(parent: &span, error = %e, "dead-lettering a command its handler cannot apply");
                return self.bury(seq, owner, "rejected").await;
            }
        };
        match settled {
            Ok(true) => {}
            Ok(false) => tracing::warn!(seq, "lease lost before settling; another consumer has it"),
            Err(e) => {
                tracing::warn!(seq, error = %e, "cannot settle; the command will be delivered again")
            }
        }
    }

    async fn bury(&self, seq: i64, owner: &str, reason: &str) {
        if let Err(e) = store::bury(&self.0.pool, seq, owner, reason).await {
            tracing::warn!(seq, error = %e, "cannot dead-letter; the command will be delivered again");
        }
    }
}
