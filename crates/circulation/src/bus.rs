//! The one API of the transport, whichever carries the commands: a [`Bus`] opened from
//! configuration hands out [`Client`]s (that send a command and wait for its reply) and
//! [`Consumer`]s (that apply commands with a [`Handler`]).
//!
//! Semantics, the same on both transports:
//! - request/reply: each request gets a fresh correlation id and waits on its sender's own
//!   reply channel until the command's deadline — never on a shared queue;
//! - a command is accepted durably (publisher confirm / committed insert) before the sender
//!   waits; when it cannot be, the sender learns at once ([`BusError::Unavailable`]);
//! - consumers compete: each command goes to one of them; it is settled (acked) only after
//!   the handler returned, i.e. after its database transaction committed; a consumer that dies
//!   before that leaves it to be delivered again (handlers de-duplicate by message id);
//! - a command past its deadline is never handed to a handler;
//! - a command that cannot be read, or that the handler calls poison, or that was delivered
//!   `max_deliveries` times, goes to the dead letters;
//! - lost connections are re-established with backoff, without a restart.

use std::sync::Arc;

use common::shutdown::Shutdown;
use tracing::Instrument;

use crate::amqp::{AmqpClient, AmqpConsumer, AmqpSettings};
use crate::command::{Command, Reply};
use crate::config::{BusConfig, Transport};
use crate::error::{BusError, BusStartError};
use crate::handler::Handler;
use crate::local::LocalQueue;

/// The transport chosen by configuration; cheap to clone. Open it once per process: in the
/// one-process mode app-service and book-service share one (clones of the same value), since
/// the in-process queue's replies reach their waiting request through it.
#[derive(Clone)]
pub struct Bus {
    config: Arc<BusConfig>,
    transport: Carrier,
}

#[derive(Clone)]
enum Carrier {
    Amqp(Arc<AmqpSettings>),
    Local(LocalQueue),
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("backend", &self.backend_name())
            .field("prefix", &self.config.prefix)
            .finish()
    }
}

impl Bus {
    /// Opens the transport `config` names. RabbitMQ is not contacted yet (clients and
    /// consumers connect, and keep reconnecting, on their own); the in-process queue's SQLite
    /// file is opened and migrated.
    pub async fn open(config: BusConfig) -> Result<Bus, BusStartError> {
        config.check().map_err(BusStartError)?;
        let transport = match &config.transport {
            Transport::Amqp(amqp) => Carrier::Amqp(Arc::new(AmqpSettings::new(amqp, &config))),
            Transport::Local { path } => Carrier::Local(LocalQueue::open(path, &config).await?),
        };
        Ok(Bus {
            config: Arc::new(config),
            transport,
        })
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    /// `"rabbitmq"` or `"in-process"`.
    pub fn backend_name(&self) -> &'static str {
        match self.transport {
            Carrier::Amqp(_) => "rabbitmq",
            Carrier::Local(_) => "in-process",
        }
    }

    /// A sender of commands. On RabbitMQ it opens its own connection with a reply queue for
    /// this instance, and returns once the first attempt to connect is over (so a request
    /// right after start-up does not fail for nothing); it reconnects on its own.
    pub async fn client(&self) -> Client {
        match &self.transport {
            Carrier::Amqp(settings) => Client {
                carrier: ClientCarrier::Amqp(AmqpClient::start(settings.clone()).await),
            },
            Carrier::Local(queue) => Client {
                carrier: ClientCarrier::Local(queue.clone()),
            },
        }
    }

    /// A consumer; it does nothing until [`Consumer::run`].
    pub fn consumer(&self) -> Consumer {
        match &self.transport {
            Carrier::Amqp(settings) => {
                Consumer(ConsumerCarrier::Amqp(AmqpConsumer::new(settings.clone())))
            }
            Carrier::Local(queue) => Consumer(ConsumerCarrier::Local(queue.clone())),
        }
    }
}

/// Sends commands and waits for their replies; clones share one connection and reply queue.
#[derive(Clone)]
pub struct Client {
    carrier: ClientCarrier,
}

#[derive(Clone)]
enum ClientCarrier {
    Amqp(Arc<AmqpClient>),
    Local(LocalQueue),
}

impl Client {
    /// Sends `command` and waits for its reply until the command's deadline.
    ///
    /// [`BusError::Unavailable`]: not accepted, nothing will be applied (answer 503).
    /// [`BusError::Timeout`]: no reply by the deadline; it may have been applied before
    /// it, never after (answer 504; a retry with the same idempotency key is safe).
    pub async fn request(&self, command: Command) -> Result<Reply, BusError> {
        let span = tracing::info_span!(
            "circulation.request",
            otel.kind = "producer",
            kind = command.kind.name(),
            message_id = %command.message_id,
        );
        let result = async {
            match &self.carrier {
                ClientCarrier::Amqp(client) => client.request(command).await,
                ClientCarrier::Local(queue) => queue.request(command).await,
            }
        }
        .instrument(span.clone())
        .await;
        if let Err(e) = &result {
            tracing::warn!(parent: &span, error = %e, "circulation request failed");
        }
        result
    }

    /// Whether commands can be sent right now (always, in process).
    pub fn is_connected(&self) -> bool {
        match &self.carrier {
            ClientCarrier::Amqp(client) => client.is_connected(),
            ClientCarrier::Local(_) => true,
        }
    }
}

/// Applies commands from the queue, competing with the consumers of other instances.
pub struct Consumer(ConsumerCarrier);

enum ConsumerCarrier {
    Amqp(AmqpConsumer),
    Local(LocalQueue),
}

impl Consumer {
    /// What `/readyz` asks: whether this consumer can receive commands now.
    pub fn health(&self) -> BusHealth {
        match &self.0 {
            ConsumerCarrier::Amqp(consumer) => BusHealth(HealthCarrier::Amqp(consumer.connected())),
            ConsumerCarrier::Local(queue) => BusHealth(HealthCarrier::Local(queue.clone())),
        }
    }

    /// Applies commands with `handler` until `shutdown`; then stops taking new ones, lets
    /// those in hand finish and settles them.
    pub async fn run<H: Handler>(self, handler: H, shutdown: Shutdown) {
        let handler = Arc::new(handler);
        match self.0 {
            ConsumerCarrier::Amqp(consumer) => consumer.run(handler, shutdown).await,
            ConsumerCarrier::Local(queue) => queue.consume(handler, shutdown).await,
        }
    }
}

/// Whether a consumer can receive commands; cheap to clone.
#[derive(Clone)]
pub struct BusHealth(HealthCarrier);

#[derive(Clone)]
enum HealthCarrier {
    Amqp(Arc<std::sync::atomic::AtomicBool>),
    Local(LocalQueue),
}

impl BusHealth {
    /// `Ok` when connected to the broker (or the in-process queue answers).
    pub async fn check(&self) -> Result<(), String> {
        match &self.0 {
            HealthCarrier::Amqp(connected) => {
                if connected.load(std::sync::atomic::Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err("not connected to the broker".into())
                }
            }
            HealthCarrier::Local(queue) => queue.ping().await,
        }
    }
}
