//! The library's circulation commands and their transport.
//!
//! app-service turns `POST /loans/`, returns, renewals and holds into [`Command`]s carrying
//! the verified caller, an idempotency id and a deadline, and sends them with a [`Client`];
//! book-service applies them with a [`Handler`] run by a [`Consumer`]. Which transport
//! carries them is configuration ([`BusConfig::from_env`]): RabbitMQ when `AMQP_URL` is set
//! (module `amqp`), otherwise an in-process queue durable in SQLite (module `local`) — one
//! API, the same semantics (see [`bus`]).

mod amqp;
mod backoff;
pub mod bus;
mod codec;
pub mod command;
pub mod config;
pub mod error;
mod handler;
mod local;
#[cfg(feature = "testing")]
pub mod testing;
mod waiters;

pub use bus::{Bus, BusHealth, Client, Consumer};
pub use command::{message_id_for_key, Command, CommandKind, Outcome, Reply};
pub use config::{BusConfig, Transport};
pub use error::{BusError, BusStartError, HandlerError};
pub use handler::{current_traceparent, Handler};
