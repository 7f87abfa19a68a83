//! The outbox relay: publishes the outbox's events to the event stream in id order, and marks
//! each published once the stream acknowledged it.
//!
//! One relay publishes at a time across all instances — the holder of the lease row
//! (`outbox_relay`), taken and extended with a guarded update once a third of it has run (not
//! at every batch or poll: each is a commit), given up at shutdown, taken over by another
//! instance when it runs out (a crashed holder). So the order of the outbox is
//! the order of the stream, title by title. A batch goes out with many events in flight
//! (see [`EventStream::publish`]); an event whose publish failed stays unpublished, with the
//! later events of its title, and the relay tries again after a pause. An event published but
//! not marked (a crash in between, the database down) is published again later: the stream
//! drops it as a duplicate within its window, and consumers de-duplicate by id anyway.

use std::time::Duration;

use chrono::{DateTime, Utc};
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
        let mut held_until = None;
        loop {
            let (wait, listen) = match self.round(&mut held_until).await {
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
    /// `held_until`: when the lease this relay last took runs out.
    async fn round(&self, held_until: &mut Option<DateTime<Utc>>) -> Result<Round, String> {
        let batch = i64::try_from(self.config.batch).unwrap_or(i64::MAX);
        loop {
            if !hold_lease(&self.db, &self.holder, self.config.lease, held_until).await? {
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

/// Whether `holder` holds the relay's lease now: kept as it is while more than two thirds of
/// it are left (nobody else can take it before it runs out), taken or extended otherwise.
/// `held_until`: when the lease `holder` last took runs out.
async fn hold_lease(
    db: &Db,
    holder: &str,
    lease: Duration,
    held_until: &mut Option<DateTime<Utc>>,
) -> Result<bool, String> {
    let now = Utc::now();
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    if held_until.is_some_and(|until| until - now > lease - lease / 3) {
        return Ok(true);
    }
    let until = now + lease;
    let taken = outbox::take_lease(db, holder, now, until)
        .await
        .map_err(|e| e.to_string())?;
    *held_until = taken.then_some(until);
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::startup::open_database;
    use service_kit::db::DbConfig;

    /// The lease's row as stored: its holder and when it runs out.
    async fn stored_lease(db: &Db) -> (Option<String>, Option<String>) {
        let sql = "SELECT holder, CAST(expires_at AS TEXT) FROM outbox_relay";
        service_kit::with_db!(db, pool => sqlx::query_as(sql).fetch_one(pool).await).unwrap()
    }

    #[tokio::test]
    async fn the_lease_is_written_once_a_third_has_run_and_taken_over_once_it_ran_out() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_database(&DbConfig::sqlite(dir.path(), "books.sqlite"))
            .await
            .unwrap();
        // Long enough that two calls in a row fall within its first third on a loaded machine.
        let lease = Duration::from_millis(1500);
        let (mut a, mut b) = (None, None);
        assert!(hold_lease(&db, "a", lease, &mut a).await.unwrap());
        let taken = stored_lease(&db).await;
        assert_eq!(taken.0.as_deref(), Some("a"));
        // Within the first third: held without a write.
        assert!(hold_lease(&db, "a", lease, &mut a).await.unwrap());
        assert_eq!(stored_lease(&db).await, taken);
        assert!(!hold_lease(&db, "b", lease, &mut b).await.unwrap());
        assert_eq!(b, None);
        // Past a third: extended.
        tokio::time::sleep(lease / 3 + Duration::from_millis(50)).await;
        assert!(hold_lease(&db, "a", lease, &mut a).await.unwrap());
        let extended = stored_lease(&db).await;
        assert_eq!(extended.0.as_deref(), Some("a"));
        assert_ne!(extended.1, taken.1);
        // "a" stops renewing (a crashed holder): "b" takes over once the lease ran out, and
        // "a" knows it no longer holds it.
        assert!(!hold_lease(&db, "b", lease, &mut b).await.unwrap());
        tokio::time::sleep(lease + Duration::from_millis(50)).await;
        assert!(hold_lease(&db, "b", lease, &mut b).await.unwrap());
        assert_eq!(stored_lease(&db).await.0.as_deref(), Some("b"));
        assert!(!hold_lease(&db, "a", lease, &mut a).await.unwrap());
        assert_eq!(a, None);
    }
}
