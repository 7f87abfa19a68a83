//! The stream on NATS JetStream.
//!
//! Two streams, both file storage with limits retention (events are removed by age or size,
//! never because a consumer read them, so a new consumer can replay the history):
//! `<EVENTS_STREAM>` on `<prefix>.*` (one subject per title: the title's order is the
//! subject's order) with a duplicate window over message ids, and `<EVENTS_STREAM>_DEAD` on
//! the dead-letter subject. They are created, or brought to the configured settings, on
//! first use — not at start-up, so a service starts while NATS is down and catches up when
//! it returns (the client reconnects by itself).
//!
//! Publishing keeps each title's order even when a publish fails: a batch goes out in waves,
//! wave `k` holding the `k`-th event of every title, all in flight at once; a title whose
//! event failed sends nothing more in this batch ([`PublishError::HeldBack`]).

mod consumer;

use std::collections::{BTreeMap, VecDeque};
use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use futures_util::future::join_all;

use crate::config::{NatsConfig, StreamConfig};
use crate::error::{PublishError, StreamStartError};
use crate::event::DeadLetter;
use crate::event::Event;

pub(crate) use consumer::consume;

/// Headers of a dead letter.
pub(crate) const CONSUMER_HEADER: &str = "Library-Consumer";
pub(crate) const REASON_HEADER: &str = "Library-Dead-Reason";
pub(crate) const DELIVERIES_HEADER: &str = "Library-Deliveries";
pub(crate) const SUBJECT_HEADER: &str = "Library-Original-Subject";

/// A connection to NATS and the stream settings; shared by publishers and consumers.
pub(crate) struct NatsStream {
    client: async_nats::Client,
    js: jetstream::Context,
    config: Arc<StreamConfig>,
    /// Whether both streams are known to exist with the configured settings.
    ready: AtomicBool,
}

