//! `/holds/*`: placing and cancelling holds are circulation commands sent for the verified
//! caller ([`crate::circulation`]); the list is relayed to book-service, which checks the
//! caller itself.

use api::library::{Hold, HoldCreate, HoldSearch, InvalidOrKeyReused, Refusal};
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

/// Join a title's waiting list (first come, first served).
///
/// When a copy is on the shelf it is set aside for the caller at once (`state: ready`, with a
/// pickup deadline); otherwise the hold waits at its `position`.
#[utoipa::path(post, path = "/holds/", tag = "library",
    security(("oauth2" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
        description = "1 to 255 visible ASCII characters (e.g. a UUID), new for each request; a retry with the same key returns the first answer, the same key with another request is refused (422, reason `idempotency_key_reused`)")),
    request_body = HoldCreate,
    responses(
        (status = 201, description = "The hold, with its place in the queue", body = Hold),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 404, description = "No such title (reason `not_found`)", body = Refusal),
        (status = 409, description = "Refused: `already_holding`, `already_borrowed` or `hold_limit`", body = Refusal),
        (status = 422, description = "Invalid body or Idempotency-Key, or the key was used for another request (reason `idempotency_key_reused`)", body = InvalidOrKeyReused),
        (status = 503, description = "Circulation or the session store unavailable; nothing was done (see Retry-After)", body = ErrorBody),
        (status = 504, description = "No answer in time; retry with the same Idempotency-Key", body = ErrorBody),
    ))]
pub async fn place(
    State(s): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    ValidJson(body): ValidJson<HoldCreate>,
) -> Result<Response, ApiError> {
    let kind = CommandKind::PlaceHold {
        book_id: body.book_id,
    };
    s.circulation.send(&caller, kind, key.as_deref()).await
}

/// Cancel a hold (the holder, or a librarian). A copy set aside for it passes to the next
/// reader waiting, or back to the shelf.
#[utoipa::path(delete, path = "/holds/{id}", tag = "library",
    security(("oauth2" = [])),
    params(
        ("id" = i64, Path, minimum = 1, description = "The hold"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "1 to 255 visible ASCII characters, new for each request; makes a retry return the first answer (the same key with another request: 422, reason `idempotency_key_reused`)"),
    ),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 404, description = "No such hold, or another reader's (reason `not_found`)", body = Refusal),
        (status = 409, description = "Fulfilled, cancelled or expired already (reason `hold_not_active`)", body = Refusal),
        (status = 422, description = "The id is not a positive integer, an invalid Idempotency-Key, or a reused one", body = InvalidOrKeyReused),
        (status = 503, description = "Circulation or the session store unavailable; nothing was done (see Retry-After)", body = ErrorBody),
        (status = 504, description = "No answer in time; retry with the same Idempotency-Key", body = ErrorBody),
    ))]
pub async fn cancel(
    State(s): State<AppState>,
    caller: Caller,
    Id(hold_id): Id,
    key: IdempotencyKey,
) -> Result<Response, ApiError> {
    let kind = CommandKind::CancelHold { hold_id };
    s.circulation.send(&caller, kind, key.as_deref()).await
}

/// The caller's active holds, oldest first, with their place in the queue and pickup
/// deadline (a librarian may name another reader with `user_id`).
#[utoipa::path(get, path = "/holds/", tag = "library",
    security(("oauth2" = [])),
    params(HoldSearch),
    responses(
        (status = 200, description = "The holds (`[]` when there are none)", body = [Hold]),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 403, description = "`user_id` names another reader and the caller is not a librarian", body = ErrorBody),
        (status = 422, description = "Invalid query parameters", body = ValidationBody),
        (status = 503, description = "book-service, its database or the session store unavailable", body = ErrorBody),
        (status = 504, description = "book-service did not answer in time", body = ErrorBody),
    ))]
pub async fn list(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.books.relay(request).await
}
