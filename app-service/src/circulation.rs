//! Borrowing, returning, renewing and holds: a verified caller's request becomes one
//! circulation command on the bus, and book-service's reply becomes the HTTP answer.
//!
//! The command carries only what app-service verified: the user id and role of the caller's
//! live session (never a value the client sent), the client's `Idempotency-Key` (scoped to the
//! user by `circulation::message_id_for_key`), and a deadline `CIRCULATION_TIMEOUT_MS` ahead,
//! after which book-service never applies it. The reply maps to HTTP exactly:
//!
//! | reply | answer |
//! |---|---|
//! | `Done { status, body }` | `status` with `body` (no body for 204) |
//! | `Refused { status, reason, detail }` | `status` with `{"detail", "reason"}` |
//! | `BusError::Unavailable` | 503 `{"detail"}` with `Retry-After` — nothing was done |
//! | `BusError::Timeout` | 504 `{"detail"}` — maybe done before the deadline, never after |

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use circulation::{current_traceparent, Bus, Client, Command, CommandKind, Outcome};
use service_kit::Caller;

use crate::error::ApiError;

/// Sends commands and waits for their replies; cheap to clone (clones share one connection).
#[derive(Clone)]
pub struct Circulation {
    client: Client,
    /// How long a command stays valid: the bus's `CIRCULATION_TIMEOUT_MS`.
    wait: Duration,
}

impl Circulation {
    /// A sender on `bus`. On RabbitMQ this opens the client's connection (and keeps
    /// reconnecting on its own); it returns once the first attempt is over, so start-up does
    /// not wait for a broker that is down.
    pub async fn new(bus: &Bus) -> Self {
        Self {
            client: bus.client().await,
            wait: bus.config().wait,
        }
    }

    /// Whether commands can be sent right now (readiness).
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Sends `kind` on behalf of `caller` and answers with the reply.
    #[tracing::instrument(skip_all, fields(kind = kind.name(), user_id = caller.user_id))]
    pub async fn send(
        &self,
        caller: &Caller,
        kind: CommandKind,
        idempotency_key: Option<&str>,
    ) -> Result<Response, ApiError> {
        let command = Command::new(
            kind,
            caller.user_id,
            caller.role,
            idempotency_key,
            self.wait,
        )
        .with_traceparent(current_traceparent());
        let reply = self.client.request(command).await?;
        answer(reply.outcome)
    }
}

/// The HTTP answer to a reply.
fn answer(outcome: Outcome) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(outcome.status())
        .map_err(|_| ApiError::Internal(format!("reply with status {}", outcome.status())))?;
    Ok(match outcome {
        Outcome::Done { .. } if status == StatusCode::NO_CONTENT => status.into_response(),
        Outcome::Done { body, .. } => (status, Json(body)).into_response(),
        refused @ Outcome::Refused { .. } => (status, Json(refused.body())).into_response(),
    })
}

#[cfg(test)]
mod tests {
    use api::library::RefusalReason;
    use serde_json::json;

    use super::*;

    async fn parts(outcome: Outcome) -> (StatusCode, Vec<u8>) {
        let resp = answer(outcome).expect("an answer");
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.to_vec())
    }

    #[tokio::test]
    async fn replies_map_to_status_and_body_exactly() {
        let (status, body) = parts(Outcome::done(201, &json!({"id": 3}))).await;
        assert_eq!(
            (status, body.as_slice()),
            (StatusCode::CREATED, &br#"{"id":3}"#[..])
        );

        let (status, body) = parts(Outcome::Done {
            status: 204,
            body: serde_json::Value::Null,
        })
        .await;
        assert_eq!((status, body.len()), (StatusCode::NO_CONTENT, 0));

        let (status, body) = parts(Outcome::refused(
            RefusalReason::HoldWaiting,
            "Someone waits",
        ))
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            json!({"detail": "Someone waits", "reason": "hold_waiting"})
        );
    }

    #[test]
    fn a_reply_with_an_impossible_status_is_our_failure() {
        let bad = Outcome::Done {
            status: 1000,
            body: serde_json::Value::Null,
        };
        assert!(matches!(answer(bad), Err(ApiError::Internal(_))));
    }
}
