//! `/loans/*`: borrowing, returning and renewing are circulation commands sent for the
//! verified caller ([`crate::circulation`]); the list is relayed to book-service, which checks
//! the caller itself.

use api::library::{InvalidOrKeyReused, Loan, LoanCreate, LoanSearch, Refusal};
use api::{ErrorBody, ValidationBody};
use axum::extract::State;
use axum::response::Response;
use circulation::CommandKind;
use service_kit::extract::ValidJson;
use service_kit::Caller;

use super::{Id, IdempotencyKey};
use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::Incoming;

/// Borrow a copy of a title.
///
/// The copy is lent to the caller unless a rule refuses it (409 with the `reason`). Send an
/// `Idempotency-Key` to make retries safe: the same key (from the same user) returns the first
/// answer instead of borrowing again.
#[utoipa::path(post, path = "/loans/", tag = "library",
    security(("oauth2" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
        description = "1 to 255 visible ASCII characters (e.g. a UUID), new for each request; a retry with the same key returns the first answer, the same key with another request is refused (422, reason `idempotency_key_reused`)")),
    request_body = LoanCreate,
    responses(
        (status = 201, description = "The new loan", body = Loan),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 404, description = "No such title (reason `not_found`)", body = Refusal),
        (status = 409, description = "Refused by a rule: `no_copy_available`, `already_borrowed`, `on_hold_for_another`, `loan_limit` or `overdue_block`", body = Refusal),
        (status = 422, description = "Invalid body or Idempotency-Key, or the key was used for another request (reason `idempotency_key_reused`)", body = InvalidOrKeyReused),
        (status = 503, description = "Circulation or the session store unavailable; nothing was done (see Retry-After)", body = ErrorBody),
        (status = 504, description = "No answer in time; retry with the same Idempotency-Key", body = ErrorBody),
    ))]
pub async fn borrow(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    ValidJson(body): ValidJson<LoanCreate>,
) -> Result<Response, ApiError> {
    let kind = CommandKind::Borrow {
        book_id: body.book_id,
    };
    s.circulation.send(&caller, kind, key.as_deref()).await
}

/// Return a loan (the borrower, or a librarian for anyone).
///
/// When readers wait for the title, the copy is set aside for the first of them.
#[utoipa::path(post, path = "/loans/{id}/return", tag = "library",
    security(("oauth2" = [])),
    params(
        ("id" = i64, Path, minimum = 1, description = "The loan"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "1 to 255 visible ASCII characters, new for each request; makes a retry return the first answer (the same key with another request: 422, reason `idempotency_key_reused`)"),
    ),
    responses(
        (status = 200, description = "The loan, with `returned_at`", body = Loan),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 404, description = "No such loan, or another reader's (reason `not_found`)", body = Refusal),
        (status = 409, description = "Returned already (reason `already_returned`)", body = Refusal),
        (status = 422, description = "The id is not a positive integer, an invalid Idempotency-Key, or a reused one", body = InvalidOrKeyReused),
        (status = 503, description = "Circulation or the session store unavailable; nothing was done (see Retry-After)", body = ErrorBody),
        (status = 504, description = "No answer in time; retry with the same Idempotency-Key", body = ErrorBody),
    ))]
pub async fn give_back(
    State(s): State<AppState>,
    caller: Caller,
    Id(loan_id): Id,
    key: IdempotencyKey,
) -> Result<Response, ApiError> {
    let kind = CommandKind::Return { loan_id };
    s.circulation.send(&caller, kind, key.as_deref()).await
}

/// Renew a loan (the borrower, or a librarian on their behalf): a new due date, unless the renewal limit is reached or
/// another reader waits for the title.
#[utoipa::path(post, path = "/loans/{id}/renew", tag = "library",
    security(("oauth2" = [])),
    params(
        ("id" = i64, Path, minimum = 1, description = "The loan"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "1 to 255 visible ASCII characters, new for each request; makes a retry return the first answer (the same key with another request: 422, reason `idempotency_key_reused`)"),
    ),
    responses(
        (status = 200, description = "The loan with its new `due_at`", body = Loan),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 404, description = "No such loan, or another reader's (reason `not_found`)", body = Refusal),
        (status = 409, description = "Refused: `renewal_limit`, `hold_waiting` or `already_returned`", body = Refusal),
        (status = 422, description = "The id is not a positive integer, an invalid Idempotency-Key, or a reused one", body = InvalidOrKeyReused),
        (status = 503, description = "Circulation or the session store unavailable; nothing was done (see Retry-After)", body = ErrorBody),
        (status = 504, description = "No answer in time; retry with the same Idempotency-Key", body = ErrorBody),
    ))]
pub async fn renew(
    State(s): State<AppState>,
    caller: Caller,
    Id(loan_id): Id,
    key: IdempotencyKey,
) -> Result<Response, ApiError> {
    let kind = CommandKind::Renew { loan_id };
    s.circulation.send(&caller, kind, key.as_deref()).await
}

/// The caller's loans, newest first (a librarian may name another reader with `user_id`).
///
/// A `Link: <…>; rel="next"` header gives the next page while there may be more.
#[utoipa::path(get, path = "/loans/", tag = "library",
    security(("oauth2" = [])),
    params(LoanSearch),
    responses(
        (status = 200, description = "The loans (`[]` when there are none)", body = [Loan]),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 403, description = "`user_id` names another reader and the caller is not a librarian", body = ErrorBody),
        (status = 422, description = "Invalid query parameters", body = ValidationBody),
        (status = 503, description = "book-service, its database or the session store unavailable", body = ErrorBody),
        (status = 504, description = "book-service did not answer in time", body = ErrorBody),
    ))]
pub async fn list(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.books.relay(request).await
}
