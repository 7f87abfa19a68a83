//! The sending side on RabbitMQ: one connection per client with a publishing channel in
//! confirm mode and this instance's own reply queue, kept up by a supervisor task.
//!
//! While the connection is down, requests fail at once with `Unavailable` (nothing was
//! published). A request whose publish was confirmed waits for its reply until the command's
//! deadline; if the connection drops meanwhile its reply queue is gone with it, and the
//! request ends with `Timeout` at the deadline — the command may have been applied, never
//! later than that.

use std::sync::{Arc, RwLock};

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer};
use tokio::task::AbortHandle;
use uuid::Uuid;

use super::{signature_of, signed, text, AmqpSettings, ROUTING_KEY};
use crate::backoff::Backoff;
use crate::command::{Command, Reply};
use crate::error::BusError;
use crate::waiters::Waiters;

/// A client; dropping the last handle stops its supervisor and closes its connection.
pub(crate) struct AmqpClient {
    state: Arc<ClientState>,
    supervisor: AbortHandle,
}

struct ClientState {
    settings: Arc<AmqpSettings>,
    waiters: Waiters,
    link: RwLock<Option<Link>>,
}

/// A live connection's publishing channel and reply queue.
#[derive(Clone)]
struct Link {
    channel: Channel,
    reply_to: ShortString,
}

impl Drop for AmqpClient {
    fn drop(&mut self) {
        self.supervisor.abort();
    }
}

impl AmqpClient {
    /// Starts the supervisor and waits until its first connection attempt is over.
    pub(crate) async fn start(settings: Arc<AmqpSettings>) -> Arc<AmqpClient> {
        let state = Arc::new(ClientState {
            settings,
            waiters: Waiters::default(),
            link: RwLock::new(None),
        });
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(supervise(state.clone(), first_tx));
        let _ = first_rx.await;
        Arc::new(AmqpClient {
            state,
            supervisor: task.abort_handle(),
        })
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.state.current().is_some()
    }

    pub(crate) async fn request(&self, command: Command) -> Result<Reply, BusError> {
        let link = self
            .state
            .current()
            .ok_or_else(|| BusError::Unavailable("not connected to the broker".into()))?;
        let remaining = command.remaining().ok_or(BusError::Timeout)?;
        let deadline = tokio::time::Instant::now() + remaining;
        let settings = &self.state.settings;
        let waiter = self.state.waiters.register();
        let (body, signature) = settings.signer.encode_command(&command);
        let properties = signed(
            BasicProperties::default()
                .with_message_id(command.message_id.to_string().into())
                .with_correlation_id(waiter.correlation_id.to_string().into())
                .with_reply_to(link.reply_to.clone())
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_type(command.kind.name().into())
                .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64)
                // At least 1 ms: RabbitMQ reads 0 as "deliver now or drop".
                .with_expiration(remaining.as_millis().max(1).to_string().into()),
            signature,
        );
        let mandatory = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirm = link
            .channel
            .basic_publish(
                settings.exchange.as_str().into(),
                ROUTING_KEY.into(),
                mandatory,
                &body,
                properties,
            )
            .await
            // Not sent: certainly not queued.
            .map_err(|e| BusError::Unavailable(format!("cannot publish: {e}")))?;
        match tokio::time::timeout_at(deadline, confirm).await {
            Err(_) => return Err(BusError::Timeout),
            Ok(Ok(Confirmation::Nack(_))) => {
                return Err(BusError::Unavailable(
                    "the broker refused the command".into(),
                ))
            }
            Ok(Ok(Confirmation::Ack(Some(_returned)))) => {
                return Err(BusError::Unavailable(
                    "no queue takes commands (returned unroutable)".into(),
                ))
            }
            Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => {}
            // The connection failed between sending and confirming: the command may be
            // queued, so the outcome is unknown until the deadline.
            Ok(Err(e)) => tracing::warn!(error = %e, "publish not confirmed; outcome unknown"),
        }
        let correlation_id = waiter.correlation_id;
        match waiter.until(deadline).await {
            Some(outcome) => Ok(Reply {
                correlation_id,
                outcome,
            }),
            None => Err(BusError::Timeout),
        }
    }
}

impl ClientState {
    fn current(&self) -> Option<Link> {
        let link = self.link.read().unwrap_or_else(|p| p.into_inner()).clone();
        link.filter(|l| l.channel.status().connected())
    }

    fn set(&self, link: Option<Link>) {
        *self.link.write().unwrap_or_else(|p| p.into_inner()) = link;
    }
}

/// Connects, serves replies until the connection is lost, and starts over after a pause.
async fn supervise(state: Arc<ClientState>, first: tokio::sync::oneshot::Sender<()>) {
    let mut first = Some(first);
    let settings = state.settings.clone();
    let mut backoff = Backoff::new(settings.reconnect_min, settings.reconnect_max);
    loop {
        match open(&settings).await {
            Ok((connection, link, replies)) => {
                tracing::info!(
                    reply_to = link.reply_to.as_str(),
                    "circulation client connected"
                );
                state.set(Some(link));
                backoff.reset();
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                serve_replies(&state, replies).await;
                state.set(None);
                tracing::warn!("circulation client lost its connection; reconnecting");
                let _ = connection.close(200, "reconnecting".into()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "circulation client cannot connect; retrying");
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
            }
        }
        tokio::time::sleep(backoff.next_pause()).await;
    }
}

/// A connection, its link, and the stream of replies to this client.
async fn open(settings: &AmqpSettings) -> Result<(Connection, Link, Consumer), String> {
    let name = format!("circulation-client-{}", Uuid::new_v4().simple());
    let connection = settings.connect(&name).await?;
    let setup = async {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        settings.declare_topology(&channel).await?;
        // Server-named, exclusive to this connection, deleted with it.
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let reply_to = queue.name().clone();
        // Replies are not acknowledged: a reply nobody waits for any more is worthless.
        let replies = channel
            .basic_consume(
                reply_to.clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok::<_, lapin::Error>((Link { channel, reply_to }, replies))
    };
    match setup.await {
        Ok((link, replies)) => Ok((connection, link, replies)),
        Err(e) => {
            let _ = connection.close(200, "setup failed".into()).await;
            Err(format!("cannot set up the client channel: {e}"))
        }
    }
}

/// Hands each reply to the request it answers, until the stream ends (connection lost).
async fn serve_replies(state: &ClientState, mut replies: Consumer) {
    while let Some(delivery) = replies.next().await {
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(e) => {
                tracing::warn!(error = %e, "reply stream failed");
                return;
            }
        };
        let correlation_id =
            text(delivery.properties.correlation_id()).and_then(|c| Uuid::parse_str(c).ok());
        let Some(correlation_id) = correlation_id else {
            tracing::warn!("discarding a reply without a correlation id");
            continue;
        };
        let signature = signature_of(&delivery.properties);
        match state
            .settings
            .signer
            .decode_outcome(&delivery.data, signature.as_deref())
        {
            Ok(outcome) => {
                if !state.waiters.deliver(correlation_id, outcome) {
                    tracing::debug!(%correlation_id, "reply arrived after its request gave up");
                }
            }
            Err(e) => tracing::warn!(error = %e, %correlation_id, "discarding a reply"),
        }
    }
}
