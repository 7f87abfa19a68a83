//! The circulation rules and the states of copies and holds: what a reader may do, when a
//! loan is due, when a copy set aside must be picked up. Plain decisions over facts the
//! command handler read; no SQL, no HTTP.
//!
//! States:
//!
//! ```text
//! copy:  available ──borrow──► on_loan ──return──► available           (no hold waits)
//!            │                    ▲       └──────► on_hold ──holder borrows──┘
//!            └──hold placed──► on_hold ──pickup expired / cancelled──► next holder's on_hold,
//!                                                                        or available
//! hold:  waiting ──copy set aside──► ready ──borrowed──► fulfilled
//!           │                          ├──not picked up in time──► expired
//!           └──────────cancelled───────┴──cancelled──► cancelled
//! ```
//!
//! Invariants the handler keeps (each change in one transaction): a copy is `on_hold` exactly
//! while one `ready` hold names it; holds wait only while no copy of their title is
//! `available`; a copy set aside for one reader is never lent to another.

use api::library::RefusalReason;
use chrono::{DateTime, Duration, Utc};
use circulation::Outcome;
use common::auth::Role;

/// The circulation rules; defaults as in Koha, Evergreen and FOLIO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// `LOAN_PERIOD_DAYS` (14): a loan is due this long after it starts, or after a renewal.
    pub loan_period: Duration,
    /// `MAX_RENEWALS` (2): renewals of one loan.
    pub max_renewals: u32,
    /// `MAX_ACTIVE_LOANS` (5): loans a reader may have out at once.
    pub max_active_loans: u32,
    /// `MAX_ACTIVE_HOLDS` (10): holds a reader may have at once.
    pub max_active_holds: u32,
    /// `HOLD_PICKUP_DAYS` (3): how long a copy stays set aside for a ready hold.
    pub hold_pickup: Duration,
    /// `DUE_SOON_DAYS` (2): how long before its due date a reader is reminded of a loan.
    pub due_soon: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            loan_period: Duration::days(14),
            max_renewals: 2,
            max_active_loans: 5,
            max_active_holds: 10,
            hold_pickup: Duration::days(3),
            due_soon: Duration::days(2),
        }
    }
}

/// What the handler knows about a reader before a borrow or a hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Loans out now.
    pub active_loans: i64,
    /// Of those, past their due date.
    pub overdue_loans: i64,
    /// Whether one of them is of the title asked for.
    pub borrows_title: bool,
    /// Whether the reader has an active (waiting or ready) hold on the title.
    pub holds_title: bool,
    /// Active holds on any title.
    pub active_holds: i64,
}

/// A loan as a renewal sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoanTerms {
    pub due_at: DateTime<Utc>,
    pub renewals: i64,
    pub returned: bool,
}

/// The state of a copy, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyStatus {
    Available,
    OnLoan,
    OnHold,
}

impl CopyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CopyStatus::Available => "available",
            CopyStatus::OnLoan => "on_loan",
            CopyStatus::OnHold => "on_hold",
        }
    }
}

impl Rules {
    /// Whether a reader in `standing` may borrow the title: the first rule broken, checked
    /// in the order a librarian would explain them.
    pub fn check_borrow(&self, standing: &Standing) -> Result<(), RefusalReason> {
        if standing.borrows_title {
            Err(RefusalReason::AlreadyBorrowed)
        } else if standing.overdue_loans > 0 {
            Err(RefusalReason::OverdueBlock)
        } else if standing.active_loans >= i64::from(self.max_active_loans) {
            Err(RefusalReason::LoanLimit)
        } else {
            Ok(())
        }
    }

    /// Whether a reader in `standing` may place a hold on the title.
    pub fn check_hold(&self, standing: &Standing) -> Result<(), RefusalReason> {
        if standing.holds_title {
            Err(RefusalReason::AlreadyHolding)
        } else if standing.borrows_title {
            Err(RefusalReason::AlreadyBorrowed)
        } else if standing.active_holds >= i64::from(self.max_active_holds) {
            Err(RefusalReason::HoldLimit)
        } else {
            Ok(())
        }
    }

    /// When a loan starting at `start` is due.
    pub fn due_at(&self, start: DateTime<Utc>) -> DateTime<Utc> {
        start + self.loan_period
    }

