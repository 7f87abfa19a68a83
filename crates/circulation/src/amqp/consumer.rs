//! The applying side on RabbitMQ: a competing consumer on the command queue with a
//! prefetch window, manual acknowledgements after the handler returned, rejection of
//! poison to the dead letters, and reconnection with backoff.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::shutdown::Shutdown;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

use super::{signature_of, signed, text, AmqpSettings};
use crate::backoff::Backoff;
use crate::command::Outcome;
use crate::error::HandlerError;
use crate::handler::{apply_span, Handler};

/// How long a stopping consumer lets the commands in hand finish before it closes.
const DRAIN: Duration = Duration::from_secs(10);

/// A consumer not yet running.
pub(crate) struct AmqpConsumer {
    settings: Arc<AmqpSettings>,
    connected: Arc<AtomicBool>,
}

/// How a session with the broker ended.
enum SessionEnd {
    /// Shutdown was asked for; the consumer stops.
    Stopped,
    /// The connection or channel failed; the consumer reconnects.
    Lost(String),
}

impl AmqpConsumer {
    pub(crate) fn new(settings: Arc<AmqpSettings>) -> Self {
        Self {
            settings,
            connected: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the consumer is attached to the queue now.
    pub(crate) fn connected(&self) -> Arc<AtomicBool> {
        self.connected.clone()
    }

    pub(crate) async fn run<H: Handler>(self, handler: Arc<H>, shutdown: Shutdown) {
        let mut backoff = Backoff::new(self.settings.reconnect_min, self.settings.reconnect_max);
        loop {
            let end = self.session(&handler, shutdown.clone(), &mut backoff).await;
            self.connected.store(false, Ordering::SeqCst);
            match end {
                SessionEnd::Stopped => return,
                SessionEnd::Lost(e) => {
                    tracing::warn!(error = %e, "circulation consumer disconnected; reconnecting");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_pause()) => {}
                _ = shutdown.clone().wait() => return,
            }
        }
    }

    /// One connection's life: attach, apply deliveries until shutdown or failure.
    async fn session<H: Handler>(
        &self,
        handler: &Arc<H>,
        shutdown: Shutdown,
        backoff: &mut Backoff,
    ) -> SessionEnd {
        let settings = &self.settings;
        let tag = format!("circulation-consumer-{}", Uuid::new_v4().simple());
        let connection = tokio::select! {
            c = settings.connect(&tag) => match c {
                Ok(c) => c,
                Err(e) => return SessionEnd::Lost(e),
            },
            _ = shutdown.clone().wait() => return SessionEnd::Stopped,
        };
        let attach = async {
            let channel = connection.create_channel().await?;
            settings.declare_topology(&channel).await?;
            // Replies are published on this channel; confirms tell when they left.
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            channel
                .basic_qos(settings.prefetch, BasicQosOptions::default())
                .await?;
            let deliveries = channel
                .basic_consume(
                    settings.commands_queue.as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>((channel, deliveries))
        };
        let (channel, mut deliveries) = match attach.await {
            Ok(attached) => attached,
            Err(e) => {
                let _ = connection.close(200, "setup failed".into()).await;
                return SessionEnd::Lost(format!("cannot attach to the command queue: {e}"));
            }
        };
        tracing::info!(
            queue = settings.commands_queue.as_str(),
            prefetch = settings.prefetch,
            "circulation consumer attached"
        );
        self.connected.store(true, Ordering::SeqCst);
        backoff.reset();

        let mut in_hand = JoinSet::new();
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let end = loop {
            tokio::select! {
                next = deliveries.next() => match next {
                    Some(Ok(delivery)) => {
                        in_hand.spawn(settle(
                            delivery,
                            channel.clone(),
                            handler.clone(),
                            settings.clone(),
                        ));
                    }
                    Some(Err(e)) => break SessionEnd::Lost(e.to_string()),
                    None => break SessionEnd::Lost("the broker cancelled the consumer".into()),
                },
                Some(_) = in_hand.join_next(), if !in_hand.is_empty() => {}
                _ = &mut stop => break SessionEnd::Stopped,
            }
        };
        if matches!(end, SessionEnd::Stopped) {
            // No new deliveries; those in hand finish and are settled before the close.
            let _ = channel
                .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                .await;
            let drained = tokio::time::timeout(DRAIN, async {
                while in_hand.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    "commands still running at shutdown; the broker will redeliver them"
                );
            }
        }
        // Whatever is still unsettled goes back to the queue when the connection closes.
        in_hand.abort_all();
        let _ = connection.close(200, "bye".into()).await;
        end
    }
}

/// Applies one delivery and settles it: ack after the handler returned (and the reply was
/// sent), reject to the dead letters for poison, requeue after a pause for transient
/// failures.
async fn settle<H: Handler>(
    delivery: Delivery,
    channel: Channel,
    handler: Arc<H>,
    settings: Arc<AmqpSettings>,
) {
    let signature = signature_of(&delivery.properties);
    let command = match settings
        .signer
        .decode_command(&delivery.data, signature.as_deref())
    {
        Ok(command) => command,
        Err(why) => {
            tracing::warn!(
                reason = %why,
                message_id = text(delivery.properties.message_id()).unwrap_or("-"),
                "dead-lettering a poison command"
            );
            reject(&delivery).await;
            return;
        }
    };
    if command.is_expired() {
        // Its sender has given up: never apply it.
        tracing::info!(message_id = %command.message_id, "dropping an expired command");
        ack(&delivery).await;
        return;
    }
    let span = apply_span(&command);
    async move {
        match handler.handle(command).await {
            Ok(outcome) => {
                if reply(&channel, &delivery, &outcome, &settings).await {
                    ack(&delivery).await;
                } else {
                    // Applied, but the answer did not leave: deliver again, the handler
                    // answers the duplicate with the stored result.
                    requeue(&delivery).await;
                }
            }
            Err(HandlerError::Expired) => {
                tracing::info!("command expired before it could be applied");
                ack(&delivery).await;
            }
            Err(HandlerError::Retry(e)) => {
                tracing::warn!(error = %e, "command failed for now; it will be offered again");
                tokio::time::sleep(settings.retry_delay).await;
                requeue(&delivery).await;
            }
            Err(HandlerError::Poison(e)) => {
                tracing::warn!(error = %e, "dead-lettering a command its handler cannot apply");
                reject(&delivery).await;
            }
        }
    }
    .instrument(span)
    .await;
}

/// Sends `outcome` to the delivery's `reply_to`, if it names one; false when it could not
/// be sent.
async fn reply(
    channel: &Channel,
    delivery: &Delivery,
    outcome: &Outcome,
    settings: &AmqpSettings,
) -> bool {
    let (Some(reply_to), Some(correlation_id)) = (
        text(delivery.properties.reply_to()),
        text(delivery.properties.correlation_id()),
    ) else {
        return true;
    };
    let (body, signature) = settings.signer.encode_outcome(outcome);
    let properties = signed(
        BasicProperties::default()
            .with_correlation_id(correlation_id.into())
            .with_content_type("application/json".into()),
        signature,
    );
    // Not mandatory: a reply queue that is gone (its client restarted) just loses the reply.
    let sent = async {
        channel
            .basic_publish(
                "".into(),
                reply_to.into(),
                BasicPublishOptions::default(),
                &body,
                properties,
            )
            .await?
            .await
    };
    match sent.await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot send the reply");
            false
        }
    }
}

async fn ack(delivery: &Delivery) {
    if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
        tracing::warn!(error = %e, "cannot ack; the command will be redelivered");
    }
}

async fn requeue(delivery: &Delivery) {
    let options = BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    };
    if let Err(e) = delivery.nack(options).await {
        tracing::warn!(error = %e, "cannot requeue; the broker will redeliver");
    }
}

async fn reject(delivery: &Delivery) {
    if let Err(e) = delivery.reject(BasicRejectOptions { requeue: false }).await {
        tracing::warn!(error = %e, "cannot reject; the command will be redelivered");
    }
}
