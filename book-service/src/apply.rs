//! Applying circulation commands: book-service's [`Handler`].
//!
//! Each command is one database transaction that (1) records the command's id in
//! `processed_commands` — a duplicate (redelivery, client retry with the same
//! `Idempotency-Key`) stops here and gets the stored reply; (2) takes its locks in one order —
//! reader, title, loan, hold, copy — and reads the facts; (3) asks [`Rules`] for the decision;
//! (4) writes the change, its circulation events (to the outbox, see [`crate::outbox`]) and
//! the reply; (5) commits, unless the command's deadline passed meanwhile, and rings the
//! relay. A refusal is a reply too, stored like a success, and produces no event. Conflicts between concurrent
//! transactions (deadlock, serialization failure, SQLite busy) are retried at once; a database
//! that cannot be reached makes the command go back to the queue.

use api::library::{HoldState, RefusalReason};
use chrono::{DateTime, Utc};
use circulation::{Command, CommandKind, Handler, HandlerError, Outcome};
use events::EventKind;
use service_kit::db::Db;

use crate::clock::SharedClock;
use crate::outbox::{self, Bell, Happened};
use crate::rules::{may_act_on, no_copy, refuse, CopyStatus, LoanTerms, Rules, Standing};
use crate::store::{self, commands, copies, holds, loans, titles, StoreError, Tx};

/// How often a transaction that collided with another is tried before the command goes back
/// to the queue.
const ATTEMPTS: usize = 3;

/// Applies commands to the library's database.
#[derive(Clone)]
pub struct CommandHandler {
    db: Db,
    clock: SharedClock,
    rules: Rules,
    bell: Bell,
}

/// Why one attempt did not produce a reply.
enum Failure {
    Expired,
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl Handler for CommandHandler {
    async fn handle(&self, command: Command) -> Result<Outcome, HandlerError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.apply(&command).await {
                Ok(outcome) => return Ok(outcome),
                Err(Failure::Expired) => return Err(HandlerError::Expired),
                Err(Failure::Store(StoreError::Conflict(e))) if attempt < ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "transaction conflict; trying again");
                }
                Err(Failure::Store(e)) => return Err(HandlerError::Retry(e.to_string())),
            }
        }
    }
}

impl CommandHandler {
    pub fn new(db: Db, clock: SharedClock, rules: Rules, bell: Bell) -> Self {
        Self {
            db,
            clock,
            rules,
            bell,
        }
    }

    /// One attempt: the whole command in one transaction.
    async fn apply(&self, command: &Command) -> Result<Outcome, Failure> {
        if command.is_expired() {
            return Err(Failure::Expired);
        }
        let now = self.clock.now();
        let message_id = command.message_id.to_string();
        let fingerprint = serde_json::to_string(&command.kind).expect("kinds serialise");
        let mut tx = Tx::begin(&self.db).await?;
        let first = commands::claim(
            &mut tx,
            &message_id,
            command.user_id,
            command.kind.name(),
            &fingerprint,
            now,
        )
        .await?;
        if !first {
            tx.rollback().await?;
            return self.replay(&message_id, &fingerprint).await;
        }
        let outcome = match command.kind {
            CommandKind::Borrow { book_id } => self.borrow(&mut tx, command, book_id, now).await?,
            CommandKind::Return { loan_id } => {
                self.give_back(&mut tx, command, loan_id, now).await?
            }
            CommandKind::Renew { loan_id } => self.renew(&mut tx, command, loan_id, now).await?,
            CommandKind::PlaceHold { book_id } => {
                self.place_hold(&mut tx, command, book_id, now).await?
            }
            CommandKind::CancelHold { hold_id } => {
                self.cancel_hold(&mut tx, command, hold_id, now).await?
            }
        };
        // Locks may have kept it waiting: its sender has given up, so it must not count.
        if command.is_expired() {
            tx.rollback().await?;
            return Err(Failure::Expired);
        }
        let reply = serde_json::to_string(&outcome).expect("outcomes serialise");
        commands::record_reply(&mut tx, &message_id, &reply).await?;
        tx.commit().await?;
        self.bell.ring();
        tracing::info!(
            kind = command.kind.name(),
            status = outcome.status(),
            "command applied"
        );
        Ok(outcome)
    }