    /// The new due date of a renewal at `now`, or why it is refused. A renewal extends from
    /// the current due date — or from now for an overdue loan, which may be renewed as long
    /// as nobody waits for the title.
    pub fn renewal(
        &self,
        loan: &LoanTerms,
        holds_waiting: i64,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, RefusalReason> {
        if loan.returned {
            Err(RefusalReason::AlreadyReturned)
        } else if loan.renewals >= i64::from(self.max_renewals) {
            Err(RefusalReason::RenewalLimit)
        } else if holds_waiting > 0 {
            Err(RefusalReason::HoldWaiting)
        } else {
            Ok(loan.due_at.max(now) + self.loan_period)
        }
    }

    /// Renewals left after `renewals`.
    pub fn renewals_left(&self, renewals: i64) -> i64 {
        (i64::from(self.max_renewals) - renewals).max(0)
    }

    /// Until when a copy set aside at `now` waits for its holder.
    pub fn pickup_deadline(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.hold_pickup
    }
}

/// Why nothing could be lent when no copy was available: some are set aside for other
/// readers, or all are out.
pub fn no_copy(set_aside: i64) -> RefusalReason {
    if set_aside > 0 {
        RefusalReason::OnHoldForAnother
    } else {
        RefusalReason::NoCopyAvailable
    }
}

/// Whether `user_id` acting as `role` may act on a loan or hold of `owner`: their own, or
/// anyone's for a librarian.
pub fn may_act_on(owner: i64, user_id: i64, role: Role) -> bool {
    owner == user_id || role.permits(Role::Librarian)
}

/// The refusal answered for `reason`, with a sentence for the reader.
pub fn refuse(reason: RefusalReason) -> Outcome {
    let detail = match reason {
        RefusalReason::NoCopyAvailable => "No copy of this title is available",
        RefusalReason::AlreadyBorrowed => "You already borrow this title",
        RefusalReason::OnHoldForAnother => {
            "The copies on the shelf are set aside for other readers"
        }
        RefusalReason::LoanLimit => "You have as many loans as allowed; return one first",
        RefusalReason::OverdueBlock => "You have an overdue loan; return it first",
        RefusalReason::AlreadyReturned => "This loan was returned already",
        RefusalReason::RenewalLimit => "This loan was renewed as often as allowed",
        RefusalReason::HoldWaiting => "Another reader waits for this title",
        RefusalReason::AlreadyHolding => "You already hold this title",
        RefusalReason::HoldLimit => "You have as many holds as allowed",
        RefusalReason::HoldNotActive => "This hold is no longer active",
        RefusalReason::NotFound => "Not found",
        RefusalReason::IdempotencyKeyReused => {
            "This Idempotency-Key was used for a different request"
        }
    };
    Outcome::refused(reason, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-03-01T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn borrowing_checks_title_then_overdue_then_limit() {
        let rules = Rules::default();
        let fine = Standing::default();
        assert_eq!(rules.check_borrow(&fine), Ok(()));
        let at_limit = Standing {
            active_loans: 5,
            ..fine
        };
        assert_eq!(rules.check_borrow(&at_limit), Err(RefusalReason::LoanLimit));
        let overdue = Standing {
            overdue_loans: 1,
            ..at_limit
        };
        assert_eq!(
            rules.check_borrow(&overdue),
            Err(RefusalReason::OverdueBlock)
        );
        let again = Standing {
            borrows_title: true,
            ..overdue
        };
        assert_eq!(
            rules.check_borrow(&again),
            Err(RefusalReason::AlreadyBorrowed)
        );
        assert_eq!(
            rules.check_borrow(&Standing {
                active_loans: 4,
                ..fine
            }),
            Ok(())
        );
    }

    #[test]
    fn holds_one_per_title_never_while_borrowing_and_bounded() {
        let rules = Rules::default();
        let fine = Standing::default();
        assert_eq!(rules.check_hold(&fine), Ok(()));
        let borrowing = Standing {
            borrows_title: true,
            ..fine
        };
        assert_eq!(
            rules.check_hold(&borrowing),
            Err(RefusalReason::AlreadyBorrowed)
        );
        let holding = Standing {
            holds_title: true,
            ..borrowing
        };
        assert_eq!(
            rules.check_hold(&holding),
            Err(RefusalReason::AlreadyHolding)
        );
        let many = Standing {
            active_holds: 10,
            ..fine
        };
        assert_eq!(rules.check_hold(&many), Err(RefusalReason::HoldLimit));
    }

    #[test]
    fn renewals_extend_from_the_due_date_up_to_the_limit_unless_someone_waits() {
        let rules = Rules::default();
        let loan = LoanTerms {
            due_at: now() + Duration::days(3),
            renewals: 0,
            returned: false,
        };
        assert_eq!(
            rules.renewal(&loan, 0, now()),
            Ok(now() + Duration::days(17))
        );
        assert_eq!(
            rules.renewal(&loan, 1, now()),
            Err(RefusalReason::HoldWaiting)
        );
        let overdue = LoanTerms {
            due_at: now() - Duration::days(2),
            ..loan
        };
        assert_eq!(
            rules.renewal(&overdue, 0, now()),
            Ok(now() + Duration::days(14)),
            "an overdue loan renews from now"
        );
        let spent = LoanTerms {
            renewals: 2,
            ..loan
        };
        assert_eq!(
            rules.renewal(&spent, 0, now()),
            Err(RefusalReason::RenewalLimit)
        );
        assert_eq!(rules.renewals_left(2), 0);
        let returned = LoanTerms {
            returned: true,
            ..loan
        };
        assert_eq!(
            rules.renewal(&returned, 0, now()),
            Err(RefusalReason::AlreadyReturned)
        );
    }

    #[test]
    fn dates_and_ownership() {
        let rules = Rules::default();
        assert_eq!(rules.due_at(now()), now() + Duration::days(14));
        assert_eq!(rules.pickup_deadline(now()), now() + Duration::days(3));
        assert_eq!(no_copy(0), RefusalReason::NoCopyAvailable);
        assert_eq!(no_copy(2), RefusalReason::OnHoldForAnother);
        assert!(may_act_on(4, 4, Role::User));
        assert!(!may_act_on(4, 5, Role::User));
        assert!(may_act_on(4, 5, Role::Librarian) && may_act_on(4, 5, Role::Admin));
        let refused = refuse(RefusalReason::LoanLimit);
        assert_eq!(refused.status(), 409);
        assert_eq!(refused.body()["reason"], "loan_limit");
    }
}
