//! The outbox relay: publishes the outbox's events to the event stream in id order, and marks
//! each published once the stream acknowledged it.
//!
//! One relay publishes at a time across all instances — the holder of the lease row
//! (`outbox_relay`), taken and extended with a guarded update, given up at shutdown, taken
//! over by another instance when it runs out (a crashed holder). So the order of the outbox is
//! the order of the stream, title by title. A batch goes out with many events in flight
//! (see [`EventStream::publish`]); an event whose publish failed stays unpublished, with the
//! later events of its title, and the relay tries again after a pause. An event published but
//! not marked (a crash in between, the database down) is published again later: the stream
//! drops it as a duplicate within its window, and consumers de-duplicate by id anyway.

use std::time::Duration;

use chrono::Utc;
use common::shutdown::Shutdown;
use events::{Event, EventStream};
use service_kit::db::Db;

use crate::config::OutboxConfig;
use crate::outbox::Bell;
use crate::store::outbox;

/// The longest pause after failures.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// What a round ended with.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    /// Everything published; wait for the bell or the next poll.
    Drained,
    /// Another instance holds the lease.
    NotHolder,
}

/// The relay of one instance.
pub struct Relay {
    pub db: Db,
    pub events: EventStream,
    pub bell: Bell,
    pub config: OutboxConfig,
    /// This instance's name in the lease.
    pub holder: String,
}

impl Relay {
    /// Relays until `shutdown`, then gives the lease up.
    pub async fn run(self, shutdown: Shutdown) {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let mut pause = self.config.poll;
        loop {
            let (wait, listen) = match self.round().await {
                Ok(Round::Drained) => {
                    pause = self.config.poll;
                    (self.config.poll, true)
                }
                // Look again before a crashed holder's lease would have run out for long.
                Ok(Round::NotHolder) => (self.config.lease / 3, false),
                Err(e) => {
                    tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "outbox relay failed; trying again");
                    let wait = pause;
                    pause = (pause * 2).min(MAX_PAUSE);
                    (wait, false)
                }
            };
            tokio::select! {
                _ = self.bell.rung(), if listen => {}
                _ = tokio::time::sleep(wait) => {}
                _ = &mut stop => break,
            }
        }
        if let Err(e) = outbox::release_lease(&self.db, &self.holder).await {
            tracing::warn!(error = %e, "cannot give the relay's lease up; it runs out by itself");
        }
    }

    /// Publishes batches until the outbox is empty, the lease is lost, or a publish fails.
    async fn round(&self) -> Result<Round, String> {
        let batch = i64::try_from(self.config.batch).unwrap_or(i64::MAX);
        loop {
            let now = Utc::now();
            let lease =
                chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::MAX);
            if !outbox::take_lease(&self.db, &self.holder, now, now + lease)
                .await
                .map_err(|e| e.to_string())?
            {
                return Ok(Round::NotHolder);
            }
            let rows = outbox::unpublished(&self.db, batch)
                .await
                .map_err(|e| e.to_string())?;
            if rows.is_empty() {
                return Ok(Round::Drained);
            }
            let mut events = Vec::with_capacity(rows.len());
            let mut ids = Vec::with_capacity(rows.len());
            let mut unreadable = Vec::new();
            for row in &rows {
                match Event::from_json(row.body.as_bytes()) {
                    Ok(event) => {
                        events.push(event);
                        ids.push(row.id);
                    }
                    Err(e) => {
                        // Written by this service, so never expected; skipped rather than
                        // blocking every event behind it.
                        tracing::error!(id = row.id, error = %e, "unreadable outbox row skipped");
                        unreadable.push(row.id);
                    }
                }
            }
            let results = self.events.publish(&events).await;
            let mut published = unreadable;
            let mut failure = None;
            for (id, result) in ids.iter().zip(results) {
                match result {
                    Ok(()) => published.push(*id),
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            outbox::mark_published(&self.db, &published, Utc::now())
                .await
                .map_err(|e| e.to_string())?;
            if let Some(e) = failure {
                let left = rows.len() - published.len();
                return Err(format!("{left} events not published: {e}"));
            }
            if rows.len() < self.config.batch {
                return Ok(Round::Drained);
            }
        }
    }
}
