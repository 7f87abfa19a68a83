//! The event contract: what book-service says happened, as every consumer reads it.
//!
//! An event is JSON (the body of one stream message). Its `id` is unique and is the stream's
//! message id (`Nats-Msg-Id`), so a publish repeated after a lost acknowledgement is dropped
//! by the stream, and consumers de-duplicate by it. `title_id` is the ordering key: events
//! of one title are published, stored and delivered in the order they happened. Fields are
//! only ever added; a consumer ignores what it does not know.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A copy was set aside for the reader (returned, added, passed on, or on the shelf when
    /// the hold was placed); `pickup_deadline` says until when.
    HoldReady,
    /// The reader did not pick up the copy set aside in time; it passed to the next holder.
    HoldExpired,
    /// The reader's loan is due within `DUE_SOON_DAYS`.
    LoanDueSoon,
    /// The reader's loan is past its due date.
    LoanOverdue,
    /// A loan started.
    LoanCreated,
    /// A loan ended.
    LoanReturned,
    /// A loan was renewed; `due_at` is the new due date.
    LoanRenewed,
    /// The reader joined the title's waiting list.
    HoldPlaced,
    /// The hold was cancelled (by the reader or a librarian).
    HoldCancelled,
}

impl EventKind {
    /// Every kind, in the catalogue's order.
    pub const ALL: [EventKind; 9] = [
        EventKind::HoldReady,
        EventKind::HoldExpired,
        EventKind::LoanDueSoon,
        EventKind::LoanOverdue,
        EventKind::LoanCreated,
        EventKind::LoanReturned,
        EventKind::LoanRenewed,
        EventKind::HoldPlaced,
        EventKind::HoldCancelled,
    ];

    /// The name in JSON and in the database (`hold_ready`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::HoldReady => "hold_ready",
            EventKind::HoldExpired => "hold_expired",
            EventKind::LoanDueSoon => "loan_due_soon",
            EventKind::LoanOverdue => "loan_overdue",
            EventKind::LoanCreated => "loan_created",
            EventKind::LoanReturned => "loan_returned",
            EventKind::LoanRenewed => "loan_renewed",
            EventKind::HoldPlaced => "hold_placed",
            EventKind::HoldCancelled => "hold_cancelled",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the reader is told about it (a notification and an e-mail): a hold ready or
    /// expired, a loan due soon or overdue. The others are on the stream for other consumers.
    pub fn is_notice(self) -> bool {
        matches!(
            self,
            EventKind::HoldReady
                | EventKind::HoldExpired
                | EventKind::LoanDueSoon
                | EventKind::LoanOverdue
        )
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a notice needs to be written without asking book-service again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Payload {
    /// The title's name and author, as catalogued when the event happened.
    pub title: String,
    pub author: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loan_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_id: Option<i64>,
    /// The loan's due date (loan events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// Until when the copy waits for the reader (`hold_ready`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_deadline: Option<DateTime<Utc>>,
}

/// One circulation event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique; the stream's message id.
    pub id: Uuid,
    pub kind: EventKind,
    /// The ordering key: the subject is `<prefix>.<title_id>`.
    pub title_id: i64,
    /// The reader concerned.
    pub user_id: i64,
    /// When it happened (the library's clock), RFC 3339 UTC.
    pub occurred_at: DateTime<Utc>,
    pub payload: Payload,
}

impl Event {
    /// A new event with a fresh id.
    pub fn new(
        kind: EventKind,
        title_id: i64,
        user_id: i64,
        occurred_at: DateTime<Utc>,
        payload: Payload,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            kind,
            title_id,
            user_id,
            occurred_at,
            payload,
        }
    }

    /// The JSON body of its message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events serialise")
    }

    /// An event read from a message body.
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// An event no consumer could handle, kept for an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The consumer that gave up on it.
    pub consumer: String,
    /// `undecodable: …`, `rejected: …` or `delivery_limit`.
    pub reason: String,
    /// Deliveries to that consumer.
    pub deliveries: u32,
    /// The event's message body, as published.
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_shape_is_the_contract() {
        let at: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        let mut event = Event::new(
            EventKind::HoldReady,
            7,
            12,
            at,
            Payload {
                title: "Germinal".into(),
                author: "Émile Zola".into(),
                hold_id: Some(5),
                pickup_deadline: Some(at + chrono::Duration::days(3)),
                ..Payload::default()
            },
        );
        event.id = Uuid::nil();
        let json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "00000000-0000-0000-0000-000000000000",
                "kind": "hold_ready",
                "title_id": 7,
                "user_id": 12,
                "occurred_at": "2026-03-01T10:00:00Z",
                "payload": {"title": "Germinal", "author": "Émile Zola", "hold_id": 5,
                            "pickup_deadline": "2026-03-04T10:00:00Z"}
            })
        );
        assert_eq!(Event::from_json(event.to_json().as_bytes()).unwrap(), event);
        // Unknown fields (a newer producer) are ignored.
        let newer = r#"{"id":"00000000-0000-0000-0000-000000000000","kind":"loan_overdue",
            "title_id":1,"user_id":2,"occurred_at":"2026-03-01T10:00:00Z",
            "payload":{"title":"T","author":"A","shelf":"B3"},"version":2}"#;
        assert_eq!(
            Event::from_json(newer.as_bytes()).unwrap().kind,
            EventKind::LoanOverdue
        );
    }

    #[test]
    fn kinds_round_trip_and_four_are_notices() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
        }
        let notices: Vec<_> = EventKind::ALL
            .into_iter()
            .filter(|k| k.is_notice())
            .collect();
        assert_eq!(
            notices,
            [
                EventKind::HoldReady,
                EventKind::HoldExpired,
                EventKind::LoanDueSoon,
                EventKind::LoanOverdue
            ]
        );
        assert_eq!(EventKind::parse("nonsense"), None);
    }
}
