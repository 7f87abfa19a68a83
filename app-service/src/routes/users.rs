//! `/users/` and `/admin/users/*`: relayed to user-service, which checks the caller and the
//! librarian or admin role itself.

use api::users::{RoleChange, SessionsEnded, UserListQuery, UserSummary};
use api::{ErrorBody, ValidationBody};
use axum::extract::State;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::Incoming;

/// Accounts by id, a page at a time (librarians and admins).
///
/// A `Link: <…>; rel="next"` header gives the next page while there may be more.
#[utoipa::path(get, path = "/users/", tag = "users",
    security(("oauth2" = [])),
    params(UserListQuery),
    responses(
        (status = 200, description = "The accounts (`[]` past the end)", body = [UserSummary]),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 403, description = "Librarian role required", body = ErrorBody),
        (status = 422, description = "Invalid query parameters", body = ValidationBody),
        (status = 503, description = "user-service, its database or the session store unavailable", body = ErrorBody),
        (status = 504, description = "user-service did not answer in time", body = ErrorBody),
    ))]
pub async fn list(State(s): State<AppState>, request: Incoming) -> Result<Response, ApiError> {
    s.users.relay(request).await
}

/// Grant or revoke `librarian` (admins); every session of the user ends at once, so their
/// next login carries the new role. `admin` itself is changed only with the `set-role`
/// command.
#[utoipa::path(put, path = "/admin/users/{id}/role", tag = "users",
    security(("oauth2" = [])),
    params(("id" = i64, Path, description = "The account")),
    request_body = RoleChange,
    responses(
        (status = 200, description = "The account with its new role", body = UserSummary),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 403, description = "Admin role required, or the account is an admin's", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "The id is not an integer, or the role is not `user` or `librarian`", body = ValidationBody),
        (status = 503, description = "user-service, its database or the session store unavailable", body = ErrorBody),
        (status = 504, description = "user-service did not answer in time", body = ErrorBody),
    ))]
pub async fn change_role(
    State(s): State<AppState>,
    request: Incoming,
) -> Result<Response, ApiError> {
    s.users.relay(request).await
}

/// End every session of an account (admins): a compromised account, a password changed
/// elsewhere.
#[utoipa::path(delete, path = "/admin/users/{id}/sessions", tag = "users",
    security(("oauth2" = [])),
    params(("id" = i64, Path, description = "The account")),
    responses(
        (status = 200, description = "How many sessions were live and are now ended", body = SessionsEnded),
        (status = 401, description = "Missing, invalid or expired token, or ended session", body = ErrorBody),
        (status = 403, description = "Admin role required", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 422, description = "The id is not an integer", body = ValidationBody),
        (status = 503, description = "user-service, its database or the session store unavailable", body = ErrorBody),
        (status = 504, description = "user-service did not answer in time", body = ErrorBody),
    ))]
pub async fn end_sessions(
    State(s): State<AppState>,
    request: Incoming,
) -> Result<Response, ApiError> {
    s.users.relay(request).await
}
