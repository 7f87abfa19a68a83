//! What happened, as events in the outbox: every change that produces a circulation event
//! writes it here, in its own transaction, so the event exists exactly when the change does
//! (a command refused or rolled back leaves none). The [`crate::relay`] publishes them.
//!
//! Recording takes the title's lock: within a title, events are then written — and their ids
//! given — in commit order, which is the order the relay publishes them in.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use events::{Event, EventKind, Payload};
use tokio::sync::Notify;

use crate::store::{outbox, titles, StoreError, Tx};

/// Tells the relay that events were committed, so it publishes at once instead of at its next
/// poll; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Bell(Arc<Notify>);

impl Bell {
    /// Rings (after a commit). A ring while the relay is busy is kept for its next wait.
    pub fn ring(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next ring (or at once for one kept).
    pub async fn rung(&self) {
        self.0.notified().await;
    }
}

/// The facts an event is made of, besides the title's name (read here).
#[derive(Debug, Clone, Copy)]
pub struct Happened {
    pub kind: EventKind,
    pub title_id: i64,
    pub user_id: i64,
    pub loan_id: Option<i64>,
    pub hold_id: Option<i64>,
    pub due_at: Option<DateTime<Utc>>,
    pub pickup_deadline: Option<DateTime<Utc>>,
}

impl Happened {
    /// Something about loan `loan_id`, due at `due_at`.
    pub fn loan(
        kind: EventKind,
        title_id: i64,
        user_id: i64,
        loan_id: i64,
        due_at: DateTime<Utc>,
    ) -> Self {
        Self {
            kind,
            title_id,
            user_id,
            loan_id: Some(loan_id),
            hold_id: None,
            due_at: Some(due_at),
            pickup_deadline: None,
        }
    }

    /// Something about hold `hold_id`.
    pub fn hold(kind: EventKind, title_id: i64, user_id: i64, hold_id: i64) -> Self {
        Self {
            kind,
            title_id,
            user_id,
            loan_id: None,
            hold_id: Some(hold_id),
            due_at: None,
            pickup_deadline: None,
        }
    }

    /// The same, with the copy waiting until `deadline`.
    pub fn until(self, deadline: DateTime<Utc>) -> Self {
        Self {
            pickup_deadline: Some(deadline),
            ..self
        }
    }
}

/// Writes the event of `what`, which happened at `now`, to the outbox in `tx`.
pub async fn record(tx: &mut Tx, what: Happened, now: DateTime<Utc>) -> Result<(), StoreError> {
    let (title, author) = titles::lock_names(tx, what.title_id)
        .await?
        .ok_or(StoreError::Other(sqlx::Error::RowNotFound))?;
    let event = Event::new(
        what.kind,
        what.title_id,
        what.user_id,
        now,
        Payload {
            title,
            author,
            loan_id: what.loan_id,
            hold_id: what.hold_id,
            due_at: what.due_at,
            pickup_deadline: what.pickup_deadline,
        },
    );
    outbox::insert(
        tx,
        &event.id.to_string(),
        what.kind.as_str(),
        what.title_id,
        what.user_id,
        &event.to_json(),
        now,
    )
    .await
}
