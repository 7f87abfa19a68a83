//! The scheduled notices: a loan due within `DUE_SOON_DAYS` (`loan_due_soon`), a loan past
//! its due date (`loan_overdue`) — each once per due date (a renewal re-arms them).
//!
//! Safe with any number of instances: candidates are read without locks, then each loan is
//! claimed in its own transaction, under its title's lock, by a guarded update that sets
//! `due_soon_noticed_at` / `overdue_noticed_at` only if it is still unset; the event goes to
//! the outbox in that same transaction. Of two schedulers racing for a loan, the second
//! finds it claimed and writes nothing. Time is the library's clock.

use chrono::{DateTime, Utc};
use events::EventKind;
use service_kit::db::Db;

use crate::outbox::{self, Happened};
use crate::rules::Rules;
use crate::store::loans::{self, Notice};
use crate::store::{titles, utc, StoreError, Tx};

/// Sends the notices owed at `now`, at most `limit` of each kind per call; how many were
/// sent.
pub async fn send_due(
    db: &Db,
    rules: &Rules,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<usize, StoreError> {
    let soon = now + rules.due_soon;
    let mut sent = 0;
    for (notice, kind) in [
        (Notice::Overdue, EventKind::LoanOverdue),
        (Notice::DueSoon, EventKind::LoanDueSoon),
    ] {
        for (loan_id, title_id) in loans::owed(db, notice, now, soon, limit).await? {
            let mut tx = Tx::begin(db).await?;
            titles::lock(&mut tx, title_id).await?;
            match loans::mark_noticed(&mut tx, loan_id, notice, now, soon).await? {
                Some((user_id, due_at)) => {
                    let what = Happened::loan(kind, title_id, user_id, loan_id, utc(due_at));
                    outbox::record(&mut tx, what, now).await?;
                    tx.commit().await?;
                    sent += 1;
                }
                // Another instance was first, or the loan changed meanwhile.
                None => tx.rollback().await?,
            }
        }
    }
    Ok(sent)
}
