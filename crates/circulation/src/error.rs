//! How sending or applying a command can fail.

/// Why a request got no reply. The two cases differ in what the sender may conclude.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The command was not accepted (no connection to the broker, the publish was refused or
    /// unroutable, the in-process queue could not be written): nothing was or will be
    /// applied. Answer 503 and let the client retry.
    #[error("circulation unavailable: {0}")]
    Unavailable(String),
    /// The command may have been accepted, but no reply came before its deadline; after the
    /// deadline it is never applied. Whether it was applied before is unknown: answer 504 and
    /// let the client retry with the same `Idempotency-Key`, which returns the first result if
    /// there was one.
    #[error("no reply before the command's deadline")]
    Timeout,
}

/// Why a handler did not produce a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// The deadline passed before the command could be applied: it is settled unapplied and
    /// unanswered (its sender has given up).
    #[error("the command's deadline passed")]
    Expired,
    /// A dependency failed (the database is down): the command is offered again after the
    /// retry delay, and dead-lettered once delivered too often.
    #[error("transient failure: {0}")]
    Retry(String),
    /// The command can never be applied: it is dead-lettered at once.
    #[error("poison command: {0}")]
    Poison(String),
}

/// Opening the bus failed; the message names the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BusStartError(pub common::config::ConfigError);