    /// The stored answer to a command applied before.
    async fn replay(&self, message_id: &str, fingerprint: &str) -> Result<Outcome, Failure> {
        match commands::stored_reply(&self.db, message_id).await? {
            Some((stored, _)) if stored != fingerprint => {
                Ok(refuse(RefusalReason::IdempotencyKeyReused))
            }
            Some((_, Some(reply))) => {
                tracing::info!(
                    message_id,
                    "duplicate command; answering with the stored reply"
                );
                serde_json::from_str(&reply).map_err(|e| {
                    Failure::Store(StoreError::Other(sqlx::Error::Decode(Box::new(e))))
                })
            }
            // Purged between the claim and now, or not committed yet: try again.
            _ => Err(Failure::Store(StoreError::Conflict(
                sqlx::Error::RowNotFound,
            ))),
        }
    }

    async fn borrow(
        &self,
        tx: &mut Tx,
        command: &Command,
        book_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let user_id = command.user_id;
        commands::lock_reader(tx, user_id, now).await?;
        // The title's lock orders its events (see crate::outbox); taken before any copy or
        // hold, in the one lock order.
        if !titles::lock(tx, book_id).await? {
            return Ok(refuse(RefusalReason::NotFound));
        }
        let (active_loans, overdue_loans, borrows_title) =
            loans::standing(tx, user_id, book_id, now).await?;
        let standing = Standing {
            active_loans,
            overdue_loans,
            borrows_title,
            ..Standing::default()
        };
        if let Err(reason) = self.rules.check_borrow(&standing) {
            return Ok(refuse(reason));
        }
        let hold = holds::active_of(tx, user_id, book_id).await?;
        let copy = match hold {
            // The copy set aside for this reader.
            Some((hold_id, Some(copy))) => {
                holds::close(tx, hold_id, HoldState::Fulfilled, now).await?;
                copies::move_status(tx, copy, CopyStatus::OnHold, CopyStatus::OnLoan).await?;
                copy
            }
            _ => match copies::take_available(tx, book_id, CopyStatus::OnLoan).await? {
                Some(copy) => {
                    if let Some((hold_id, None)) = hold {
                        // They waited, and got one off the shelf: the hold is done.
                        holds::close(tx, hold_id, HoldState::Fulfilled, now).await?;
                    }
                    copy
                }
                None => {
                    let set_aside = copies::count_set_aside(tx, book_id).await?;
                    return Ok(refuse(no_copy(set_aside)));
                }
            },
        };
        let due_at = self.rules.due_at(now);
        let loan_id = loans::insert(tx, copy, book_id, user_id, now, due_at).await?;
        let created = Happened::loan(EventKind::LoanCreated, book_id, user_id, loan_id, due_at);
        outbox::record(tx, created, now).await?;
        self.loan_reply(tx, loan_id, 201, now).await
    }

    async fn give_back(
        &self,
        tx: &mut Tx,
        command: &Command,
        loan_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let Some(loan) = loans::get_in(tx, loan_id, false).await? else {
            return Ok(refuse(RefusalReason::NotFound));
        };
        // Someone else's loan does not exist, as far as a reader can tell.
        if !may_act_on(loan.user_id, command.user_id, command.role) {
            return Ok(refuse(RefusalReason::NotFound));
        }
        titles::lock(tx, loan.title_id).await?;
        if !loans::close(tx, loan_id, now).await? {
            return Ok(refuse(RefusalReason::AlreadyReturned));
        }
        let returned = Happened::loan(
            EventKind::LoanReturned,
            loan.title_id,
            loan.user_id,
            loan_id,
            store::utc(loan.due_at),
        );
        outbox::record(tx, returned, now).await?;
        pass_on(
            tx,
            &self.rules,
            loan.copy_id,
            loan.title_id,
            CopyStatus::OnLoan,
            now,
        )
        .await?;
        self.loan_reply(tx, loan_id, 200, now).await
    }

    async fn renew(
        &self,
        tx: &mut Tx,
        command: &Command,
        loan_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let Some(loan) = loans::get_in(tx, loan_id, false).await? else {
            return Ok(refuse(RefusalReason::NotFound));
        };
        if !may_act_on(loan.user_id, command.user_id, command.role) {
            return Ok(refuse(RefusalReason::NotFound));
        }
        titles::lock(tx, loan.title_id).await?;
        let Some(loan) = loans::get_in(tx, loan_id, true).await? else {
            return Ok(refuse(RefusalReason::NotFound));
        };
        let waiting = holds::count_waiting(tx, loan.title_id).await?;
        let terms = LoanTerms {
            due_at: store::utc(loan.due_at),
            renewals: loan.renewals,
            returned: loan.returned_at.is_some(),
        };
        match self.rules.renewal(&terms, waiting, now) {
            Err(reason) => Ok(refuse(reason)),
            Ok(due_at) => {
                loans::renew(tx, loan_id, due_at).await?;
                let renewed = Happened::loan(
                    EventKind::LoanRenewed,
                    loan.title_id,
                    loan.user_id,
                    loan_id,
                    due_at,
                );
                outbox::record(tx, renewed, now).await?;
                self.loan_reply(tx, loan_id, 200, now).await
            }
        }
    }

