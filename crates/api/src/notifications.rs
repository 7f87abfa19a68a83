//! Bodies of the notification endpoints: `GET /notifications/`,
//! `POST /notifications/{id}/read` and `GET /notifications/stream`.
//!
//! A reader is told when a copy is set aside for them (`hold_ready`), when they did not pick
//! it up in time (`hold_expired`), when a loan is due within two days (`loan_due_soon`) and
//! when it is overdue (`loan_overdue`) — in the list, live on the stream (server-sent events,
//! `event: notification`, `id:` the notification's id, `data:` a [`Notification`]), and by
//! e-mail to their account's address. A reader sees only their own.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{Check, FieldError};

/// Notifications per page when `limit` is not given.
pub const NOTIFICATIONS_PAGE_DEFAULT: u32 = 20;
/// The largest `limit`.
pub const NOTIFICATIONS_PAGE_MAX: u32 = 100;
/// The server-sent event name of a new notification on `GET /notifications/stream`.
pub const STREAM_EVENT: &str = "notification";

/// What the reader is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A copy is set aside for the reader until `pickup_deadline`.
    HoldReady,
    /// The copy set aside was not picked up in time; it passed to the next reader.
    HoldExpired,
    /// A loan is due soon (`due_at`).
    LoanDueSoon,
    /// A loan is overdue (`due_at` has passed).
    LoanOverdue,
}

impl NotificationKind {
    /// The name in JSON (`hold_ready`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::HoldReady => "hold_ready",
            NotificationKind::HoldExpired => "hold_expired",
            NotificationKind::LoanDueSoon => "loan_due_soon",
            NotificationKind::LoanOverdue => "loan_overdue",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            NotificationKind::HoldReady,
            NotificationKind::HoldExpired,
            NotificationKind::LoanDueSoon,
            NotificationKind::LoanOverdue,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// One notification of the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 42, "kind": "hold_ready", "book_id": 7, "title": "Germinal", "author": "Émile Zola",
    "message": "A copy of \"Germinal\" by Émile Zola is set aside for you until 2026-03-04 10:00 UTC.",
    "loan_id": null, "hold_id": 5, "due_at": null, "pickup_deadline": "2026-03-04T10:00:00Z",
    "occurred_at": "2026-03-01T10:00:00Z", "created_at": "2026-03-01T10:00:00.120Z",
    "read": false, "read_at": null
}))]
pub struct Notification {
    pub id: i64,
    pub kind: NotificationKind,
    /// The title concerned.
    pub book_id: i64,
    pub title: String,
    pub author: String,
    /// One sentence for the reader (also the e-mail's first line).
    pub message: String,
    pub loan_id: Option<i64>,
    pub hold_id: Option<i64>,
    /// The loan's due date (loan notices).
    pub due_at: Option<DateTime<Utc>>,
    /// Until when the copy waits (`hold_ready`).
    pub pickup_deadline: Option<DateTime<Utc>>,
    /// When it happened at the library.
    pub occurred_at: DateTime<Utc>,
    /// When the notification was stored.
    pub created_at: DateTime<Utc>,
    pub read: bool,
    pub read_at: Option<DateTime<Utc>>,
}

/// `GET /notifications/`: which, and the page (newest first). The answer has a
/// `Link: <...>; rel="next"` header while there may be more.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationSearch {
    /// `true`: unread ones only; `false`: read ones only; absent: all.
    #[serde(default)]
    pub unread: Option<bool>,
    /// Page size, 1–100 (default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The id of the last notification of the previous page (from the `Link` header).
    #[serde(default)]
    #[param(minimum = 1)]
    pub cursor: Option<i64>,
}

impl NotificationSearch {
    /// The page size asked for, or the default.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(NOTIFICATIONS_PAGE_DEFAULT)
    }
}

impl Check for NotificationSearch {
    fn check(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        match self.limit {
            Some(0) => errors.push(FieldError::query(
                "limit",
                "greater_than_equal",
                "Input should be greater than or equal to 1",
            )),
            Some(n) if n > NOTIFICATIONS_PAGE_MAX => errors.push(FieldError::query(
                "limit",
                "less_than_equal",
                format!("Input should be less than or equal to {NOTIFICATIONS_PAGE_MAX}"),
            )),
            _ => {}
        }
        if self.cursor.is_some_and(|c| c < 1) {
            errors.push(FieldError::query(
                "cursor",
                "greater_than_equal",
                "Input should be greater than or equal to 1",
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded_and_cursors_positive() {
        let q = |limit, cursor| NotificationSearch {
            unread: None,
            limit,
            cursor,
        };
        assert!(q(None, None).check().is_empty());
        assert_eq!(q(None, None).limit(), 20);
        assert!(q(Some(100), Some(1)).check().is_empty());
        assert_eq!(q(Some(0), None).check()[0].loc, ["query", "limit"]);
        assert_eq!(q(Some(101), None).check()[0].kind, "less_than_equal");
        assert_eq!(q(None, Some(0)).check()[0].loc, ["query", "cursor"]);
        assert_eq!(q(Some(0), Some(-1)).check().len(), 2);
    }

    #[test]
    fn kinds_are_snake_case() {
        for kind in [
            "hold_ready",
            "hold_expired",
            "loan_due_soon",
            "loan_overdue",
        ] {
            let parsed = NotificationKind::parse(kind).unwrap();
            assert_eq!(serde_json::to_value(parsed).unwrap(), kind);
        }
        assert_eq!(NotificationKind::parse("loan_created"), None);
    }
}
