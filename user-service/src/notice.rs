//! What a reader is told about a circulation event, in words: the sentence of the
//! notification and the e-mail around it. No SQL, no I/O.

use api::notifications::NotificationKind;
use chrono::{DateTime, Utc};
use events::{Event, EventKind};

/// The words of a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wording {
    pub kind: NotificationKind,
    /// One sentence (the notification's `message`).
    pub message: String,
    pub subject: String,
    pub body: String,
}

/// The notice of `event` for `username`; `None` when the reader is not told about this kind
/// of event.
pub fn word(event: &Event, username: &str) -> Option<Wording> {
    let p = &event.payload;
    let book = format!("\"{}\" by {}", p.title, p.author);
    let (kind, message, subject) = match event.kind {
        EventKind::HoldReady => (
            NotificationKind::HoldReady,
            match p.pickup_deadline {
                Some(deadline) => format!(
                    "A copy of {book} is set aside for you until {}.",
                    when(deadline)
                ),
                None => format!("A copy of {book} is set aside for you."),
            },
            format!("\"{}\" is ready for you", p.title),
        ),
        EventKind::HoldExpired => (
            NotificationKind::HoldExpired,
            format!(
                "The copy of {book} set aside for you was not picked up in time; it has gone to \
                 the next reader."
            ),
            format!("Your hold on \"{}\" has expired", p.title),
        ),
        EventKind::LoanDueSoon => (
            NotificationKind::LoanDueSoon,
            match p.due_at {
                Some(due) => format!("Your loan of {book} is due on {}.", when(due)),
                None => format!("Your loan of {book} is due soon."),
            },
            format!("\"{}\" is due soon", p.title),
        ),
        EventKind::LoanOverdue => (
            NotificationKind::LoanOverdue,
            match p.due_at {
                Some(due) => format!(
                    "Your loan of {book} was due on {}; please return it.",
                    when(due)
                ),
                None => format!("Your loan of {book} is overdue; please return it."),
            },
            format!("\"{}\" is overdue", p.title),
        ),
        EventKind::LoanCreated
        | EventKind::LoanReturned
        | EventKind::LoanRenewed
        | EventKind::HoldPlaced
        | EventKind::HoldCancelled => return None,
    };
    let body = format!(
        "Hello {username},\r\n\r\n{message}\r\n\r\nYour notifications: GET /notifications/\r\n\r\n-- \r\nThe library\r\n"
    );
    Some(Wording {
        kind,
        message,
        subject,
        body,
    })
}

/// A time as readers read it: `2026-03-04 10:00 UTC`.
fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use events::Payload;

    use super::*;

    fn event(kind: EventKind, payload: Payload) -> Event {
        Event::new(
            kind,
            7,
            12,
            "2026-03-01T10:00:00Z".parse().unwrap(),
            payload,
        )
    }

    fn germinal() -> Payload {
        Payload {
            title: "Germinal".into(),
            author: "Émile Zola".into(),
            ..Payload::default()
        }
    }

    #[test]
    fn each_notice_says_what_and_when() {
        let ready = event(
            EventKind::HoldReady,
            Payload {
                pickup_deadline: Some("2026-03-04T10:00:00Z".parse().unwrap()),
                ..germinal()
            },
        );
        let w = word(&ready, "ana").unwrap();
        assert_eq!(w.kind, NotificationKind::HoldReady);
        assert_eq!(
            w.message,
            "A copy of \"Germinal\" by Émile Zola is set aside for you until 2026-03-04 10:00 UTC."
        );
        assert_eq!(w.subject, "\"Germinal\" is ready for you");
        assert!(w.body.starts_with("Hello ana,\r\n\r\nA copy of"));
        let overdue = event(
            EventKind::LoanOverdue,
            Payload {
                due_at: Some("2026-02-28T09:30:00Z".parse().unwrap()),
                ..germinal()
            },
        );
        assert!(word(&overdue, "ana")
            .unwrap()
            .message
            .contains("was due on 2026-02-28 09:30 UTC; please return it"));
        assert!(word(&event(EventKind::HoldExpired, germinal()), "ana")
            .unwrap()
            .message
            .contains("not picked up in time"));
        assert_eq!(
            word(&event(EventKind::LoanDueSoon, germinal()), "ana")
                .unwrap()
                .kind,
            NotificationKind::LoanDueSoon
        );
    }

    #[test]
    fn other_events_are_not_notices() {
        for kind in [
            EventKind::LoanCreated,
            EventKind::LoanReturned,
            EventKind::LoanRenewed,
            EventKind::HoldPlaced,
            EventKind::HoldCancelled,
        ] {
            assert_eq!(word(&event(kind, germinal()), "ana"), None);
        }
    }
}