    async fn place_hold(
        &self,
        tx: &mut Tx,
        command: &Command,
        book_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let user_id = command.user_id;
        commands::lock_reader(tx, user_id, now).await?;
        if !titles::lock(tx, book_id).await? {
            return Ok(refuse(RefusalReason::NotFound));
        }
        let (_, _, borrows_title) = loans::standing(tx, user_id, book_id, now).await?;
        let standing = Standing {
            borrows_title,
            holds_title: holds::active_of(tx, user_id, book_id).await?.is_some(),
            active_holds: holds::count_active(tx, user_id).await?,
            ..Standing::default()
        };
        if let Err(reason) = self.rules.check_hold(&standing) {
            return Ok(refuse(reason));
        }
        let hold_id = holds::insert(tx, user_id, book_id, now).await?;
        let placed = Happened::hold(EventKind::HoldPlaced, book_id, user_id, hold_id);
        outbox::record(tx, placed, now).await?;
        // A copy on the shelf is set aside for the holder at once.
        if let Some(copy) = copies::take_available(tx, book_id, CopyStatus::OnHold).await? {
            let deadline = self.rules.pickup_deadline(now);
            holds::make_ready(tx, hold_id, copy, now, deadline).await?;
            let ready = Happened::hold(EventKind::HoldReady, book_id, user_id, hold_id);
            outbox::record(tx, ready.until(deadline), now).await?;
        }
        self.hold_reply(tx, hold_id, 201).await
    }

    async fn cancel_hold(
        &self,
        tx: &mut Tx,
        command: &Command,
        hold_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let Some((owner, title_id)) = holds::owner(tx, hold_id).await? else {
            return Ok(refuse(RefusalReason::NotFound));
        };
        if !may_act_on(owner, command.user_id, command.role) {
            return Ok(refuse(RefusalReason::NotFound));
        }
        titles::lock(tx, title_id).await?;
        match holds::close(tx, hold_id, HoldState::Cancelled, now).await? {
            None => Ok(refuse(RefusalReason::HoldNotActive)),
            Some(set_aside) => {
                let cancelled = Happened::hold(EventKind::HoldCancelled, title_id, owner, hold_id);
                outbox::record(tx, cancelled, now).await?;
                if let Some(copy) = set_aside {
                    pass_on(tx, &self.rules, copy, title_id, CopyStatus::OnHold, now).await?;
                }
                Ok(Outcome::Done {
                    status: 204,
                    body: serde_json::Value::Null,
                })
            }
        }
    }

    async fn loan_reply(
        &self,
        tx: &mut Tx,
        loan_id: i64,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let loan = loans::get_in(tx, loan_id, false)
            .await?
            .ok_or(StoreError::Other(sqlx::Error::RowNotFound))?;
        Ok(Outcome::done(status, &loan.to_api(&self.rules, now)))
    }

    async fn hold_reply(
        &self,
        tx: &mut Tx,
        hold_id: i64,
        status: u16,
    ) -> Result<Outcome, StoreError> {
        let hold = holds::get_in(tx, hold_id)
            .await?
            .ok_or(StoreError::Other(sqlx::Error::RowNotFound))?;
        Ok(Outcome::done(status, &hold.to_api()))
    }
}

/// A copy of `title_id` comes free (returned, no longer set aside, newly added): it goes to
/// the first waiting holder, set aside until the pickup deadline (and they are told:
/// `hold_ready`), or back on the shelf. The caller holds the title's lock.
pub(crate) async fn pass_on(
    tx: &mut Tx,
    rules: &Rules,
    copy: i64,
    title_id: i64,
    from: CopyStatus,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match holds::first_waiting(tx, title_id).await? {
        Some((hold_id, user_id)) => {
            let deadline = rules.pickup_deadline(now);
            holds::make_ready(tx, hold_id, copy, now, deadline).await?;
            let ready = Happened::hold(EventKind::HoldReady, title_id, user_id, hold_id);
            outbox::record(tx, ready.until(deadline), now).await?;
            if from != CopyStatus::OnHold {
                copies::move_status(tx, copy, from, CopyStatus::OnHold).await?;
            }
        }
        None => {
            if from != CopyStatus::Available {
                copies::move_status(tx, copy, from, CopyStatus::Available).await?;
            }
        }
    }
    Ok(())
}
