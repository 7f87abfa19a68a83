//! How a [`Borrowing`] — what the function answers, the original get-user-borrowings shape,
//! defined with the rest of the public contract in `api::library` — is made from
//! book-service's loans and titles. No HTTP here.

use std::collections::HashMap;

pub use api::library::Borrowing;
use api::library::{Book, Loan};

/// A loan whose title was not among those looked up.
#[derive(Debug, thiserror::Error)]
#[error("no title {0} for an active loan")]
pub struct MissingTitle(pub i64);

/// The borrowings of `loans` (in their order: newest first), each completed with the author
/// and ISBN of its title from `titles`. Returned loans are left out.
pub fn from_loans(
    loans: Vec<Loan>,
    titles: &HashMap<i64, Book>,
) -> Result<Vec<Borrowing>, MissingTitle> {
    loans
        .into_iter()
        .filter(|loan| loan.returned_at.is_none())
        .map(|loan| {
            let book = titles
                .get(&loan.book_id)
                .ok_or(MissingTitle(loan.book_id))?;
            Ok(Borrowing {
                book_id: loan.book_id,
                title: loan.title,
                author: book.author.clone(),
                isbn: book.isbn.clone(),
                borrowed_on: loan.borrowed_at,
                return_by: loan.due_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn loan(id: i64, book_id: i64, returned: bool) -> Loan {
        let at = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Loan {
            id,
            book_id,
            user_id: 3,
            title: format!("Title {book_id}"),
            borrowed_at: at,
            due_at: at + chrono::Duration::days(14),
            renewals_left: 2,
            returned_at: returned.then_some(at),
            overdue: false,
        }
    }

    fn book(id: i64) -> Book {
        Book {
            id,
            title: format!("Title {id}"),
            author: format!("Author {id}"),
            isbn: "9782070360024".into(),
            copies_total: 1,
            copies_available: 0,
            holds_waiting: 0,
        }
    }

    #[test]
    fn loans_become_borrowings_in_the_original_shape() {
        let titles = HashMap::from([(7, book(7)), (8, book(8))]);
        let out = from_loans(
            vec![loan(2, 8, false), loan(1, 7, false), loan(0, 9, true)],
            &titles,
        )
        .unwrap();
        assert_eq!(
            out.iter().map(|b| b.book_id).collect::<Vec<_>>(),
            [8, 7],
            "in the loans' order, returned ones left out"
        );
        let json = serde_json::to_value(&out[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "book_id": 7, "title": "Title 7", "author": "Author 7", "isbn": "9782070360024",
                "borrowed_on": "2026-03-01T10:00:00Z", "return_by": "2026-03-15T10:00:00Z"
            })
        );
        assert_eq!(
            from_loans(vec![loan(3, 5, false)], &titles).unwrap_err().0,
            5
        );
    }
}
