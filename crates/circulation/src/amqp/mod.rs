//! The RabbitMQ transport (lapin).
//!
//! Topology, declared idempotently by every client and consumer when it connects:
//!
//! ```text
//! <prefix>          direct exchange, durable ──"command"──► <prefix>.commands
//!                                                            quorum queue, durable,
//!                                                            x-delivery-limit = max_deliveries − 1,
//!                                                            x-dead-letter-exchange = <prefix>.dlx
//! <prefix>.dlx      headers exchange, durable ─rejected────► <prefix>.dead (quorum, durable)
//!                                             ─delivery_limit─┘
//! (default exchange) ──reply_to──► amq.gen-… : one exclusive, auto-deleted reply queue per
//!                                              client connection
//! ```
//!
//! A command is published persistent (delivery mode 2), mandatory (an unroutable command is
//! returned, not lost), with publisher confirms, `message_id` = the command's id, a fresh
//! `correlation_id`, `reply_to` = the client's reply queue, and `expiration` = the
//! milliseconds left until its deadline, so the broker drops it once nobody waits. The body
//! is the signed JSON command (see `codec`); properties only route and trace.
//!
//! The quorum queue counts deliveries: a command whose consumer keeps dying (or failing)
//! before settling it is dead-lettered after `max_deliveries`, as is one a consumer rejects
//! (poison). RabbitMQ dead-letters expired messages through the same exchange; the dead-letter
//! exchange routes on `x-first-death-reason` (`x-match: any-with-x`, RabbitMQ ≥ 3.10), so
//! `rejected` and `delivery_limit` reach `<prefix>.dead` while `expired` commands — answered
//! 504 long ago, never to be applied — are dropped instead of burying the real poison.

mod client;
mod consumer;

use std::time::Duration;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

pub(crate) use client::AmqpClient;
pub(crate) use consumer::AmqpConsumer;

use crate::codec::{Signer, SIGNATURE_HEADER};
use crate::config::{AmqpConfig, BusConfig};

/// The routing key of commands on the command exchange.
const ROUTING_KEY: &str = "command";

/// Why a dead-lettered command is kept (`x-first-death-reason`); `expired` ones are dropped.
const DEAD_LETTER_REASONS: [&str; 2] = ["rejected", "delivery_limit"];

/// What clients and consumers of one bus share.
pub(crate) struct AmqpSettings {
    url: String,
    signer: Signer,
    connect_timeout: Duration,
    exchange: String,
    commands_queue: String,
    dead_letter_exchange: String,
    dead_queue: String,
    prefetch: u16,
    max_deliveries: u32,
    retry_delay: Duration,
    reconnect_min: Duration,
    reconnect_max: Duration,
}

impl AmqpSettings {
    pub(crate) fn new(amqp: &AmqpConfig, config: &BusConfig) -> Self {
        Self {
            url: amqp.url.expose().to_owned(),
            signer: Signer::new(amqp.secret.expose()),
            connect_timeout: amqp.connect_timeout,
            exchange: config.exchange(),
            commands_queue: config.commands_queue(),
            dead_letter_exchange: config.dead_letter_exchange(),
            dead_queue: config.dead_queue(),
            prefetch: config.prefetch,
            max_deliveries: config.max_deliveries,
            retry_delay: config.retry_delay,
            reconnect_min: config.reconnect_min,
            reconnect_max: config.reconnect_max,
        }
    }

    /// Opens a connection named `name` (shown in the broker's management UI).
    async fn connect(&self, name: &str) -> Result<Connection, String> {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        match tokio::time::timeout(
            self.connect_timeout,
            Connection::connect(&self.url, properties),
        )
        .await
        {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(format!("cannot connect to the broker: {e}")),
            Err(_) => Err(format!(
                "no answer from the broker within {} ms",
                self.connect_timeout.as_millis()
            )),
        }
    }

    /// Declares the exchanges and queues of the module documentation (idempotent; a queue
    /// that exists with other arguments is an error the broker reports).
    async fn declare_topology(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                self.dead_letter_exchange.as_str().into(),
                ExchangeKind::Headers,
                durable,
                FieldTable::default(),
            )
            .await?;
        let mut dead_args = FieldTable::default();
        dead_args.insert("x-queue-type".into(), long_string("quorum"));
        channel
            .queue_declare(
                self.dead_queue.as_str().into(),
                QueueDeclareOptions::durable(),
                dead_args,
            )
            .await?;
        for reason in DEAD_LETTER_REASONS {
            let mut matching = FieldTable::default();
            matching.insert("x-match".into(), long_string("any-with-x"));
            matching.insert("x-first-death-reason".into(), long_string(reason));
            channel
                .queue_bind(
                    self.dead_queue.as_str().into(),
                    self.dead_letter_exchange.as_str().into(),
                    "".into(),
                    QueueBindOptions::default(),
                    matching,
                )
                .await?;
        }
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), long_string("quorum"));
        args.insert(
            "x-dead-letter-exchange".into(),
            long_string(&self.dead_letter_exchange),
        );
        // RabbitMQ counts returns: a limit of n allows n + 1 deliveries.
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.max_deliveries) - 1),
        );
        channel
            .queue_declare(
                self.commands_queue.as_str().into(),
                QueueDeclareOptions::durable(),
                args,
            )
            .await?;
        channel
            .queue_bind(
                self.commands_queue.as_str().into(),
                self.exchange.as_str().into(),
                ROUTING_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
    }
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// `properties` carrying `signature` in the signature header.
fn signed(properties: BasicProperties, signature: String) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(SIGNATURE_HEADER.into(), long_string(&signature));
    properties.with_headers(headers)
}

/// The signature header of a delivery, if any.
fn signature_of(properties: &BasicProperties) -> Option<String> {
    let headers = properties.headers().as_ref()?;
    match headers.inner().get(SIGNATURE_HEADER)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// A short-string property as text.
fn text(value: &Option<ShortString>) -> Option<&str> {
    value.as_ref().map(ShortString::as_str)
}
