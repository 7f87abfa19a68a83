//! The one API of the event stream, whichever carries the events: an [`EventStream`] opened
//! from configuration publishes events and hands out durable [`EventConsumer`]s, and carries
//! live signals between instances ([`EventStream::announce`], [`LiveFeed`]).
//!
//! Semantics, the same on both transports:
//! - publishing returns once the stream stored the event (the publish acknowledgement); an
//!   event published twice (same id) is stored once (within the duplicate window);
//! - events of one title are stored and delivered in publish order;
//! - a durable consumer remembers its position across restarts; an event is acknowledged
//!   only after its handler returned (its effect committed); one not acknowledged within the
//!   ack wait (its consumer died) is delivered again, so handlers de-duplicate by event id;
//! - a failed event comes back after a pause (doubling); after `max_deliver` deliveries, or
//!   at once when unreadable or refused as poison, it goes to the dead letters;
//! - lost connections are re-established without a restart, and the stream is set up on
//!   first use, so a service may start before the stream does;
//! - live signals are at most once: fast, not stored (a missed one is noticed only on the
//!   in-process broadcast, [`Signal::Missed`]).

use std::sync::Arc;

use common::shutdown::Shutdown;
use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::config::{StreamConfig, Transport};
use crate::consume::EventHandler;
use crate::error::{PublishError, StreamStartError};
use crate::event::{DeadLetter, Event};
use crate::local::LocalStream;
use crate::nats::NatsStream;

/// The stream chosen by configuration; cheap to clone. Open it once per process: in the
/// one-process mode book-service and user-service share one (clones of the same value), so
/// a publish wakes the consumer at once and live signals reach every listener.
#[derive(Clone)]
pub struct EventStream {
    config: Arc<StreamConfig>,
    carrier: Carrier,
}

#[derive(Clone)]
enum Carrier {
    Nats(Arc<NatsStream>),
    Local(LocalStream),
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("backend", &self.backend_name())
            .field("stream", &self.config.stream)
            .finish()
    }
}

impl EventStream {
    /// Opens the stream `config` names. NATS is connected to in the background (the streams
    /// are set up on first use); the in-process stream's SQLite file is opened and migrated.
    pub async fn open(config: StreamConfig) -> Result<Self, StreamStartError> {
        config.check().map_err(StreamStartError)?;
        let config = Arc::new(config);
        let carrier = match &config.transport {
            Transport::Nats(nats) => {
                Carrier::Nats(Arc::new(NatsStream::open(nats, config.clone()).await?))
            }
            Transport::Local { path } => {
                Carrier::Local(LocalStream::open(path, config.clone()).await?)
            }
        };
        Ok(Self { config, carrier })
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// `"jetstream"` or `"in-process"`.
    pub fn backend_name(&self) -> &'static str {
        match self.carrier {
            Carrier::Nats(_) => "jetstream",
            Carrier::Local(_) => "in-process",
        }
    }

    /// Publishes `events` (in order; many in flight) and waits until the stream stored each
    /// one. One result per event: an error means that event is not known to be stored —
    /// publish it again later, with the events of its title after it.
    pub async fn publish(&self, events: &[Event]) -> Vec<Result<(), PublishError>> {
        if events.is_empty() {
            return Vec::new();
        }
        match &self.carrier {
            Carrier::Nats(nats) => nats.publish(events).await,
            Carrier::Local(local) => local.publish(events).await,
        }
    }

    /// The durable consumer `name` (created on first use at the start of the stream); it does
    /// nothing until [`EventConsumer::run`]. Instances using the same name share its
    /// position and compete for its events.
    pub fn consumer(&self, name: &str) -> EventConsumer {
        EventConsumer {
            name: name.to_owned(),
            carrier: self.carrier.clone(),
        }
    }

    /// Whether the stream can be used now (readiness): connected to NATS, or the in-process
    /// stream answers.
    pub async fn check(&self) -> Result<(), String> {
        match &self.carrier {
            Carrier::Nats(nats) if nats.is_connected() => Ok(()),
            Carrier::Nats(_) => Err("not connected to NATS".into()),
            Carrier::Local(local) => local.ping().await,
        }
    }

    /// Sends a live signal to every [`LiveFeed`] of every instance (not stored; at most
    /// once).
    pub async fn announce(&self, message: &str) -> Result<(), String> {
        match &self.carrier {
            Carrier::Nats(nats) => nats.announce(message.to_owned()).await,
            Carrier::Local(local) => {
                local.announce(message.to_owned());
                Ok(())
            }
        }
    }

    /// Listens to live signals from now on.
    pub async fn live(&self) -> Result<LiveFeed, String> {
        Ok(LiveFeed(match &self.carrier {
            Carrier::Nats(nats) => FeedCarrier::Nats(nats.subscribe_live().await?),
            Carrier::Local(local) => FeedCarrier::Local(local.subscribe_live()),
        }))
    }

    /// Every dead letter still kept, oldest first (for operators and tests).
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, String> {
        match &self.carrier {
            Carrier::Nats(nats) => nats.dead_letters().await,
            Carrier::Local(local) => local.dead_letters().await,
        }
    }
}

/// A durable consumer of every event, not yet running.
pub struct EventConsumer {
    name: String,
    carrier: Carrier,
}

impl EventConsumer {
    /// Hands events to `handler` until `shutdown`; then finishes and settles the batch in
    /// hand. Reconnects by itself.
    pub async fn run<H: EventHandler>(self, handler: H, shutdown: Shutdown) {
        let handler = Arc::new(handler);
        match self.carrier {
            Carrier::Nats(nats) => crate::nats::consume(nats, self.name, handler, shutdown).await,
            Carrier::Local(local) => local.consume(self.name, handler, shutdown).await,
        }
    }
}

/// A live signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A message sent with [`EventStream::announce`].
    Message(String),
    /// Some signals were lost because this listener fell behind.
    Missed,
}

/// Live signals, as they come.
pub struct LiveFeed(FeedCarrier);

enum FeedCarrier {
    Nats(async_nats::Subscriber),
    Local(broadcast::Receiver<String>),
}

impl LiveFeed {
    /// The next signal; `None` once the feed is closed.
    pub async fn next(&mut self) -> Option<Signal> {
        match &mut self.0 {
            FeedCarrier::Nats(subscriber) => subscriber
                .next()
                .await
                .map(|m| Signal::Message(String::from_utf8_lossy(&m.payload).into_owned())),
            FeedCarrier::Local(receiver) => match receiver.recv().await {
                Ok(message) => Some(Signal::Message(message)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some(Signal::Missed),
                Err(broadcast::error::RecvError::Closed) => None,
            },
        }
    }
}
