//! A durable pull consumer on JetStream: explicit acknowledgements after the handler
//! returned, a pause before redelivery after a failure, dead letters republished (then the
//! original terminated), and re-attaching with backoff when the connection or the consumer
//! is lost.
//!
//! The server's own `max_deliver` is unlimited on purpose: an event the server stopped
//! delivering would stay in limbo, neither handled nor dead-lettered. The consumer counts
//! instead (`delivered` of each message) and buries the event itself.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{AckKind, Message};
use common::shutdown::Shutdown;
use futures_util::{FutureExt, StreamExt};

use super::{NatsStream, CONSUMER_HEADER, DELIVERIES_HEADER, REASON_HEADER, SUBJECT_HEADER};
use crate::consume::{judge, EventHandler, Incoming, Verdict};
use crate::event::Event;

/// The idle heartbeat asked of the server: a silent connection is noticed within twice this.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// The first and the longest pause before attaching again.
const REATTACH_MIN: Duration = Duration::from_millis(200);
const REATTACH_MAX: Duration = Duration::from_secs(5);

/// Runs the durable consumer `name` with `handler` until `shutdown`; the batch in hand is
/// finished and settled first.
pub(crate) async fn consume<H: EventHandler>(
    nats: Arc<NatsStream>,
    name: String,
    handler: Arc<H>,
    shutdown: Shutdown,
) {
    let mut pause = REATTACH_MIN;
    loop {
        match session(&nats, &name, &*handler, shutdown.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(consumer = name, error = %e, "event consumer detached; attaching again");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.clone().wait() => return,
        }
        pause = (pause * 2).min(REATTACH_MAX);
    }
}

/// One attachment: `Ok` when stopped, `Err` when lost.
async fn session<H: EventHandler>(
    nats: &NatsStream,
    name: &str,
    handler: &H,
    shutdown: Shutdown,
) -> Result<(), String> {
    let config = nats.config();
    nats.ensure_streams().await?;
    let stream = nats
        .js()
        .get_stream(&config.stream)
        .await
        .map_err(|e| format!("cannot find the stream: {e}"))?;
    let consumer: PullConsumer = stream
        .get_or_create_consumer(
            name,
            pull::Config {
                durable_name: Some(name.to_owned()),
                description: Some("library events consumer".into()),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_deliver: -1,
                filter_subject: config.all_subjects(),
                max_ack_pending: i64::try_from(config.batch * 8).unwrap_or(i64::MAX),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("cannot attach the consumer: {e}"))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(config.batch)
        .heartbeat(HEARTBEAT)
        .messages()
        .await
        .map_err(|e| format!("cannot pull: {e}"))?;
    tracing::info!(
        consumer = name,
        stream = config.stream,
        "event consumer attached"
    );
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let first = tokio::select! {
            next = messages.next() => next,
            _ = &mut stop => return Ok(()),
        };
        let mut batch = match first {
            Some(Ok(message)) => vec![message],
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the server ended the pull".into()),
        };
        // Whatever else has arrived already joins the batch; nothing is waited for.
        while batch.len() < config.batch {
            match messages.next().now_or_never() {
                Some(Some(Ok(message))) => batch.push(message),
                _ => break,
            }
        }
        settle(nats, name, handler, batch).await;
    }
}

/// Handles a batch and settles each message by its verdict.
async fn settle<H: EventHandler>(nats: &NatsStream, name: &str, handler: &H, batch: Vec<Message>) {
    let config = nats.config();
    let incoming: Vec<Incoming> = batch
        .iter()
        .map(|m| Incoming {
            event: Event::from_json(&m.payload).map_err(|e| e.to_string()),
            delivered: m
                .info()
                .map(|i| u32::try_from(i.delivered).unwrap_or(u32::MAX))
                .unwrap_or(1),
        })
        .collect();
    let verdicts = judge(handler, &incoming, config.max_deliver).await;
    for ((message, incoming), verdict) in batch.iter().zip(&incoming).zip(verdicts) {
        let result = match verdict {
            Verdict::Ack => message.ack().await,
            Verdict::Retry => {
                let pause = config.retry_pause(incoming.delivered);
                message.ack_with(AckKind::Nak(Some(pause))).await
            }
            Verdict::Dead(reason) => {
                match bury(nats, name, message, &reason, incoming.delivered).await {
                    Ok(()) => message.ack_with(AckKind::Term).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot dead-letter an event; it will be delivered again");
                        let pause = config.retry_pause(incoming.delivered);
                        message.ack_with(AckKind::Nak(Some(pause))).await
                    }
                }
            }
        };
        if let Err(e) = result {
            // Unsettled, it comes back after the ack wait; handlers are idempotent.
            tracing::warn!(error = %e, "cannot settle an event; it will be delivered again");
        }
    }
}

/// Republishes `message` on the dead-letter subject, waiting for the stream to store it.
async fn bury(
    nats: &NatsStream,
    name: &str,
    message: &Message,
    reason: &str,
    delivered: u32,
) -> Result<(), String> {
    let config = nats.config();
    let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(CONSUMER_HEADER, name);
    headers.insert(REASON_HEADER, reason);
    headers.insert(DELIVERIES_HEADER, delivered.to_string().as_str());
    headers.insert(SUBJECT_HEADER, message.subject.as_str());
    let publish = PublishMessage::build()
        .payload(message.payload.clone())
        .headers(headers)
        // The same delivery buried twice (a lost acknowledgement) is stored once.
        .message_id(format!("{name}:{sequence}"));
    nats.ensure_streams().await?;
    let ack = nats
        .js()
        .send_publish(config.dead_subject.clone(), publish)
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map_err(|e| e.to_string())?;
    tracing::warn!(consumer = name, sequence, reason, "event dead-lettered");
    Ok(())
}
