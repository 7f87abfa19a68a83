//! How opening the stream, publishing or handling an event can fail.

/// Opening the stream failed; the message names the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StreamStartError(pub common::config::ConfigError);

/// Why an event was not stored by the stream. Nothing is known to be stored; publishing it
/// again is safe (the stream drops a duplicate by its id).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The stream could not be reached, refused it, or did not acknowledge it in time.
    #[error("event stream unavailable: {0}")]
    Unavailable(String),
    /// Not attempted: an earlier event of the same title failed in this batch, and publishing
    /// this one first would break the title's order.
    #[error("held back behind an earlier event of the same title")]
    HeldBack,
}

/// Why a handler did not take the events it was handed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// A dependency failed (the database is down): delivered again after a pause, and
    /// dead-lettered once delivered `max_deliver` times.
    #[error("transient failure: {0}")]
    Retry(String),
    /// The event can never be handled: dead-lettered at once.
    #[error("poison event: {0}")]
    Poison(String),
}
