//! Every SQL statement of the service, written once for both backends (PostgreSQL and
//! SQLite) with `$1` parameters and [`service_kit::with_db`]: [`users`] holds the accounts,
//! [`revocations`] the pending requests to end a user's sessions, [`notifications`] what
//! readers were told and [`mail`] the e-mails of those notices still to send.

pub mod mail;
pub mod notifications;
pub mod revocations;
pub mod users;

use service_kit::db::is_unavailable;

/// Which unique field a registration collided with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Username,
    Email,
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0:?} already registered")]
    Duplicate(Taken),
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database error: {0}")]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Other(e)
        }
    }
}