impl NatsStream {
    /// Starts connecting (in the background, retrying) to `nats`.
    pub(crate) async fn open(
        nats: &NatsConfig,
        config: Arc<StreamConfig>,
    ) -> Result<Self, StreamStartError> {
        let client = async_nats::ConnectOptions::new()
            .name("library-events")
            .connection_timeout(nats.connect_timeout)
            .retry_on_initial_connect()
            .connect(nats.url.expose())
            .await
            .map_err(|e| {
                StreamStartError(common::config::ConfigError::new(
                    "NATS_URL",
                    format!(
                        "cannot use {}: {e}",
                        common::config::redact_url(nats.url.expose())
                    ),
                ))
            })?;
        let js = jetstream::new(client.clone());
        Ok(Self {
            client,
            js,
            config,
            ready: AtomicBool::new(false),
        })
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Creates the two streams, or brings them to the configured settings.
    pub(crate) async fn ensure_streams(&self) -> Result<(), String> {
        if self.ready.load(Ordering::SeqCst) {
            return Ok(());
        }
        let c = &self.config;
        let replicas = match &c.transport {
            crate::config::Transport::Nats(n) => n.replicas,
            crate::config::Transport::Local { .. } => 1,
        };
        let events = stream::Config {
            name: c.stream.clone(),
            description: Some("Library circulation events, one subject per title".into()),
            subjects: vec![c.all_subjects()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            max_age: c.max_age,
            max_bytes: c.max_bytes,
            duplicate_window: c.duplicate_window,
            num_replicas: replicas,
            ..Default::default()
        };
        let dead = stream::Config {
            name: c.dead_stream(),
            description: Some("Library events no consumer could handle".into()),
            subjects: vec![c.dead_subject.clone()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            max_age: c.dead_max_age,
            duplicate_window: c.duplicate_window,
            num_replicas: replicas,
            ..Default::default()
        };
        for config in [events, dead] {
            let name = config.name.clone();
            self.js
                .create_or_update_stream(config)
                .await
                .map_err(|e| format!("cannot set up the stream {name}: {e}"))?;
        }
        self.ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Publishes `events` in waves (see the module doc); one result per event, in order.
    pub(crate) async fn publish(&self, events: &[Event]) -> Vec<Result<(), PublishError>> {
        if let Err(e) = self.ensure_streams().await {
            return events
                .iter()
                .map(|_| Err(PublishError::Unavailable(e.clone())))
                .collect();
        }
        let mut results: Vec<Option<Result<(), PublishError>>> = vec![None; events.len()];
        // Each title's events, in the order given.
        let mut queues: BTreeMap<i64, VecDeque<usize>> = BTreeMap::new();
        for (i, event) in events.iter().enumerate() {
            queues.entry(event.title_id).or_default().push_back(i);
        }
        loop {
            let mut wave: Vec<usize> = queues
                .values_mut()
                .filter_map(VecDeque::pop_front)
                .collect();
            if wave.is_empty() {
                break;
            }
            wave.sort_unstable();
            let mut in_flight = Vec::with_capacity(wave.len());
            for &i in &wave {
                let event = &events[i];
                let message = PublishMessage::build()
                    .payload(event.to_json().into())
                    .message_id(event.id.to_string());
                match self
                    .js
                    .send_publish(self.config.subject_of(event.title_id), message)
                    .await
                {
                    Ok(ack) => in_flight.push((i, ack.into_future())),
                    Err(e) => results[i] = Some(Err(PublishError::Unavailable(e.to_string()))),
                }
            }
            let (indexes, acks): (Vec<usize>, Vec<_>) = in_flight.into_iter().unzip();
            for (i, ack) in indexes.into_iter().zip(join_all(acks).await) {
                // A duplicate is acknowledged too: it is stored (from an earlier attempt).
                results[i] = Some(
                    ack.map(|_| ())
                        .map_err(|e| PublishError::Unavailable(e.to_string())),
                );
            }
            for &i in &wave {
                if matches!(results[i], Some(Err(_))) {
                    // Nothing more of this title now: its order must hold.
                    if let Some(rest) = queues.remove(&events[i].title_id) {
                        for j in rest {
                            results[j] = Some(Err(PublishError::HeldBack));
                        }
                    }
                }
            }
        }
        if results
            .iter()
            .any(|r| matches!(r, Some(Err(PublishError::Unavailable(_)))))
        {
            // The stream may have gone (deleted, a new server): set it up again next time.
            self.ready.store(false, Ordering::SeqCst);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(PublishError::HeldBack)))
            .collect()
    }

    /// Publishes a live signal (core NATS: not stored, at most once).
    pub(crate) async fn announce(&self, message: String) -> Result<(), String> {
        self.client
            .publish(self.config.live_subject.clone(), message.into())
            .await
            .map_err(|e| e.to_string())
    }

    /// Subscribes to live signals.
    pub(crate) async fn subscribe_live(&self) -> Result<async_nats::Subscriber, String> {
        self.client
            .subscribe(self.config.live_subject.clone())
            .await
            .map_err(|e| e.to_string())
    }

    /// Every dead letter still kept, oldest first.
    pub(crate) async fn dead_letters(&self) -> Result<Vec<DeadLetter>, String> {
        self.ensure_streams().await?;
        let mut dead = self
            .js
            .get_stream(self.config.dead_stream())
            .await
            .map_err(|e| e.to_string())?;
        let state = dead.info().await.map_err(|e| e.to_string())?.state.clone();
        let mut letters = Vec::new();
        if state.messages == 0 {
            return Ok(letters);
        }
        for seq in state.first_sequence..=state.last_sequence {
            let Ok(message) = dead.get_raw_message(seq).await else {
                continue;
            };
            let header = |name: &str| {
                message
                    .headers
                    .get(name)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            letters.push(DeadLetter {
                consumer: header(CONSUMER_HEADER),
                reason: header(REASON_HEADER),
                deliveries: header(DELIVERIES_HEADER).parse().unwrap_or(0),
                body: String::from_utf8_lossy(&message.payload).into_owned(),
            });
        }
        Ok(letters)
    }

    pub(crate) fn js(&self) -> &jetstream::Context {
        &self.js
    }

    pub(crate) fn config(&self) -> &StreamConfig {
        &self.config
    }
}
