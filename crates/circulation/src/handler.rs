//! book-service's side of the contract: the [`Handler`] that applies commands, and the
//! tracing context a command carries from its sender to the consumer applying it.

use std::future::Future;

use crate::command::{Command, Outcome};
use crate::error::HandlerError;

/// Applies commands: book-service's side of the contract.
pub trait Handler: Send + Sync + 'static {
    /// Applies `command` (in one database transaction, de-duplicated by its message id) and
    /// says what to answer. Returning means the change is committed: the command is settled
    /// right after.
    fn handle(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<Outcome, HandlerError>> + Send;
}

/// The W3C `traceparent` of the current span, to put in a command (`Command::with_traceparent`).
pub fn current_traceparent() -> Option<String> {
    let mut headers = http::HeaderMap::new();
    common::telemetry::inject_trace(&tracing::Span::current(), &mut headers);
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The span a consumer applies `command` in, continuing the sender's trace.
pub(crate) fn apply_span(command: &Command) -> tracing::Span {
    let span = tracing::info_span!(
        "circulation.apply",
        otel.kind = "consumer",
        kind = command.kind.name(),
        message_id = %command.message_id,
        user_id = command.user_id,
    );
    if let Some(parent) = command
        .traceparent
        .as_deref()
        .and_then(|t| http::HeaderValue::from_str(t).ok())
    {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", parent);
        common::telemetry::continue_trace(&span, &headers);
    }
    span
}
