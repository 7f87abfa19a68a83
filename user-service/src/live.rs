//! Live delivery to the open notification streams of this instance: a broadcast of
//! [`Change`]s that every stream listens to, fed by
//!
//! - the notifier of any instance: after it stored notifications it announces their readers
//!   on the event stream's live subject (core NATS, or the in-process broadcast), which every
//!   instance forwards here — so a notification stored by one instance reaches a stream held
//!   by another;
//! - the ended-sessions announcements of the key-value store (Redis pub/sub), and this
//!   instance's own logouts and role changes — so a stream ends with its session.
//!
//! Signals are at most once; a stream that misses one still catches up at its next
//! keep-alive, when it also reads the database (see `routes::notifications`).

use std::sync::Arc;
use std::time::Duration;

use common::auth::Sessions;
use common::shutdown::Shutdown;
use events::{EventStream, Signal};
use tokio::sync::{broadcast, watch};

/// The prefix of a live signal that a reader has new notifications.
const NOTIFIED: &str = "notification:";
/// Changes a slow stream may fall behind by before it is told it missed some.
const CAPACITY: usize = 4096;
/// The pause before listening again after a feed was lost.
const RELISTEN: Duration = Duration::from_secs(1);

/// What an open stream may need to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The reader has new notifications.
    Notified(i64),
    /// This session ended (a logout anywhere, seen through the store's announcements).
    SessionEnded(String),
    /// The reader's sessions changed on this instance (logout, role change): check yours.
    SessionsChanged(i64),
    /// Signals were lost: everyone looks.
    Missed,
}

/// The hub of this instance; cheap to clone.
#[derive(Clone)]
pub struct LiveHub(Arc<Inner>);

struct Inner {
    local: broadcast::Sender<Change>,
    events: Option<EventStream>,
    closing: watch::Sender<bool>,
}

impl LiveHub {
    /// A hub announcing through `events` (when attached) to the other instances.
    pub fn new(events: Option<EventStream>) -> Self {
        Self(Arc::new(Inner {
            local: broadcast::channel(CAPACITY).0,
            events,
            closing: watch::channel(false).0,
        }))
    }

    /// Changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.0.local.subscribe()
    }

    /// Becomes true when the service stops: streams end, so the server can drain.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.0.closing.subscribe()
    }

    /// Ends every stream (shutdown).
    pub fn close(&self) {
        let _ = self.0.closing.send(true);
    }

    /// Tells the streams of every instance that `readers` have new notifications.
    pub async fn notified(&self, readers: &[i64]) {
        for &reader in readers {
            self.send(Change::Notified(reader));
            if let Some(events) = &self.0.events {
                if let Err(e) = events.announce(&format!("{NOTIFIED}{reader}")).await {
                    tracing::warn!(error = %e, "cannot announce a notification to other instances");
                }
            }
        }
    }

    /// Tells this instance's streams of `user_id` that their sessions changed.
    pub fn sessions_changed(&self, user_id: i64) {
        self.send(Change::SessionsChanged(user_id));
    }

    fn send(&self, change: Change) {
        // No stream open is not an error.
        let _ = self.0.local.send(change);
    }

    /// Forwards the other instances' announcements and the ended sessions to this instance's
    /// streams until `shutdown`.
    pub async fn run(self, sessions: Sessions, shutdown: Shutdown) {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        tokio::select! {
            _ = self.forward_notifications() => {}
            _ = self.forward_ended_sessions(sessions) => {}
            _ = &mut stop => {}
        }
    }

    async fn forward_notifications(&self) {
        let Some(events) = &self.0.events else {
            return std::future::pending().await;
        };
        loop {
            match events.live().await {
                Ok(mut feed) => {
                    while let Some(signal) = feed.next().await {
                        match signal {
                            Signal::Message(m) => {
                                if let Some(reader) =
                                    m.strip_prefix(NOTIFIED).and_then(|r| r.parse().ok())
                                {
                                    self.send(Change::Notified(reader));
                                }
                            }
                            Signal::Missed => self.send(Change::Missed),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen to live notifications"),
            }
            tokio::time::sleep(RELISTEN).await;
        }
    }

    async fn forward_ended_sessions(&self, sessions: Sessions) {
        loop {
            match sessions.ended().await {
                Ok(Some(mut ended)) => {
                    while let Some(sid) = ended.next().await {
                        self.send(Change::SessionEnded(sid));
                    }
                    // The connection was lost: sessions may have ended meanwhile.
                    self.send(Change::Missed);
                }
                // The in-process store announces nothing; streams check on their timer.
                Ok(None) => return std::future::pending().await,
                Err(e) => tracing::warn!(error = %e, "cannot listen to ended sessions"),
            }
            tokio::time::sleep(RELISTEN).await;
        }
    }
}
