//! The command contract between app-service (which sends) and book-service (which applies):
//! what a circulation command says, and what its reply says.
//!
//! A command carries everything the applier may rely on: who asks (the user id and role that
//! app-service verified from the caller's live session — never a value a client sent), what
//! they ask, an id that makes it idempotent, and a deadline after which it must never be
//! applied because nobody waits for its answer any more. The body is the contract: transport
//! headers repeat some of it for routing and tracing, but the applier reads only the body.

use std::time::Duration;

use api::library::RefusalReason;
use chrono::{DateTime, Utc};
use common::auth::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// One circulation command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Identifies the command for de-duplication: redeliveries and client retries with the
    /// same `Idempotency-Key` carry the same id, and the applier answers them with the first
    /// result. See [`message_id_for_key`].
    pub message_id: Uuid,
    /// The verified caller.
    pub user_id: i64,
    /// The caller's role from their live session (a librarian may act on others' loans).
    pub role: Role,
    /// What to do.
    pub kind: CommandKind,
    /// After this instant the command is dropped unapplied: its sender has given up.
    pub deadline: DateTime<Utc>,
    /// The sender's W3C `traceparent`, so the applier's span joins the request's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// What a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandKind {
    /// Borrow a copy of a title.
    Borrow { book_id: i64 },
    /// Return a loan (the borrower, or a librarian).
    Return { loan_id: i64 },
    /// Renew a loan (the borrower, or a librarian on their behalf at the desk).
    Renew { loan_id: i64 },
    /// Join a title's waiting list.
    PlaceHold { book_id: i64 },
    /// Leave a waiting list, or give up a copy set aside (the holder, or a librarian).
    CancelHold { hold_id: i64 },
}

impl CommandKind {
    /// A short name for logs, metrics and the AMQP `type` property.
    pub fn name(&self) -> &'static str {
        match self {
            CommandKind::Borrow { .. } => "borrow",
            CommandKind::Return { .. } => "return",
            CommandKind::Renew { .. } => "renew",
            CommandKind::PlaceHold { .. } => "place_hold",
            CommandKind::CancelHold { .. } => "cancel_hold",
        }
    }
}

impl Command {
    /// A command from `user_id` acting as `role`, due within `wait` from now.
    ///
    /// `idempotency_key` is the client's `Idempotency-Key` header, if any: the message id is
    /// then derived from it (and the user), so a retry is recognised; otherwise it is random.
    pub fn new(
        kind: CommandKind,
        user_id: i64,
        role: Role,
        idempotency_key: Option<&str>,
        wait: Duration,
    ) -> Self {
        let message_id = idempotency_key
            .map(|key| message_id_for_key(user_id, key))
            .unwrap_or_else(Uuid::new_v4);
        Self {
            message_id,
            user_id,
            role,
            kind,
            deadline: Utc::now()
                + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
            traceparent: None,
        }
    }

    /// The same command carrying the trace context `traceparent`.
    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// How long until the deadline, or `None` once it has passed.
    pub fn remaining(&self) -> Option<Duration> {
        (self.deadline - Utc::now())
            .to_std()
            .ok()
            .filter(|d| !d.is_zero())
    }

    /// Whether the deadline has passed: the command must not be applied.
    pub fn is_expired(&self) -> bool {
        self.remaining().is_none()
    }
}

/// The message id of a command sent with `Idempotency-Key: key` by `user_id`.
///
/// Keys are chosen by clients, so they are scoped per user: two readers using the same key
/// get different ids and never see each other's results. The id is a UUID (version 8)
/// made of the first 16 bytes of SHA-256 over a fixed label, the user id and the key.
pub fn message_id_for_key(user_id: i64, key: &str) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"circulation-idempotency-key\0");
    hash.update(user_id.to_be_bytes());
    hash.update(key.as_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The answer to one command, matched to its request by `correlation_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The correlation id of the request this answers.
    pub correlation_id: Uuid,
    pub outcome: Outcome,
}

/// What applying a command came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Applied: the HTTP status and JSON body to answer with (e.g. 201 and the new loan).
    Done {
        status: u16,
        body: serde_json::Value,
    },
    /// Refused by a rule; nothing changed.
    Refused {
        status: u16,
        reason: RefusalReason,
        detail: String,
    },
}

impl Outcome {
    /// Applied, answering `status` with `body`.
    pub fn done(status: u16, body: &impl Serialize) -> Self {
        Outcome::Done {
            status,
            body: serde_json::to_value(body).expect("reply bodies serialise"),
        }
    }

    /// Refused for `reason` (its status), with a sentence for the client.
    pub fn refused(reason: RefusalReason, detail: impl Into<String>) -> Self {
        Outcome::Refused {
            status: reason.status(),
            reason,
            detail: detail.into(),
        }
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Outcome::Done { status, .. } | Outcome::Refused { status, .. } => *status,
        }
    }

    /// The HTTP body to answer with: the applied result, or `{"detail", "reason"}`.
    pub fn body(&self) -> serde_json::Value {
        match self {
            Outcome::Done { body, .. } => body.clone(),
            Outcome::Refused { reason, detail, .. } => {
                serde_json::json!({"detail": detail, "reason": reason})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_scoped_per_user() {
        let a = message_id_for_key(1, "k-1");
        assert_eq!(a, message_id_for_key(1, "k-1"), "a retry is recognised");
        assert_ne!(
            a,
            message_id_for_key(2, "k-1"),
            "another user's key is another id"
        );
        assert_ne!(a, message_id_for_key(1, "k-2"));
        assert_eq!(a.get_version_num(), 8);
        let c = Command::new(
            CommandKind::Borrow { book_id: 3 },
            1,
            Role::User,
            Some("k-1"),
            Duration::from_secs(5),
        );
        assert_eq!(c.message_id, a);
        let random = Command::new(
            CommandKind::Borrow { book_id: 3 },
            1,
            Role::User,
            None,
            Duration::from_secs(5),
        );
        assert_ne!(random.message_id, a);
    }

    #[test]
    fn deadlines_expire() {
        let c = Command::new(
            CommandKind::Return { loan_id: 1 },
            1,
            Role::User,
            None,
            Duration::from_secs(60),
        );
        assert!(!c.is_expired());
        assert!(c.remaining().unwrap() > Duration::from_secs(59));
        let past = Command {
            deadline: Utc::now() - chrono::Duration::milliseconds(1),
            ..c
        };
        assert!(past.is_expired() && past.remaining().is_none());
    }

    #[test]
    fn the_wire_form_is_tagged_json() {
        let c = Command::new(
            CommandKind::PlaceHold { book_id: 9 },
            4,
            Role::Librarian,
            None,
            Duration::from_secs(5),
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v["kind"],
            serde_json::json!({"type": "place_hold", "book_id": 9})
        );
        assert_eq!(v["role"], "librarian");
        assert!(v.get("traceparent").is_none());
        assert_eq!(serde_json::from_value::<Command>(v).unwrap(), c);

        let refused = Outcome::refused(RefusalReason::NoCopyAvailable, "No copy available");
        assert_eq!(refused.status(), 409);
        assert_eq!(
            refused.body(),
            serde_json::json!({"detail": "No copy available", "reason": "no_copy_available"})
        );
        let wire = serde_json::to_value(&refused).unwrap();
        assert_eq!(wire["result"], "refused");
        let done = Outcome::done(201, &serde_json::json!({"id": 1}));
        assert_eq!(
            (done.status(), done.body()),
            (201, serde_json::json!({"id": 1}))
        );
    }
}
