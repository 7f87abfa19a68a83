//! The notifier: user-service's durable consumer of circulation events. For each event a
//! reader is told about it stores a notification for that reader and, in the same
//! transaction, its e-mail to the reader's account address; then the stream acknowledges the
//! events (the consumer does so once [`Notifier::handle`] returned), the mailer is rung and
//! the readers' open streams are told.
//!
//! Idempotent by event id (a redelivered event stores nothing new and mails nothing), so an
//! event is stored exactly once even when the acknowledgement is lost. An event for an unknown
//! account is logged and acknowledged; a database failure makes the whole batch come back.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use events::{Event, EventHandler, HandleError};
use service_kit::db::Db;
use tokio::sync::Notify;

use crate::live::LiveHub;
use crate::notice;
use crate::store::notifications::{self, NewMail, NewNotification};
use crate::store::users;

/// Stores notifications from events.
#[derive(Clone)]
pub struct Notifier {
    pub db: Db,
    pub live: LiveHub,
    /// Rung when e-mails were queued.
    pub mail_bell: Arc<Notify>,
}

impl EventHandler for Notifier {
    async fn handle(&self, events: &[Event]) -> Result<(), HandleError> {
        let notices: Vec<&Event> = events.iter().filter(|e| e.kind.is_notice()).collect();
        if notices.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = notices
            .iter()
            .map(|e| e.user_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let readers = users::recipients(&self.db, &ids)
            .await
            .map_err(|e| HandleError::Retry(e.to_string()))?;
        let mut batch = Vec::with_capacity(notices.len());
        for event in notices {
            let Some((username, email)) = readers.get(&event.user_id) else {
                tracing::warn!(event_id = %event.id, user_id = event.user_id, kind = %event.kind,
                    "event for an unknown account; nobody to tell");
                continue;
            };
            let Some(words) = notice::word(event, username) else {
                continue;
            };
            let p = &event.payload;
            batch.push(NewNotification {
                event_id: event.id.to_string(),
                user_id: event.user_id,
                kind: words.kind,
                book_id: event.title_id,
                title: p.title.clone(),
                author: p.author.clone(),
                message: words.message,
                loan_id: p.loan_id,
                hold_id: p.hold_id,
                due_at: p.due_at,
                pickup_deadline: p.pickup_deadline,
                occurred_at: event.occurred_at,
                mail: NewMail {
                    to: email.clone(),
                    subject: words.subject,
                    body: words.body,
                },
            });
        }
        let stored = notifications::store(&self.db, &batch, Utc::now())
            .await
            .map_err(|e| HandleError::Retry(e.to_string()))?;
        if !stored.is_empty() {
            self.mail_bell.notify_one();
            let told: Vec<i64> = stored
                .iter()
                .map(|(_, reader)| *reader)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            self.live.notified(&told).await;
            tracing::info!(stored = stored.len(), "notifications stored");
        }
        Ok(())
    }
}
