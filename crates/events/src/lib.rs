//! The library's circulation events and their stream.
//!
//! book-service writes each [`Event`] to its outbox in the transaction of the change that
//! caused it, and a relay publishes them with [`EventStream::publish`]; consumers (user-service's
//! notifier) take them with a durable [`EventConsumer`] and an [`EventHandler`]. Which stream
//! carries them is configuration ([`StreamConfig::from_env`]): NATS JetStream when `NATS_URL`
//! is set (module `nats`), otherwise an in-process stream durable in SQLite (module `local`) —
//! one API, the same semantics (see [`stream`]).

pub mod config;
mod consume;
pub mod error;
pub mod event;
mod local;
mod nats;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{NatsConfig, StreamConfig, Transport};
pub use consume::EventHandler;
pub use error::{HandleError, PublishError, StreamStartError};
pub use event::{DeadLetter, Event, EventKind, Payload};
pub use stream::{EventConsumer, EventStream, LiveFeed, Signal};
